// What the escape-*.test.ts files share: a tree with every default environment, one
// session per environment, the attempt recorder and the result table printed at the end.
// Every attempt goes through the public protocol only (shell.exec, fs.*).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import type { ContinuumClient } from '../../../src/client/index.js';
import { startTree, stopTree, type Tree } from '../../helpers/tree.js';

export const CONFINED = ['browser', 'remote', 'agent', 'persona'] as const;
export const ALL = [...CONFINED, 'server'] as const;
export type EnvName = (typeof ALL)[number];

/** A run without bubblewrap can't test confinement: CI fails, elsewhere it skips loudly. */
export function bwrapMissing(): string | undefined {
  const found = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].some((p) => fs.existsSync(p));
  if (found) return undefined;
  if (process.env.CI === 'true') throw new Error('bubblewrap is not installed, and CI=true: the escape suite must run (apt-get install bubblewrap)');
  const why = 'SKIPPED: bubblewrap is not installed (apt-get install bubblewrap); the escape suite did not run';
  process.stderr.write(`\n*** ${why} ***\n\n`);
  return why;
}

export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const results: { attempt: string; env: string; outcome: 'blocked' | 'allowed' }[] = [];

/** Records one attempt's outcome for the table; `blocked` is what the test asserted. */
export function record(attempt: string, env: string, blocked: boolean): void {
  results.push({ attempt, env, outcome: blocked ? 'blocked' : 'allowed' });
}

export function printTable(title: string): void {
  if (!results.length) return;
  const attempts = [...new Set(results.map((r) => r.attempt))];
  const lines = [`| ${title} | ${ALL.join(' | ')} |`, `|---|${ALL.map(() => '---').join('|')}|`];
  for (const a of attempts) {
    lines.push(`| ${a} | ${ALL.map((e) => results.find((r) => r.attempt === a && r.env === e)?.outcome ?? '–').join(' | ')} |`);
  }
  process.stdout.write(`\n${lines.join('\n')}\n\n`);
  const file = process.env.ESCAPE_RESULTS_FILE ?? path.join(os.tmpdir(), 'continuum-escape-results.ndjson');
  fs.appendFileSync(file, results.map((r) => JSON.stringify({ suite: title, ...r })).join('\n') + '\n');
}

/** One tree for a file, a client per environment, the table printed after. */
export function useEscapeTree(title: string, config: Record<string, unknown> = {}) {
  const state: { tree?: Tree; clients: Map<string, ContinuumClient> } = { clients: new Map() };
  before(async () => {
    // A marker in the supervisor's environment: no sandbox may ever read it.
    process.env.CONTINUUM_ESCAPE_MARKER = MARKER;
    state.tree = await startTree({ config });
    delete process.env.CONTINUUM_ESCAPE_MARKER;
  });
  after(async () => {
    for (const c of state.clients.values()) await c.close();
    await stopTree(state.tree);
    printTable(title);
  });
  const tree = () => state.tree!;
  async function client(env: string, sessionId = `escape-${env}`): Promise<ContinuumClient> {
    const key = `${env}/${sessionId}`;
    let c = state.clients.get(key);
    if (!c) {
      c = await tree().client(env, { reconnect: false, sessionId });
      state.clients.set(key, c);
    }
    return c;
  }
  async function sh(env: string, command: string, opts: { timeoutMs?: number; sessionId?: string } = {}): Promise<ExecResult> {
    const c = await client(env, opts.sessionId);
    return (await c.exec(command, { timeoutMs: opts.timeoutMs ?? 20_000 })) as ExecResult;
  }
  return { tree, client, sh };
}

export const MARKER = `escape-marker-${process.pid}-${Date.now()}`;

/** A failed command: non-zero exit (or killed), and none of `secrets` in its output. */
export function assertFailed(r: ExecResult, what: string, secrets: string[] = []): void {
  assert.ok(r.exitCode !== 0, `${what}: exited 0\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  for (const s of secrets) assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), `${what}: output contains the secret`);
}
