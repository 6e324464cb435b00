// Continuum trees the bench starts, each in a fresh home, tracked (with any other scratch
// folder) so that a failed or interrupted run can stop and remove them.
import { stopTree, tempHome, Tree, type PsRow } from '../test/helpers/tree.js';
import { BenchConn } from './load.js';

export const trees = new Set<Tree>();
/** Temporary folders removed when the bench ends. */
export const scratch: string[] = [];

export function newTree(config: Record<string, unknown>, port: number): Tree {
  const home = tempHome('ct-bench-');
  scratch.push(home);
  const tree = new Tree(home, port, config);
  trees.add(tree);
  return tree;
}

export async function dropTree(tree: Tree): Promise<void> {
  trees.delete(tree);
  await stopTree(tree);
}

/** Opens a connection and binds it to a session of `environment`. */
export async function openBound(tree: Tree, environment: string, params: Record<string, unknown> = {}): Promise<BenchConn> {
  const conn = await BenchConn.open(tree.url, tree.token(environment));
  const r = await conn.call('session.connect', { environment, ...params });
  if (r.error) {
    await conn.close();
    throw new Error(`session.connect (${environment}) failed: ${r.error.code} ${r.error.message}`);
  }
  conn.sessionId = String(r.result!.sessionId);
  return conn;
}

export function pidOf(rows: PsRow[], id: string): number {
  const pid = rows.find((r) => r.id === id)?.pid;
  if (!pid) throw new Error(`no running ${id} in continuum ps`);
  return pid;
}
