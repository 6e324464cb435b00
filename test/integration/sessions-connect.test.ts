// Sessions end to end against a real tree: connect modes auto/new/join, join by id, moving
// a connection between sessions, command order within a session, info and close.
// PROTOCOL.md, "Sessions", is the contract. Fork is in sessions-fork.test.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Tree } from '../helpers/tree.js';
import { resultOf, rpcError, SESSION_ID, sessionClients, useSessionTree } from './support/sessions.js';

let tree: Tree;
const { client, joinById, raw, closeAll, workspace } = sessionClients(() => tree);

describe('sessions', { timeout: 120_000 }, () => {
  useSessionTree((t) => (tree = t), () => tree, closeAll);

  test('auto: no id creates with a generated id; an unknown id is created as given; a known id is joined', async () => {
    const serverPid = (await tree.row('server-0')).pid;
    const t0 = Date.now();
    const a = await client('server');
    assert.equal(a.session.action, 'created');
    assert.equal(a.session.environment, 'server');
    assert.match(a.session.sessionId, SESSION_ID);
    assert.deepEqual(a.session.executor, { id: 'server-0', pid: serverPid });
    assert.ok(a.session.createdAt >= t0 - 1000 && a.session.createdAt <= Date.now() + 1000, 'createdAt is a current epoch-ms time');

    const b = await client('server');
    assert.equal(b.session.action, 'created');
    assert.notEqual(b.session.sessionId, a.session.sessionId, 'generated ids are distinct');

    const c = await client('server', { sessionId: 'auto-given' });
    assert.equal(c.session.action, 'created');
    assert.equal(c.session.sessionId, 'auto-given');

    const d = await client('server', { sessionId: 'auto-given' });
    assert.equal(d.session.action, 'joined');
    assert.equal(d.session.sessionId, 'auto-given');
    assert.equal(d.session.createdAt, c.session.createdAt);
    assert.deepEqual(d.session.executor, c.session.executor);

    const e = await client('server', { sessionId: a.session.sessionId, mode: 'auto' });
    assert.equal(e.session.action, 'joined');
    assert.equal(e.session.createdAt, a.session.createdAt);
  });

  test('new: creates, -32013 when the id exists (the existing session is untouched)', async () => {
    const n = await client('server', { sessionId: 'new-1', mode: 'new' });
    assert.equal(n.session.action, 'created');
    assert.equal(n.session.sessionId, 'new-1');
    await n.state.set('owner', 'first');

    const err = await rpcError(client('server', { sessionId: 'new-1', mode: 'new' }));
    assert.equal(err.rpcCode, -32013);

    const generated = await client('server', { mode: 'new' });
    assert.equal(generated.session.action, 'created');
    assert.match(generated.session.sessionId, SESSION_ID);
    const again = await rpcError(client('server', { sessionId: generated.session.sessionId, mode: 'new' }));
    assert.equal(again.rpcCode, -32013);

    assert.equal(await n.state.get('owner'), 'first');
    const j = await client('server', { sessionId: 'new-1', mode: 'join' });
    assert.equal(j.session.createdAt, n.session.createdAt);
    assert.equal(await j.state.get('owner'), 'first');
  });

  test('join: -32010 for an unknown id (and does not create it); joins an existing one', async () => {
    const e1 = await rpcError(client('server', { sessionId: 'never-made', mode: 'join' }));
    assert.equal(e1.rpcCode, -32010);
    const e2 = await rpcError(joinById('never-made'));
    assert.equal(e2.rpcCode, -32010);
    const e3 = await rpcError(client('server', { sessionId: 'never-made', mode: 'join' }));
    assert.equal(e3.rpcCode, -32010, 'a failed join must not have created the session');

    const made = await client('server', { sessionId: 'join-1', mode: 'new' });
    const j = await client('server', { sessionId: 'join-1', mode: 'join' });
    assert.equal(j.session.action, 'joined');
    assert.equal(j.session.sessionId, 'join-1');
    assert.deepEqual(j.session.executor, made.session.executor);
    assert.equal(j.session.createdAt, made.session.createdAt);
  });

  test('session.join by id from a new connection reaches the same executor pid and the same state', async () => {
    const a = await client('server', { sessionId: 'shared-1' });
    await a.state.set('color', { name: 'teal', n: 7 });
    await a.exec('mkdir -p w/x && cd w/x && export SHARED=yes');
    await a.fs.write('note.txt', 'shared note');
    const aPing = await a.ping();

    const b = await joinById('shared-1');
    assert.equal(b.session.action, 'joined');
    assert.equal(b.session.sessionId, 'shared-1');
    assert.equal(b.session.environment, 'server', 'session.join takes the environment from the session');
    assert.deepEqual(b.session.executor, a.session.executor);
    const bPing = await b.ping();
    assert.equal(bPing.executor.pid, aPing.executor.pid);
    assert.equal(bPing.executor.pid, a.session.executor.pid);

    assert.deepEqual(await b.state.get('color'), { name: 'teal', n: 7 });
    const r = await b.exec('pwd; echo "$SHARED"');
    assert.equal(r.stdout, `${workspace('server', 'shared-1')}/w/x\nyes\n`);
    assert.equal((await b.fs.read('note.txt')).content, 'shared note');

    // Both connections see one state, whichever writes.
    await b.state.set('from-b', true);
    assert.equal(await a.state.get('from-b'), true);
    await b.exec('cd .. && export SHARED=changed-by-b');
    const ra = await a.exec('pwd; echo "$SHARED"');
    assert.equal(ra.stdout, `${workspace('server', 'shared-1')}/w\nchanged-by-b\n`);
  });

  test('binding again moves the connection; frames sent right behind session.connect run in the session it binds', async () => {
    const r = await raw('server');
    const send = (id: string, method: string, params: unknown) => r.sendRaw(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    // One burst, no waiting: each command must land in the session bound just before it.
    send('c1', 'session.connect', { environment: 'server', sessionId: 'move-a' });
    send('s1', 'state.set', { key: 'who', value: 'A' });
    send('c2', 'session.connect', { environment: 'server', sessionId: 'move-b' });
    send('s2', 'state.set', { key: 'who', value: 'B' });
    send('g2', 'state.get', { key: 'who' });
    send('i2', 'session.info', {});
    const byId = async (id: string) => resultOf<Record<string, unknown>>(await r.wait((m) => m.id === id));
    assert.equal((await byId('c1')).sessionId, 'move-a');
    assert.equal((await byId('c2')).sessionId, 'move-b');
    assert.equal((await byId('g2')).value, 'B');
    assert.equal((await byId('i2')).sessionId, 'move-b');

    const a = await joinById('move-a');
    assert.equal(await a.state.get('who'), 'A');
    const b = await joinById('move-b');
    assert.equal(await b.state.get('who'), 'B');
  });

  test('commands of one session run in the order sent', async () => {
    const r = await raw('server');
    resultOf(await r.call('session.connect', { environment: 'server', sessionId: 'order-1' }));
    const ids = Array.from({ length: 8 }, (_, i) => `o${i}`);
    // Earlier commands sleep longer: anything but in-order execution scrambles the file.
    ids.forEach((id, i) => r.sendRaw(JSON.stringify({ jsonrpc: '2.0', id, method: 'shell.exec', params: { command: `sleep 0.${8 - i}; echo ${id} >> order.txt` } })));
    r.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: 'k', method: 'state.set', params: { key: 'after', value: 'all' } }));
    await r.wait((m) => m.id === 'k', 20_000);
    const answered = r.messages.filter((m) => typeof m.id === 'string' && (ids.includes(m.id) || m.id === 'k')).map((m) => m.id);
    assert.deepEqual(answered, [...ids, 'k'], 'answers come back in order');
    const file = resultOf<{ content: string }>(await r.call('fs.read', { path: 'order.txt' }));
    assert.deepEqual(file.content.trim().split('\n'), ids);
  });

  test('session.info returns the bound session record', async () => {
    const c = await client('server', { sessionId: 'info-1', label: 'my label' });
    await c.state.set('touch', 1);
    const info = await c.info();
    assert.deepEqual(Object.keys(info).sort(), ['createdAt', 'environment', 'executor', 'label', 'lastActiveAt', 'sessionId']);
    assert.equal(info.sessionId, 'info-1');
    assert.equal(info.environment, 'server');
    assert.equal(info.label, 'my label');
    assert.equal(info.createdAt, c.session.createdAt);
    assert.ok(info.lastActiveAt >= info.createdAt);
    assert.deepEqual(info.executor, c.session.executor);

    const unlabeled = await client('server', { sessionId: 'info-2' });
    const info2 = await unlabeled.info();
    assert.equal(info2.label, null);
    assert.equal(info2.sessionId, 'info-2');
  });

  test('session.close deletes state and workspace; later joins get -32010', async () => {
    const c = await client('server', { sessionId: 'close-1' });
    await c.state.set('k', 'v');
    await c.fs.write('f.txt', 'bye');
    await c.exec('mkdir -p d/e && cd d/e && export GONE=1');
    const ws = workspace('server', 'close-1');
    assert.ok(fs.existsSync(path.join(ws, 'f.txt')));

    assert.deepEqual(await c.closeSession(), { ok: true });
    assert.equal(fs.existsSync(ws), false, `workspace ${ws} is deleted`);

    // The connection is no longer bound to anything.
    const unbound = await rpcError(c.state.get('k'));
    assert.equal(unbound.rpcCode, -32012);

    const e1 = await rpcError(client('server', { sessionId: 'close-1', mode: 'join' }));
    assert.equal(e1.rpcCode, -32010);
    const e2 = await rpcError(joinById('close-1'));
    assert.equal(e2.rpcCode, -32010);

    // The id is free again, and nothing of the old session comes back with it.
    const fresh = await client('server', { sessionId: 'close-1' });
    assert.equal(fresh.session.action, 'created');
    assert.equal(await fresh.state.get('k'), null);
    assert.deepEqual(await fresh.state.list(), []);
    assert.deepEqual((await fresh.fs.list()).entries, []);
    const sh = await fresh.exec('pwd; echo "[$GONE]"');
    assert.equal(sh.stdout, `${ws}\n[]\n`);
  });
});
