// The error codes of PROTOCOL.md's table that a malformed or unwelcome request reaches,
// against a real tree over a bare WebSocket: bad JSON, invalid requests, unknown methods,
// wrong params, frame size limits, binary frames, the in-flight cap and the deadline.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RawClient, RpcMessage } from '../helpers/raw-client.js';
import { startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';
import { assertPong, CONFIG, errorOf, ok, rawClients, reply } from './support/protocol-errors.js';

let tree: Tree;
const opened: RawClient[] = [];
const { open, bound } = rawClients(() => tree, opened);

describe('protocol errors', { timeout: 120_000 }, () => {
  before(async () => {
    tree = await startTree({ config: CONFIG });
  });

  after(async () => {
    for (const r of opened.splice(0)) r.close();
    await stopTree(tree);
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
      // A value nested deeper than 64 levels is refused, not kept (it would cost the executor its memory).
      ['state.set', { key: 'deep', value: JSON.parse('['.repeat(1_000) + ']'.repeat(1_000)) as unknown }],
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
});
