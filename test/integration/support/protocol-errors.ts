// What the protocol-errors-*.test.ts files share: the tree config (small limits, so that
// they are easy to reach, and a persona environment with a narrow command policy), bare
// WebSocket clients of the tree a file is using, and checks of what comes back.
import assert from 'node:assert/strict';
import path from 'node:path';
import { RawClient, type RpcMessage } from '../../helpers/raw-client.js';
import { waitFor, type Tree } from '../../helpers/tree.js';

export const CONFIG = {
  limits: { frameSoftBytes: 65_536, frameHardBytes: 262_144, maxInFlightPerConnection: 4, defaultTimeoutMs: 1_000 },
  environments: [{ name: 'persona', commands: ['system', 'state'] }],
};

/**
 * Helpers bound to a file's tree; every connection they open goes into `opened`, which the
 * file closes after its tests.
 */
export function rawClients(tree: () => Tree, opened: RawClient[]) {
  async function open(environment: string): Promise<RawClient> {
    const r = await RawClient.open(tree().url, tree().token(environment));
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

  function workspace(environment: string, sessionId: string): string {
    return path.join(tree().home, 'workspaces', environment, sessionId);
  }

  return { open, bound, workspace };
}

/** Sends one frame and returns the next message that arrives after it. */
export async function reply(r: RawClient, data: string | Buffer, binary = false): Promise<RpcMessage> {
  const n = r.messages.length;
  r.sendRaw(data, binary);
  return waitFor(() => r.messages[n], 5_000, 'a reply');
}

export function errorOf(m: RpcMessage, code: number, what = ''): NonNullable<RpcMessage['error']> {
  assert.ok(m.error, `${what}: expected error ${code}, got ${JSON.stringify(m)}`);
  assert.equal(m.error.code, code, `${what}: ${JSON.stringify(m.error)}`);
  assert.equal(typeof m.error.message, 'string');
  assert.ok(m.error.message.length > 0, 'the message says what to do');
  assert.equal(m.jsonrpc, '2.0');
  assert.equal(m.result, undefined);
  return m.error;
}

export function ok<T = Record<string, unknown>>(m: RpcMessage, what = ''): T {
  assert.equal(m.error, undefined, `${what}: unexpected error ${JSON.stringify(m.error)}`);
  return m.result as T;
}

export async function assertPong(r: RawClient): Promise<void> {
  const m = await r.call('system.ping');
  assert.equal(ok<{ pong: boolean }>(m, 'ping').pong, true);
}

/** A session with known state and a file, that the tests' bad input must leave alone. */
export async function plantSentinel(bound: (environment: string, sessionId: string) => Promise<RawClient>): Promise<void> {
  const s = await bound('server', 'sentinel');
  ok(await s.call('state.set', { key: 'guard', value: { v: 1 } }));
  ok(await s.call('fs.write', { path: 'guard.txt', content: 'guarded' }));
  s.close();
}
