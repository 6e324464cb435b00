// The error codes of PROTOCOL.md's table around authentication and sessions, against a real
// tree over a bare WebSocket: unbound commands, tokens and Origins, foreign environments,
// bad session ids, missing and existing sessions, and an executor dying under a request.
// At the end the tree must be healthy and the session that bad input aimed at unchanged.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RawClient } from '../helpers/raw-client.js';
import { startTree, stopTree, waitFor, type PsRow, type Tree } from '../helpers/tree.js';
import { assertPong, CONFIG, errorOf, ok, plantSentinel, rawClients } from './support/protocol-errors.js';

let tree: Tree;
let psBefore: PsRow[];
const opened: RawClient[] = [];
const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'ct-outside-'));
const { open, bound, workspace } = rawClients(() => tree, opened);

describe('protocol errors', { timeout: 120_000 }, () => {
  before(async () => {
    tree = await startTree({ config: CONFIG });
    psBefore = await tree.ps();
    // A session that all the bad input below must leave alone.
    await plantSentinel(bound);
  });

  after(async () => {
    for (const r of opened.splice(0)) r.close();
    await stopTree(tree);
    fs.rmSync(outside, { recursive: true, force: true });
  });

  test('commands before any session → -32012', async () => {
    const r = await open('server');
    const calls: [string, unknown][] = [
      ['system.ping', undefined],
      ['system.commands', undefined],
      ['shell.exec', { command: `touch ${outside}/unbound-ran` }],
      ['state.get', { key: 'guard' }],
      ['state.set', { key: 'guard', value: 'hijacked' }],
      ['state.list', undefined],
      ['fs.read', { path: 'guard.txt' }],
      ['fs.write', { path: 'guard.txt', content: 'hijacked' }],
      ['log.write', { level: 'info', message: 'x' }],
      ['process.info', undefined],
      ['session.info', undefined],
      ['session.close', undefined],
    ];
    for (const [method, params] of calls) {
      const m = await r.call(method, params);
      errorOf(m, -32012, method);
    }
    assert.equal(fs.existsSync(path.join(outside, 'unbound-ran')), false);
    // Binding afterwards works on the same connection.
    ok(await r.call('session.connect', { environment: 'server', sessionId: 'pe-late-bind' }));
    await assertPong(r);
  });

  test('a token that does not grant the environment → -32001', async () => {
    const agent = await open('agent');
    const cases: unknown[] = [
      { environment: 'remote' },
      { environment: 'server' },
      { environment: 'server', sessionId: 'sentinel' },
      { environment: 'server', sessionId: 'sentinel', mode: 'join' },
      { environment: 'server', sessionId: 'sentinel', mode: 'fork' },
      { environment: 'server', sessionId: 'pe-unauth-new', mode: 'new' },
    ];
    for (const params of cases) errorOf(await agent.call('session.connect', params), -32001, JSON.stringify(params));
    errorOf(await agent.call('session.join', { sessionId: 'sentinel' }), -32001, 'session.join of a server session');
    errorOf(await agent.call('system.ping'), -32012, 'nothing got bound');
    ok(await agent.call('session.connect', { environment: 'agent', sessionId: 'pe-agent' }));

    const remote = await open('remote');
    errorOf(await remote.call('session.connect', { environment: 'server' }), -32001);

    // Nothing was created by the refused attempts.
    const server = await open('server');
    errorOf(await server.call('session.join', { sessionId: 'pe-unauth-new' }), -32010);
  });

  test('a session of another environment → -32011, whatever mode', async () => {
    const remote = await bound('remote', 'pe-remote-own');
    for (const mode of ['auto', 'join', 'fork']) {
      errorOf(await remote.call('session.connect', { environment: 'remote', sessionId: 'sentinel', mode }), -32011, mode);
    }
    // A failed bind leaves the connection on its session.
    assert.equal(ok<{ sessionId: string }>(await remote.call('session.info')).sessionId, 'pe-remote-own');

    const server = await open('server');
    for (const mode of ['auto', 'join', 'fork']) {
      errorOf(await server.call('session.connect', { environment: 'server', sessionId: 'pe-remote-own', mode }), -32011, `server → remote session, ${mode}`);
    }
    errorOf(await server.call('system.ping'), -32012);
  });

  test('session ids outside [A-Za-z0-9._-]{1,128} → -32602, and nothing is created', async () => {
    const r = await open('server');
    const bad = ['a/b', '../x', '/abs', 'x'.repeat(129), '', 'a b', 'é', 'a\u0000b', 'semi;colon'];
    for (const sessionId of bad) {
      for (const mode of ['auto', 'new', 'join', 'fork']) {
        const e = errorOf(await r.call('session.connect', { environment: 'server', sessionId, mode }), -32602, `${JSON.stringify(sessionId)} ${mode}`);
        assert.ok(Array.isArray(e.data?.issues) && (e.data.issues as unknown[]).length > 0);
      }
      errorOf(await r.call('session.join', { sessionId }), -32602, `session.join ${JSON.stringify(sessionId)}`);
    }
    const entries = fs.readdirSync(path.join(tree.home, 'workspaces', 'server'));
    assert.ok(!entries.includes('a') && !entries.includes('x'.repeat(129)) && !entries.some((e) => e.startsWith('x'.repeat(100))), `workspaces: ${entries.join(', ')}`);
    assert.equal(fs.existsSync(path.join(tree.home, 'workspaces', 'x')), false);
    assert.equal(fs.existsSync('/abs'), false);

    // The longest valid id works.
    const longest = 'L'.repeat(128);
    const m = await r.call('session.connect', { environment: 'server', sessionId: longest });
    assert.equal(ok<{ sessionId: string }>(m).sessionId, longest);
  });

  for (const sessionId of ['.', '..']) {
    test(`id "${sessionId}" is refused (-32602) or gets its own, empty workspace`, async () => {
      const r = await open('server');
      const m = await r.call('session.connect', { environment: 'server', sessionId, mode: 'new' });
      if (m.error) {
        errorOf(m, -32602, sessionId);
        return;
      }
      // Accepted: then it must be a session like any other, not a window onto other folders.
      const listing = ok<{ entries: { name: string }[] }>(await r.call('fs.list'));
      assert.deepEqual(listing.entries.map((e) => e.name), [], `session "${sessionId}" sees another folder as its workspace`);
      const pwd = ok<{ stdout: string }>(await r.call('shell.exec', { command: 'pwd' })).stdout.trim();
      assert.notEqual(pwd, path.join(tree.home, 'workspaces'));
      assert.notEqual(pwd, path.join(tree.home, 'workspaces', 'server'));
      // (Not closed on purpose: closing would delete the folder it resolved to.)
    });
  }

  test('auth at the upgrade: 401 without or with a wrong token, ?token= works; foreign Origin → 403, own Origin accepted', async () => {
    const status = (p: Promise<RawClient>) =>
      p.then(
        (c) => {
          c.close();
          return 101;
        },
        (e: { status?: number }) => e.status,
      );
    const token = tree.token('server');
    assert.equal(await status(RawClient.open(tree.url)), 401);
    assert.equal(await status(RawClient.open(tree.url, 'ctm_server_not-a-real-token')), 401);
    assert.equal(await status(RawClient.open(`${tree.url}?token=wrong`)), 401);
    assert.equal(await status(RawClient.open(tree.url, undefined, { authorization: 'Basic abc' })), 401);
    assert.equal(await status(RawClient.open(tree.url, 'sentinel')), 401, 'a session id is not a credential');

    const q = await RawClient.open(`${tree.url}?token=${encodeURIComponent(token)}`);
    opened.push(q);
    assert.equal(ok<{ action: string }>(await q.call('session.connect', { environment: 'server', sessionId: 'pe-query' })).action, 'created');
    await assertPong(q);

    for (const origin of ['http://evil.example', 'https://evil.example', 'null', `http://127.0.0.1:${tree.port + 1}`, `http://localhost.evil.example:${tree.port}`]) {
      assert.equal(await status(RawClient.open(tree.url, token, { Origin: origin })), 403, `Origin ${origin}`);
    }
    const own = await RawClient.open(tree.url, token, { Origin: `http://127.0.0.1:${tree.port}` });
    opened.push(own);
    ok(await own.call('session.connect', { environment: 'server', sessionId: 'pe-origin' }));
    await assertPong(own);
  });

  test('a foreign Origin is refused even when the Host header names the same foreign host (DNS rebinding)', async () => {
    const host = `evil.example:${tree.port}`;
    const got = await RawClient.open(tree.url, tree.token('server'), { Origin: `http://${host}`, Host: host }).then(
      (c) => {
        c.close();
        return 101;
      },
      (e: { status?: number }) => e.status,
    );
    assert.equal(got, 403);
  });

  test('-32013 and -32010 on the wire', async () => {
    const r = await open('server');
    errorOf(await r.call('session.connect', { environment: 'server', sessionId: 'sentinel', mode: 'new' }), -32013);
    errorOf(await r.call('session.connect', { environment: 'server', sessionId: 'pe-missing', mode: 'join' }), -32010);
    errorOf(await r.call('session.connect', { environment: 'server', sessionId: 'pe-missing', mode: 'fork' }), -32010);
    errorOf(await r.call('session.join', { sessionId: 'pe-missing' }), -32010);
    errorOf(await r.call('system.ping'), -32012);
  });

  test('-32003 (retryable) when the executor dies under a request; the session carries over', async () => {
    const r = await bound('browser', 'pe-crash');
    const marker = path.join(workspace('browser', 'pe-crash'), 'started.txt');
    const oldPid = (await tree.row('browser-0')).pid!;
    r.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: 'doomed', method: 'shell.exec', params: { command: 'echo started > started.txt; sleep 29.75', timeoutMs: 60_000 } }));
    await waitFor(() => fs.existsSync(marker), 5_000, 'the command to start');
    process.kill(oldPid, 'SIGKILL');

    const e = errorOf(await r.wait((m) => m.id === 'doomed'), -32003);
    assert.equal(e.data?.retryable, true);
    const row = await tree.waitRunning('browser-0', oldPid);
    const note = await r.wait((m) => m.method === 'session.executorRestarted');
    assert.equal(note.params?.sessionId, 'pe-crash');
    assert.equal((note.params?.executor as { pid: number }).pid, row.pid);
    const ping = ok<{ executor: { pid: number } }>(await r.call('system.ping'));
    assert.equal(ping.executor.pid, row.pid);
  });

  test('after all of it the tree is healthy and the sentinel session is unchanged', async () => {
    const rows = await tree.ps();
    assert.deepEqual(rows.map((x) => x.id).sort(), psBefore.map((x) => x.id).sort());
    for (const row of rows) {
      assert.equal(row.state, 'running', `${row.id} is running`);
      assert.equal(row.restarts, row.id === 'browser-0' ? 1 : 0, `${row.id} restarts`);
      const before = psBefore.find((x) => x.id === row.id)!;
      if (row.id !== 'browser-0') assert.equal(row.pid, before.pid, `${row.id} is the same process`);
    }

    const r = await open('server');
    const joined = ok<{ action: string }>(await r.call('session.join', { sessionId: 'sentinel' }));
    assert.equal(joined.action, 'joined');
    assert.deepEqual(ok<{ keys: string[] }>(await r.call('state.list')).keys, ['guard']);
    assert.deepEqual(ok<{ value: unknown }>(await r.call('state.get', { key: 'guard' })).value, { v: 1 });
    assert.deepEqual(ok<{ entries: { name: string }[] }>(await r.call('fs.list')).entries.map((e) => e.name), ['guard.txt']);
    assert.equal(ok<{ content: string }>(await r.call('fs.read', { path: 'guard.txt' })).content, 'guarded');
    assert.equal(fs.readFileSync(path.join(workspace('server', 'sentinel'), 'guard.txt'), 'utf8'), 'guarded');
  });
});
