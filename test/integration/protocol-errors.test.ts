// Every error code of PROTOCOL.md's table that a client can reach, and every kind of bad
// input, against a real tree over a bare WebSocket. At the end the tree must be healthy and
// the state that bad input aimed at unchanged.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RawClient, type RpcMessage } from '../helpers/raw-client.js';
import { startTree, stopTree, waitFor, type PsRow, type Tree } from '../helpers/tree.js';

const CONFIG = {
  limits: { frameSoftBytes: 65_536, frameHardBytes: 262_144, maxInFlightPerConnection: 4, defaultTimeoutMs: 1_000 },
  environments: [{ name: 'persona', commands: ['system', 'state'] }],
};

let tree: Tree;
let psBefore: PsRow[];
const opened: RawClient[] = [];
const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'ct-outside-'));

async function open(environment: string): Promise<RawClient> {
  const r = await RawClient.open(tree.url, tree.token(environment));
  opened.push(r);
  return r;
}

/** A connection bound to `sessionId` of `environment` (created if new). */
async function bound(environment: string, sessionId: string): Promise<RawClient> {
  const r = await open(environment);
  const m = await r.call('session.connect', { environment, sessionId });
  assert.equal(m.error, undefined, `session.connect failed: ${JSON.stringify(m.error)}`);
  return r;
}

/** Sends one frame and returns the next message that arrives after it. */
async function reply(r: RawClient, data: string | Buffer, binary = false): Promise<RpcMessage> {
  const n = r.messages.length;
  r.sendRaw(data, binary);
  return waitFor(() => r.messages[n], 5_000, 'a reply');
}

function errorOf(m: RpcMessage, code: number, what = ''): NonNullable<RpcMessage['error']> {
  assert.ok(m.error, `${what}: expected error ${code}, got ${JSON.stringify(m)}`);
  assert.equal(m.error.code, code, `${what}: ${JSON.stringify(m.error)}`);
  assert.equal(typeof m.error.message, 'string');
  assert.ok(m.error.message.length > 0, 'the message says what to do');
  assert.equal(m.jsonrpc, '2.0');
  assert.equal(m.result, undefined);
  return m.error;
}

function ok<T = Record<string, unknown>>(m: RpcMessage, what = ''): T {
  assert.equal(m.error, undefined, `${what}: unexpected error ${JSON.stringify(m.error)}`);
  return m.result as T;
}

async function assertPong(r: RawClient): Promise<void> {
  const m = await r.call('system.ping');
  assert.equal(ok<{ pong: boolean }>(m, 'ping').pong, true);
}

function workspace(environment: string, sessionId: string): string {
  return path.join(tree.home, 'workspaces', environment, sessionId);
}

describe('protocol errors', { timeout: 120_000 }, () => {
  before(async () => {
    tree = await startTree({ config: CONFIG });
    psBefore = await tree.ps();
    // A session that all the bad input below must leave alone.
    const s = await bound('server', 'sentinel');
    ok(await s.call('state.set', { key: 'guard', value: { v: 1 } }));
    ok(await s.call('fs.write', { path: 'guard.txt', content: 'guarded' }));
    s.close();
  });

  after(async () => {
    for (const r of opened.splice(0)) r.close();
    await stopTree(tree);
    fs.rmSync(outside, { recursive: true, force: true });
  });

  test('malformed JSON → -32700 with id null, and the connection stays open', async () => {
    const r = await bound('server', 'pe-parse');
    for (const text of ['{', '{"jsonrpc":"2.0","id":1,"method":', 'not json', '', '{"jsonrpc":"2.0","id":2,"method":"system.ping"}}']) {
      const m = await reply(r, text);
      errorOf(m, -32700, JSON.stringify(text));
      assert.equal(m.id, null);
    }
    await assertPong(r);

    const unbound = await open('server');
    errorOf(await reply(unbound, '{{{'), -32700);
    errorOf(await unbound.call('system.ping'), -32012, 'still open, still unbound');
  });

  test('invalid requests → -32600 (non-object, batch, missing jsonrpc, bad id, bad method or params)', async () => {
    const r = await bound('server', 'pe-invalid');
    const cases: [string, string | number | null][] = [
      ['42', null],
      ['"text"', null],
      ['null', null],
      ['true', null],
      ['[]', null],
      ['[{"jsonrpc":"2.0","id":1,"method":"system.ping"}]', null],
      ['{"id":7,"method":"system.ping"}', 7],
      ['{"jsonrpc":"1.0","id":8,"method":"system.ping"}', 8],
      ['{"jsonrpc":2,"id":9,"method":"system.ping"}', 9],
      ['{"jsonrpc":"2.0","id":{"a":1},"method":"state.set","params":{"key":"pe-invalid","value":1}}', null],
      ['{"jsonrpc":"2.0","id":true,"method":"state.set","params":{"key":"pe-invalid","value":2}}', null],
      ['{"jsonrpc":"2.0","id":[1],"method":"state.set","params":{"key":"pe-invalid","value":3}}', null],
      ['{"jsonrpc":"2.0","id":10}', 10],
      ['{"jsonrpc":"2.0","id":11,"method":5}', 11],
      ['{"jsonrpc":"2.0","id":12,"method":""}', 12],
      ['{"jsonrpc":"2.0","id":"s13","method":"state.set","params":"key=pe-invalid"}', 's13'],
      ['{"jsonrpc":"2.0","id":14,"method":"system.ping","params":5}', 14],
    ];
    for (const [text, id] of cases) {
      const m = await reply(r, text);
      errorOf(m, -32600, text);
      assert.equal(m.id, id, `${text}: id`);
    }
    // None of them ran, and the connection is fine.
    assert.deepEqual(ok<{ value: unknown }>(await r.call('state.get', { key: 'pe-invalid' })).value, null);
    await assertPong(r);
  });

  test('unknown method → -32601', async () => {
    const r = await bound('server', 'pe-method');
    for (const method of ['nope.nothing', 'system.nope', 'shell.execute', 'session.destroy', 'state', 'fs.read.more']) {
      const m = await r.call(method, {});
      errorOf(m, -32601, method);
      assert.notEqual(m.id, null, 'the id is echoed');
    }
    await assertPong(r);
  });

  test('wrong param types → -32602 with data.issues', async () => {
    const r = await bound('server', 'pe-params');
    const cases: [string, unknown][] = [
      ['shell.exec', { command: 5 }],
      ['shell.exec', {}],
      ['shell.exec', { command: 'touch ran-1', timeoutMs: '10' }],
      ['shell.exec', { command: 'touch ran-2', timeoutMs: -5 }],
      ['shell.exec', { command: 'touch ran-3', timeoutMs: 2 * 3600_000 }],
      ['shell.exec', { command: 'touch ran-4', env: { 'BAD-NAME': 'x' } }],
      ['shell.exec', { command: 'touch ran-5', env: { OK: 5 } }],
      ['shell.exec', { command: 'touch ran-6', stream: 'yes' }],
      ['shell.exec', { command: 'touch ran-7', stdin: 42 }],
      ['shell.exec', { command: 'touch ran-8', bogus: 1 }],
      ['state.get', { key: 1 }],
      ['state.get', {}],
      ['state.get', { key: '' }],
      ['state.set', { value: 1 }],
      ['state.delete', { key: null }],
      ['fs.read', { path: 7 }],
      ['fs.read', { path: 'a', encoding: 'hex' }],
      ['fs.write', { path: 'a' }],
      ['fs.write', { path: 'a', content: 1 }],
      ['fs.list', { path: '' }],
      ['fs.stat', {}],
      ['log.write', { level: 'loud', message: 'x' }],
      ['system.ping', { extra: 1 }],
      ['session.connect', { environment: 5 }],
      ['session.connect', {}],
      ['session.connect', { environment: 'server', mode: 'sideways' }],
      ['session.connect', { environment: 'server', label: 'x'.repeat(201) }],
      ['session.connect', { environment: 'nowhere' }],
      ['session.join', {}],
      ['session.join', { sessionId: 5 }],
      ['session.info', { extra: true }],
    ];
    for (const [method, params] of cases) {
      const m = await r.call(method, params);
      const e = errorOf(m, -32602, `${method} ${JSON.stringify(params).slice(0, 80)}`);
      assert.ok(Array.isArray(e.data?.issues) && (e.data.issues as unknown[]).length > 0, `${method}: data.issues lists the problems: ${JSON.stringify(e.data)}`);
    }
    // Nothing ran, and the connection is still bound to the same session.
    assert.deepEqual(ok<{ entries: unknown[] }>(await r.call('fs.list')).entries, []);
    assert.deepEqual(ok<{ keys: string[] }>(await r.call('state.list')).keys, []);
    assert.equal(ok<{ sessionId: string }>(await r.call('session.info')).sessionId, 'pe-params');
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

  test('fs paths that leave the workspace → -32002 (.., absolute, symlinks out, dangling symlinks)', async () => {
    const r = await bound('server', 'pe-fs');
    const ws = workspace('server', 'pe-fs');
    fs.writeFileSync(path.join(outside, 'keep.txt'), 'outside');

    const denied: [string, Record<string, unknown>][] = [
      ['fs.read', { path: '../x' }],
      ['fs.read', { path: '../sentinel/guard.txt' }],
      ['fs.write', { path: '../x', content: 'escaped' }],
      ['fs.write', { path: 'sub/../../x', content: 'escaped' }],
      ['fs.read', { path: '../../../../../../../../etc/passwd' }],
      ['fs.read', { path: '/etc/passwd' }],
      ['fs.stat', { path: '/etc' }],
      ['fs.list', { path: '/' }],
      ['fs.list', { path: '..' }],
      ['fs.write', { path: path.join(outside, 'abs-new.txt'), content: 'escaped' }],
      ['fs.delete', { path: path.join(outside, 'keep.txt') }],
      ['fs.delete', { path: '..' }],
    ];
    for (const [method, params] of denied) errorOf(await r.call(method, params), -32002, `${method} ${JSON.stringify(params)}`);

    // Symlinks made by the shell that point out of the workspace.
    const made = await r.call('shell.exec', {
      command: `ln -s /etc leak && ln -s ${outside} out && ln -s ../../.. up && ln -s ${outside}/dangle-target.txt dangling && ln -s ${outside}/nodir ddir`,
    });
    assert.equal(ok<{ exitCode: number }>(made).exitCode, 0);
    const viaLinks: [string, Record<string, unknown>][] = [
      ['fs.read', { path: 'leak/passwd' }],
      ['fs.stat', { path: 'leak/passwd' }],
      ['fs.list', { path: 'leak' }],
      ['fs.read', { path: 'out/keep.txt' }],
      ['fs.write', { path: 'out/new.txt', content: 'escaped' }],
      ['fs.delete', { path: 'out/keep.txt' }],
      ['fs.read', { path: 'up/secrets.json' }],
      ['fs.write', { path: 'dangling', content: 'escaped' }],
      ['fs.write', { path: 'ddir/f.txt', content: 'escaped' }],
    ];
    for (const [method, params] of viaLinks) errorOf(await r.call(method, params), -32002, `${method} ${JSON.stringify(params)}`);

    // Nothing outside changed.
    assert.deepEqual(fs.readdirSync(outside).sort(), ['keep.txt']);
    assert.equal(fs.readFileSync(path.join(outside, 'keep.txt'), 'utf8'), 'outside');
    assert.equal(fs.existsSync(path.join(tree.home, 'workspaces', 'server', 'x')), false);
    // Paths inside still work.
    ok(await r.call('fs.write', { path: 'inside/ok.txt', content: 'fine' }));
    assert.equal(fs.readFileSync(path.join(ws, 'inside/ok.txt'), 'utf8'), 'fine');
    await assertPong(r);
  });

  test('a namespace denied by policy → -32002 and not listed by system.commands', async () => {
    const r = await bound('persona', 'pe-persona');
    const denied: [string, unknown][] = [
      ['shell.exec', { command: 'touch policy-breach' }],
      ['fs.read', { path: 'x' }],
      ['fs.write', { path: 'policy-breach', content: 'x' }],
      ['fs.list', {}],
      ['log.write', { level: 'info', message: 'x' }],
      ['process.info', undefined],
    ];
    for (const [method, params] of denied) errorOf(await r.call(method, params), -32002, method);
    assert.equal(fs.existsSync(path.join(workspace('persona', 'pe-persona'), 'policy-breach')), false);

    ok(await r.call('state.set', { key: 'allowed', value: true }));
    assert.equal(ok<{ value: unknown }>(await r.call('state.get', { key: 'allowed' })).value, true);
    await assertPong(r);

    const list = ok<{ name: string; description: string; params: unknown; result: unknown }[]>(await r.call('system.commands'));
    const names = list.map((c) => c.name);
    for (const name of ['system.ping', 'system.commands', 'state.get', 'state.set', 'state.delete', 'state.list']) assert.ok(names.includes(name), `${name} is listed`);
    const leaked = names.filter((n) => /^(shell|fs|log|process)\./.test(n));
    assert.deepEqual(leaked, [], 'denied commands are not listed');
    for (const c of list) {
      assert.equal(typeof c.description, 'string');
      assert.equal(typeof c.params, 'object');
      assert.equal(typeof c.result, 'object');
    }

    // The same list for an environment that allows everything does include them.
    const s = await bound('server', 'pe-commands');
    const all = ok<{ name: string }[]>(await s.call('system.commands')).map((c) => c.name);
    for (const name of ['shell.exec', 'fs.read', 'log.write', 'process.info']) assert.ok(all.includes(name), `${name} is listed for server`);
  });

  test('a frame over the soft limit → -32006; the connection stays open', async () => {
    const r = await bound('server', 'pe-soft');
    const big = JSON.stringify({ jsonrpc: '2.0', id: 4242, method: 'state.set', params: { key: 'big', value: 'x'.repeat(100_000) } });
    assert.ok(big.length > 65_536 && big.length < 262_144);
    const m = await reply(r, big);
    const e = errorOf(m, -32006);
    assert.equal(m.id, 4242, 'the id is found even in a frame too large to parse');
    assert.ok(e.message.length > 0);
    assert.equal(ok<{ value: unknown }>(await r.call('state.get', { key: 'big' })).value, null, 'the oversized request did not run');

    // Just under the limit is fine.
    const fits = JSON.stringify({ jsonrpc: '2.0', id: 4243, method: 'state.set', params: { key: 'fits', value: 'y'.repeat(60_000) } });
    assert.ok(fits.length < 65_536);
    ok(await reply(r, fits));
    assert.equal((ok<{ value: string }>(await r.call('state.get', { key: 'fits' })).value).length, 60_000);
    await assertPong(r);
  });

  test('a frame over the hard limit closes the connection with 1009', async () => {
    const r = await bound('server', 'pe-hard');
    r.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'state.set', params: { key: 'huge', value: 'z'.repeat(300_000) } }));
    assert.equal(await r.closed(), 1009);

    const again = await bound('server', 'pe-hard');
    assert.equal(ok<{ value: unknown }>(await again.call('state.get', { key: 'huge' })).value, null);
  });

  test('more requests in flight than the per-connection cap → -32005 with data.retryAfterMs; the rejected ones do not run', async () => {
    const r = await bound('server', 'pe-inflight');
    const ids = Array.from({ length: 20 }, (_, i) => `f${i}`);
    for (const id of ids) {
      r.sendRaw(JSON.stringify({ jsonrpc: '2.0', id, method: 'shell.exec', params: { command: `sleep 0.5; echo ${id} >> ran.txt`, timeoutMs: 20_000 } }));
    }
    const answers = await waitFor(() => {
      const got = ids.map((id) => r.messages.find((m) => m.id === id));
      return got.every(Boolean) ? (got as RpcMessage[]) : undefined;
    }, 30_000, 'an answer to each of the 20 requests');
    const succeeded = answers.filter((m) => m.result !== undefined);
    const overloaded = answers.filter((m) => m.error?.code === -32005);
    assert.equal(succeeded.length + overloaded.length, 20, `other answers: ${JSON.stringify(answers.filter((m) => m.result === undefined && m.error?.code !== -32005))}`);
    assert.ok(succeeded.length >= 1 && succeeded.length <= 4, `${succeeded.length} ran; the cap is 4`);
    assert.ok(overloaded.length >= 1);
    for (const m of overloaded) {
      const retry = m.error!.data?.retryAfterMs;
      assert.ok(typeof retry === 'number' && retry > 0, `data.retryAfterMs: ${JSON.stringify(m.error)}`);
    }
    const ran = ok<{ content: string }>(await r.call('fs.read', { path: 'ran.txt' })).content.trim().split('\n').sort();
    assert.deepEqual(ran, succeeded.map((m) => m.id as string).sort(), 'exactly the accepted requests ran');

    // Once answered, the connection has its full budget again.
    const batch = ['g0', 'g1', 'g2', 'g3'];
    for (const id of batch) r.sendRaw(JSON.stringify({ jsonrpc: '2.0', id, method: 'state.set', params: { key: id, value: id } }));
    for (const id of batch) ok(await r.wait((m) => m.id === id), id);
  });

  test('a binary frame → -32600; the connection stays open', async () => {
    const r = await bound('server', 'pe-binary');
    const m = await reply(r, Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'state.set', params: { key: 'bin', value: 1 } })), true);
    errorOf(m, -32600);
    assert.equal(m.id, null);
    assert.equal(ok<{ value: unknown }>(await r.call('state.get', { key: 'bin' })).value, null, 'the binary frame did not run');
    await assertPong(r);
  });

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

  test('-32004 when no answer comes within the deadline', async () => {
    const r = await bound('server', 'pe-timeout');
    // The session runs its commands in order: state.get waits behind the sleep, past its deadline.
    r.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: 'long', method: 'shell.exec', params: { command: 'sleep 20', timeoutMs: 30_000 } }));
    r.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: 'late', method: 'state.get', params: { key: 'x' } }));
    const m = await r.wait((x) => x.id === 'late', 15_000);
    const e = errorOf(m, -32004);
    assert.equal(e.data?.retryable, true);
    assert.equal(r.messages.some((x) => x.id === 'long'), false, 'the long command is still running');
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
