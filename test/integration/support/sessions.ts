// What the sessions-*.test.ts files share: the tree config, the session id pattern, and
// client helpers that open connections to the tree a file is using and close them after.
import assert from 'node:assert/strict';
import path from 'node:path';
import { connect, ContinuumError, type ConnectOptions, type ContinuumClient } from '../../../src/client/index.js';
import { RawClient, type RpcMessage } from '../../helpers/raw-client.js';
import { after, before } from 'node:test';
import { startTree, stopTree, type Tree } from '../../helpers/tree.js';

export const CONFIG = {
  environments: [
    { name: 'remote', output: { maxBytes: 2048 } },
    { name: 'agent', replicas: 2 },
  ],
};
export const SESSION_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Helpers bound to a file's tree. `tree` is read on every call, not once, because a test may
 * stop the tree and start another in the same home.
 */
export function sessionClients(tree: () => Tree) {
  const opened: { close(): unknown }[] = [];

  /** An SDK client that does not reconnect by itself (a test reconnects on purpose). */
  async function client(environment: string, opts: Partial<ConnectOptions> = {}): Promise<ContinuumClient> {
    const c = await tree().client(environment, { reconnect: false, ...opts });
    opened.push(c);
    return c;
  }

  /** Joins by id only (session.join): no environment given. */
  async function joinById(sessionId: string, tokenOf = 'server'): Promise<ContinuumClient> {
    const c = await connect({ url: tree().url, token: tree().token(tokenOf), sessionId, reconnect: false });
    opened.push(c);
    return c;
  }

  async function raw(environment: string): Promise<RawClient> {
    const r = await RawClient.open(tree().url, tree().token(environment));
    opened.push(r);
    return r;
  }

  async function closeAll(): Promise<void> {
    const all = opened.splice(0);
    await Promise.all(all.map(async (c) => c.close()));
  }

  function workspace(environment: string, sessionId: string): string {
    return path.join(tree().home, 'workspaces', environment, sessionId);
  }

  return { client, joinById, raw, closeAll, workspace };
}

/** The ContinuumError a call fails with; fails the test if it succeeds. */
export async function rpcError(p: Promise<unknown>): Promise<ContinuumError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ContinuumError) return err;
    throw err;
  }
  assert.fail('expected the call to fail');
}

export function resultOf<T>(m: RpcMessage): T {
  assert.equal(m.error, undefined, `unexpected error: ${JSON.stringify(m.error)}`);
  return m.result as T;
}

/** Starts the file's tree (CONFIG) before its tests, and closes its clients and stops it after. */
export function useSessionTree(set: (tree: Tree) => void, get: () => Tree, closeAll: () => Promise<unknown>): void {
  before(async () => set(await startTree({ config: CONFIG })));
  after(async () => {
    await closeAll();
    await stopTree(get());
  });
}
