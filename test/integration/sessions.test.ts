// Sessions end to end against a real tree: connect modes (auto/new/join/fork), join by id,
// info, close, key-value state, the persistent shell, fs.*, replicas, and state surviving a
// full stop/start of the tree. PROTOCOL.md, "Sessions" and "Commands", is the contract.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, ContinuumError, type ConnectOptions, type ContinuumClient } from '../../src/client/index.js';
import { RawClient, type RpcMessage } from '../helpers/raw-client.js';
import { startTree, stopTree, Tree, waitFor } from '../helpers/tree.js';

const CONFIG = {
  environments: [
    { name: 'remote', output: { maxBytes: 2048 } },
    { name: 'agent', replicas: 2 },
  ],
};
const SESSION_ID = /^[A-Za-z0-9._-]{1,128}$/;

let tree: Tree;
const opened: { close(): unknown }[] = [];

/** An SDK client that does not reconnect by itself (a test reconnects on purpose). */
async function client(environment: string, opts: Partial<ConnectOptions> = {}): Promise<ContinuumClient> {
  const c = await tree.client(environment, { reconnect: false, ...opts });
  opened.push(c);
  return c;
}

/** Joins by id only (session.join): no environment given. */
async function joinById(sessionId: string, tokenOf = 'server'): Promise<ContinuumClient> {
  const c = await connect({ url: tree.url, token: tree.token(tokenOf), sessionId, reconnect: false });
  opened.push(c);
  return c;
}

async function raw(environment: string): Promise<RawClient> {
  const r = await RawClient.open(tree.url, tree.token(environment));
  opened.push(r);
  return r;
}

async function closeAll(): Promise<void> {
  const all = opened.splice(0);
  await Promise.all(all.map(async (c) => c.close()));
}

/** The ContinuumError a call fails with; fails the test if it succeeds. */
async function rpcError(p: Promise<unknown>): Promise<ContinuumError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ContinuumError) return err;
    throw err;
  }
  assert.fail('expected the call to fail');
}

function workspace(environment: string, sessionId: string): string {
  return path.join(tree.home, 'workspaces', environment, sessionId);
}

function resultOf<T>(m: RpcMessage): T {
  assert.equal(m.error, undefined, `unexpected error: ${JSON.stringify(m.error)}`);
  return m.result as T;
}

describe('sessions', { timeout: 120_000 }, () => {
  before(async () => {
    tree = await startTree({ config: CONFIG });
  });

  after(async () => {
    await closeAll();
    await stopTree(tree);
  });

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

  /** A source session with state, a cwd below its workspace, an export and files. */
  async function forkSource(id: string): Promise<ContinuumClient> {
    const src = await client('server', { sessionId: id, mode: 'new' });
    await src.state.set('k1', { deep: [1, 2, 3] });
    await src.state.set('k2', 'two');
    await src.exec('mkdir -p proj/sub && cd proj/sub && export FORKVAR=from-source && echo data > here.txt');
    await src.fs.write('top.txt', 'top of source');
    return src;
  }

  test('fork: a new session (new id) starts with a copy of key-value state, shell cwd, exported variables and workspace files', async () => {
    await forkSource('fork-src');
    const f = await client('server', { sessionId: 'fork-src', mode: 'fork' });
    assert.equal(f.session.action, 'forked');
    assert.equal(f.session.environment, 'server');
    assert.match(f.session.sessionId, SESSION_ID);
    assert.notEqual(f.session.sessionId, 'fork-src', 'a fork gets a new id');
    const forkWs = workspace('server', f.session.sessionId);
    assert.ok(fs.existsSync(forkWs), 'the fork has its own workspace folder');

    const f2 = await client('server', { sessionId: 'fork-src', mode: 'fork' });
    assert.equal(f2.session.action, 'forked');
    assert.notEqual(f2.session.sessionId, f.session.sessionId, 'every fork gets its own id');

    assert.deepEqual(await f.state.list(), ['k1', 'k2']);
    assert.deepEqual(await f.state.get('k1'), { deep: [1, 2, 3] });
    assert.equal(await f.state.get('k2'), 'two');
    assert.equal((await f.fs.read('top.txt')).content, 'top of source');
    assert.equal((await f.fs.read('proj/sub/here.txt')).content, 'data\n');
    assert.equal(fs.readFileSync(path.join(forkWs, 'proj/sub/here.txt'), 'utf8'), 'data\n', 'the files are copied into the fork workspace');
    const shell = await f.exec('pwd; echo "$FORKVAR"');
    // The same cwd relative to the workspace, in the fork's own workspace: not the source's.
    assert.equal(shell.stdout, `${forkWs}/proj/sub\nfrom-source\n`, 'the fork shell runs at the copied cwd inside its own workspace');
    assert.equal(shell.cwd, `${forkWs}/proj/sub`);
  });

  test('fork: changes in the fork leave the source unchanged', async () => {
    const src = await forkSource('fork-src2');
    const srcWs = workspace('server', 'fork-src2');
    const f = await client('server', { sessionId: 'fork-src2', mode: 'fork' });
    assert.equal(f.session.action, 'forked');

    await f.state.set('k1', 'changed');
    await f.state.delete('k2');
    await f.state.set('k3', 'only in fork');
    // Relative paths, from wherever the fork's shell is.
    await f.exec('echo forked > here.txt; echo new > only-fork.txt; rm -f ../../top.txt; cd .. && export FORKVAR=changed');
    await f.fs.write('proj/fork-file.txt', 'fork');

    assert.deepEqual(await src.state.list(), ['k1', 'k2']);
    assert.deepEqual(await src.state.get('k1'), { deep: [1, 2, 3] });
    assert.equal(await src.state.get('k2'), 'two');
    const s = await src.exec('pwd; echo "$FORKVAR"');
    assert.equal(s.stdout, `${srcWs}/proj/sub\nfrom-source\n`, 'the source shell is unchanged');
    const files = (await src.exec('find . -type f | sort')).stdout;
    assert.equal(files, './here.txt\n', 'no file of the fork appears in the source');
    assert.equal(fs.readFileSync(path.join(srcWs, 'proj/sub/here.txt'), 'utf8'), 'data\n', 'the source file is unchanged');
    assert.equal(fs.readFileSync(path.join(srcWs, 'top.txt'), 'utf8'), 'top of source', 'the source file still exists');
    assert.deepEqual((await src.fs.list('proj')).entries.map((e) => e.name), ['sub']);

    // A new connection to the source sees the original too.
    const j = await joinById('fork-src2');
    assert.deepEqual(await j.state.list(), ['k1', 'k2']);
  });

  test('fork errors: unknown source → -32010, no source id → -32602', async () => {
    const unknown = await rpcError(client('server', { sessionId: 'no-such-source', mode: 'fork' }));
    assert.equal(unknown.rpcCode, -32010);
    const r = await raw('server');
    const m = await r.call('session.connect', { environment: 'server', mode: 'fork' });
    assert.equal(m.error?.code, -32602);
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

  test('state.*: absent key is null, set/get round trips, list is sorted, delete removes', async () => {
    const c = await client('server', { sessionId: 'state-1' });
    assert.deepEqual(await c.state.list(), []);
    assert.equal(await c.state.get('absent'), null);

    const values: Record<string, unknown> = {
      zeta: { nested: { list: [1, 'two', null, true] } },
      alpha: 'text with ünïcödé',
      mid: 42.5,
      Beta: false,
      '0num': [1, 2, 3],
    };
    for (const [k, v] of Object.entries(values)) assert.deepEqual(await c.state.set(k, v), { ok: true });
    for (const [k, v] of Object.entries(values)) assert.deepEqual(await c.state.get(k), v);
    assert.deepEqual(await c.state.list(), Object.keys(values).sort());

    await c.state.set('alpha', 'overwritten');
    assert.equal(await c.state.get('alpha'), 'overwritten');

    assert.deepEqual(await c.state.delete('mid'), { ok: true });
    assert.equal(await c.state.get('mid'), null);
    assert.deepEqual(await c.state.list(), ['0num', 'Beta', 'alpha', 'zeta']);

    // A new connection reads the same.
    const d = await joinById('state-1');
    assert.deepEqual(await d.state.list(), ['0num', 'Beta', 'alpha', 'zeta']);
    assert.deepEqual(await d.state.get('zeta'), values.zeta);
  });

  test('shell.exec: cwd and exported variables persist across calls and a reconnect; per-call env does not', async () => {
    const ws = workspace('server', 'shell-1');
    const c = await client('server', { sessionId: 'shell-1' });
    const first = await c.exec('pwd');
    assert.equal(first.stdout, `${ws}\n`, 'the shell starts in the workspace');

    const r1 = await c.exec('mkdir -p a/b && cd a/b && export KEEP=kept');
    assert.equal(r1.exitCode, 0);
    assert.equal(r1.cwd, `${ws}/a/b`);

    const r2 = await c.exec('pwd; echo "$KEEP"');
    assert.equal(r2.stdout, `${ws}/a/b\nkept\n`);

    const once = await c.exec('echo "$ONCE|$KEEP"', { env: { ONCE: 'one-time', KEEP: 'override' } });
    assert.equal(once.stdout, 'one-time|override\n');
    const after1 = await c.exec('echo "$ONCE|$KEEP"');
    assert.equal(after1.stdout, '|kept\n', 'per-call env is for that call only');

    await c.close();
    const d = await client('server', { sessionId: 'shell-1', mode: 'join' });
    const r3 = await d.exec('pwd; echo "$KEEP"');
    assert.equal(r3.stdout, `${ws}/a/b\nkept\n`, 'cwd and exports survive a reconnect');
    assert.equal(r3.cwd, `${ws}/a/b`);

    await d.exec('cd .. && unset KEEP');
    const r4 = await d.exec('pwd; echo "[$KEEP]"');
    assert.equal(r4.stdout, `${ws}/a\n[]\n`);
  });

  test('shell.exec: stdin, exit codes, stdout and stderr', async () => {
    const c = await client('server', { sessionId: 'shell-2' });
    const cat = await c.exec('cat', { stdin: 'line1\nline2\n' });
    assert.equal(cat.stdout, 'line1\nline2\n');
    const big = await c.exec('wc -c', { stdin: 'x'.repeat(100_000) });
    assert.equal(big.stdout.trim(), '100000');
    const none = await c.exec('cat');
    assert.equal(none.stdout, '', 'no stdin is an empty stdin, not a hang');

    const three = await c.exec('exit 3');
    assert.equal(three.exitCode, 3);
    assert.equal(three.signal, null);
    assert.equal(three.timedOut, false);
    assert.equal((await c.exec('false')).exitCode, 1);
    assert.equal((await c.exec('true')).exitCode, 0);

    const mixed = await c.exec('echo out; echo err >&2; exit 2');
    assert.equal(mixed.stdout, 'out\n');
    assert.equal(mixed.stderr, 'err\n');
    assert.equal(mixed.exitCode, 2);
    assert.equal(mixed.truncated, false);

    const missing = await c.exec('definitely-not-a-command-xyz');
    assert.equal(missing.exitCode, 127);
    assert.match(missing.stderr, /not found/);
  });

  test('shell.exec: timeoutMs kills the command (timedOut true) and the shell stays usable', async () => {
    const c = await client('server', { sessionId: 'shell-3' });
    const r = await c.exec('echo before; sleep 37.25; echo after', { timeoutMs: 400 });
    assert.equal(r.timedOut, true);
    assert.equal(r.stdout, 'before\n');
    assert.ok(r.exitCode !== 0, `a killed command does not exit 0 (exitCode ${r.exitCode}, signal ${r.signal})`);
    const sleeping = () =>
      fs.readdirSync('/proc').some((p) => {
        if (!/^\d+$/.test(p)) return false;
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\x0037.25\x00';
        } catch {
          return false;
        }
      });
    await waitFor(() => !sleeping(), 5_000, 'the timed-out command to be gone');

    const next = await c.exec('echo alive');
    assert.equal(next.stdout, 'alive\n');
    assert.equal(next.timedOut, false);
  });

  test('shell.exec stream:true sends shell.output notifications with the request id before the result', async () => {
    const r = await raw('server');
    const bound = await r.call('session.connect', { environment: 'server', sessionId: 'stream-1' });
    resultOf(bound);

    const res = await r.call('shell.exec', { command: 'echo one; echo two >&2; sleep 0.2; echo three', stream: true });
    const result = resultOf<{ stdout: string; stderr: string; exitCode: number }>(res);
    assert.equal(result.exitCode, 0);
    const resultIndex = r.messages.indexOf(res);
    const notes = r.messages
      .map((m, i) => ({ m, i }))
      .filter(({ m }) => m.method === 'shell.output');
    assert.ok(notes.length >= 2, 'stdout and stderr each arrive as notifications');
    for (const { m, i } of notes) {
      assert.equal(m.id, undefined, 'a notification has no id');
      assert.equal(m.params?.requestId, res.id, 'the notification names the request');
      assert.ok(i < resultIndex, 'notifications come before the result');
    }
    const joined = (stream: string) => notes.filter(({ m }) => m.params?.stream === stream).map(({ m }) => m.params?.data as string).join('');
    assert.equal(joined('stdout'), 'one\nthree\n');
    assert.equal(joined('stderr'), 'two\n');
    assert.equal(result.stdout, 'one\nthree\n');
    assert.equal(result.stderr, 'two\n');

    // Without stream, no notifications.
    const before = r.messages.length;
    const quiet = await r.call('shell.exec', { command: 'echo silent' });
    assert.equal(resultOf<{ stdout: string }>(quiet).stdout, 'silent\n');
    assert.equal(r.messages.slice(before).filter((m) => m.method === 'shell.output').length, 0);
  });

  test('shell.exec output past the environment cap is cut and truncated is true', async () => {
    const remote = await client('remote', { sessionId: 'cap-1' });
    const over = await remote.exec("head -c 10000 /dev/zero | tr '\\0' a");
    assert.equal(over.truncated, true);
    assert.equal(over.stdout, 'a'.repeat(2048));
    const overErr = await remote.exec("head -c 5000 /dev/zero | tr '\\0' b >&2");
    assert.equal(overErr.truncated, true);
    assert.equal(overErr.stderr, 'b'.repeat(2048));
    const under = await remote.exec("head -c 1000 /dev/zero | tr '\\0' c");
    assert.equal(under.truncated, false);
    assert.equal(under.stdout, 'c'.repeat(1000));

    // The cap is per environment: server keeps its default.
    const server = await client('server', { sessionId: 'cap-2' });
    const full = await server.exec("head -c 10000 /dev/zero | tr '\\0' a");
    assert.equal(full.truncated, false);
    assert.equal(full.stdout.length, 10000);
  });

  test('fs.*: write/read (utf8, base64), list, stat, delete inside the workspace; fs and shell see the same files', async () => {
    const c = await client('server', { sessionId: 'fs-1' });
    const ws = workspace('server', 'fs-1');
    const text = 'héllo wörld\n';
    assert.deepEqual(await c.fs.write('docs/readme.txt', text), { ok: true, bytes: Buffer.byteLength(text) });
    assert.deepEqual(await c.fs.read('docs/readme.txt'), { content: text, encoding: 'utf8', bytes: Buffer.byteLength(text) });
    assert.equal(fs.readFileSync(path.join(ws, 'docs/readme.txt'), 'utf8'), text, 'the file is in the session workspace');

    const bin = Buffer.from([0, 1, 2, 254, 255, 10, 13, 0x80, 0xc3]);
    assert.deepEqual(await c.fs.write('bin/data.bin', bin.toString('base64'), 'base64'), { ok: true, bytes: bin.length });
    const back = await c.fs.read('bin/data.bin', 'base64');
    assert.equal(back.encoding, 'base64');
    assert.equal(back.bytes, bin.length);
    assert.deepEqual(Buffer.from(back.content, 'base64'), bin);
    assert.equal((await c.fs.read('docs/readme.txt', 'base64')).content, Buffer.from(text).toString('base64'));

    const root = await c.fs.list();
    assert.deepEqual(root.entries.map((e) => [e.name, e.type]), [['bin', 'directory'], ['docs', 'directory']]);
    const docs = await c.fs.list('docs');
    assert.deepEqual(docs.entries.map((e) => [e.name, e.type, e.size]), [['readme.txt', 'file', Buffer.byteLength(text)]]);

    const st = await c.fs.stat('docs/readme.txt');
    assert.equal(st.type, 'file');
    assert.equal(st.size, Buffer.byteLength(text));
    assert.equal((await c.fs.stat('docs')).type, 'directory');

    // The shell sees what fs.* wrote...
    assert.equal((await c.exec('cat docs/readme.txt')).stdout, text);
    assert.equal((await c.exec('base64 -w0 bin/data.bin')).stdout, bin.toString('base64'));
    // ...and fs.* sees what the shell wrote.
    await c.exec('mkdir -p out && printf "from shell" > out/s.txt && ln -s ../docs/readme.txt out/link.txt');
    assert.equal((await c.fs.read('out/s.txt')).content, 'from shell');
    assert.equal((await c.fs.read('out/link.txt')).content, text, 'a symlink inside the workspace is followed');
    assert.deepEqual((await c.fs.list('out')).entries.map((e) => [e.name, e.type]), [['link.txt', 'symlink'], ['s.txt', 'file']]);

    // fs paths are relative to the workspace, wherever the shell has cd'd to.
    await c.exec('cd out');
    await c.fs.write('root.txt', 'at the root');
    assert.equal((await c.exec('cat ../root.txt; pwd')).stdout, `at the root${ws}/out\n`);

    assert.deepEqual(await c.fs.delete('docs/readme.txt'), { ok: true });
    await rpcError(c.fs.stat('docs/readme.txt'));
    assert.equal((await c.exec('test -e ../docs/readme.txt; echo $?')).stdout, '1\n');
    assert.deepEqual(await c.fs.delete('bin'), { ok: true });
    assert.deepEqual((await c.fs.list()).entries.map((e) => e.name), ['docs', 'out', 'root.txt']);
    await c.exec('rm s.txt');
    await rpcError(c.fs.read('out/s.txt'));
  });

  test('replicas: new sessions spread 2/2 over two executors (least loaded) and keep their executor on rejoin', async () => {
    const rows = (await tree.ps()).filter((r) => r.environment === 'agent');
    assert.equal(rows.length, 2);
    const pidOf = new Map(rows.map((r) => [r.id, r.pid]));
    assert.notEqual(rows[0]!.pid, rows[1]!.pid);

    const placed = new Map<string, { id: string; pid: number }>();
    for (let i = 0; i < 4; i++) {
      const c = await client('agent', { sessionId: `rep-${i}`, mode: 'new' });
      assert.equal(c.session.action, 'created');
      assert.equal(c.session.executor.pid, pidOf.get(c.session.executor.id), 'the result names a live executor of the environment');
      assert.equal((await c.ping()).executor.pid, c.session.executor.pid);
      placed.set(`rep-${i}`, c.session.executor);
    }
    const perPid = new Map<number, number>();
    for (const e of placed.values()) perPid.set(e.pid, (perPid.get(e.pid) ?? 0) + 1);
    assert.deepEqual([...perPid.values()], [2, 2], `sessions per executor: ${JSON.stringify([...perPid])}`);

    await closeAll();
    for (const [id, executor] of placed) {
      const j = await joinById(id, 'agent');
      assert.equal(j.session.action, 'joined');
      assert.deepEqual(j.session.executor, executor, `${id} keeps its executor on rejoin`);
      assert.equal((await j.ping()).executor.pid, executor.pid);
    }
    await waitFor(async () => {
      const counts = (await tree.ps()).filter((r) => r.environment === 'agent').map((r) => r.sessions);
      return counts.length === 2 && counts.every((n) => n === 2) ? counts : undefined;
    }, 5_000, 'ps to count 2 sessions on each agent executor');
  });

  test('state, cwd, exports and files survive a full stop/start of the tree', async () => {
    const ws = workspace('server', 'durable-1');
    const c = await client('server', { sessionId: 'durable-1' });
    await c.state.set('persist', { a: [1, { b: 'c' }] });
    await c.exec('mkdir -p keep/dir && cd keep/dir && export DURABLE=yes-really');
    await c.fs.write('keep/file.txt', 'durable content');
    const oldPid = c.session.executor.pid;
    const agentBefore = await client('agent', { sessionId: 'rep-0', mode: 'join' });
    const agentExecutor = agentBefore.session.executor.id;

    await closeAll();
    const { home, port } = tree;
    await stopTree(tree);
    tree = new Tree(home, port, CONFIG);
    await tree.start();

    const d = await joinById('durable-1');
    assert.equal(d.session.action, 'joined');
    assert.notEqual(d.session.executor.pid, oldPid, 'a new executor process serves it');
    assert.deepEqual(await d.state.get('persist'), { a: [1, { b: 'c' }] });
    assert.deepEqual(await d.state.list(), ['persist']);
    const r = await d.exec('pwd; echo "$DURABLE"; cat ../file.txt');
    assert.equal(r.stdout, `${ws}/keep/dir\nyes-really\ndurable content`);
    assert.equal((await d.fs.read('keep/file.txt')).content, 'durable content');

    const a = await joinById('rep-0', 'agent');
    assert.equal(a.session.executor.id, agentExecutor, 'a session keeps its replica across a restart');
  });
});
