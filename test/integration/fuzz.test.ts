// Fault injection, fuzz (issue 4): a seeded fuzzer (test/helpers/fuzz.ts) sends 100 000
// generated and mutated frames — wrong types, deep nesting, huge strings, invalid UTF-8,
// binary frames, duplicate ids, floods — over many connections of every environment.
// Nothing crashes or restarts; every frame with an id gets a valid JSON-RPC 2.0 answer
// with that id; and a client of another session keeps its median latency within 3x of a
// quiet run measured just before. FUZZ_SEED=<n> replays a run; FUZZ_FRAMES=<n> resizes it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { DriverOptions, DriverReport } from '../helpers/fuzz-driver.js';
import { RawClient } from '../helpers/raw-client.js';
import { startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';

const DRIVER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/fuzz-driver.js');
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31);
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 100_000);
const CONNECTIONS = 24;
const ENVIRONMENTS = ['server', 'remote', 'agent', 'persona', 'browser'];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function ping(r: RawClient): Promise<number> {
  const t = performance.now();
  const m = await r.call('system.ping', undefined, 30_000);
  assert.equal(m.error, undefined, `the probe's ping failed: ${JSON.stringify(m.error)}`);
  return performance.now() - t;
}

function runDriver(options: DriverOptions): { done: Promise<DriverReport>; running: () => boolean; kill: () => void } {
  const child = spawn(process.execPath, [DRIVER, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let exited = false;
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const done = new Promise<DriverReport>((resolve, reject) => {
    child.once('exit', (code) => {
      exited = true;
      if (code !== 0) reject(new Error(`the fuzz driver exited with ${code}:\n${err}`));
      else resolve(JSON.parse(out) as DriverReport);
    });
  });
  return { done, running: () => !exited, kill: () => void (exited || child.kill('SIGKILL')) };
}

describe('faults: fuzz', () => {
  let tree: Tree;
  let probe: RawClient | undefined;
  before(async () => {
    tree = await startTree();
  });
  after(async () => {
    probe?.close();
    await stopTree(tree);
  });

  test(`${FRAMES} fuzzed frames over ${CONNECTIONS} connections (seed ${SEED}): no crash, every id answered, others' latency within 3x`, { timeout: 900_000 }, async () => {
    console.log(`# fuzz seed ${SEED} (FUZZ_SEED=${SEED} replays this run)`);
    const tokens = Object.fromEntries(ENVIRONMENTS.map((e) => [e, tree.token(e)]));
    // Standbys boot a moment after the tree: wait for them, so that any change means a crash.
    await waitFor(async () => (await tree.standbys()).length === ENVIRONMENTS.length, 30_000, 'every standby to be ready');
    const before_ = [...(await tree.ps()), ...(await tree.standbys())].map((r) => `${r.id}:${r.pid}:${r.restarts}:${r.state}`);

    probe = await RawClient.open(tree.url, tree.token('server'));
    assert.equal((await probe.call('session.connect', { environment: 'server', sessionId: 'fuzz-probe' })).error, undefined);
    for (let i = 0; i < 50; i++) await ping(probe);
    const quiet: number[] = [];
    for (let i = 0; i < 500; i++) quiet.push(await ping(probe));

    const driver = runDriver({ url: tree.url, tokens, seed: SEED, frames: FRAMES, connections: CONNECTIONS, environments: ENVIRONMENTS });
    const loaded: number[] = [];
    try {
      while (driver.running()) loaded.push(await ping(probe));
    } catch (err) {
      // Say what the tree went through, so that a failure under load can be read.
      const exits = tree.logLines('server').filter((l) => /child exited|missed its heartbeat|client closed/.test(String(l.msg))).map((l) => `${String(l.id ?? l.component)}: ${String(l.msg)} ${String(l.cause ?? '')}`);
      const rows = (await tree.ps().catch(() => [])).map((r) => `${r.id}:${r.pid}:${r.restarts}:${r.state}`);
      driver.kill();
      throw new Error(`seed ${SEED}: the probe failed after ${loaded.length} pings under fuzz (${(err as Error).message}); probe connection ${probe.closeCode === undefined ? 'open' : `closed with ${probe.closeCode}`}; tree ${rows.join(' ')}; server.log: ${exits.join(' | ') || 'no exits'}`, { cause: err });
    }
    const report = await driver.done;

    const q = median(quiet);
    const l = median(loaded);
    console.log(`# fuzz: seed ${SEED}; ${report.framesSent} frames in ${report.durationMs} ms (${Math.round(report.framesSent / (report.durationMs / 1000))}/s) over ${CONNECTIONS} connections; by category ${JSON.stringify(report.byCategory)}; ${report.responses} answers (errors by code ${JSON.stringify(report.errorsByCode)}), ${report.notifications} notifications; probe ping median ${q.toFixed(2)} ms quiet (${quiet.length} samples), ${l.toFixed(2)} ms under fuzz (${loaded.length} samples); problems ${report.problems.length}`);
    assert.deepEqual(report.problems, [], `seed ${SEED}: ${report.problems.length} problems`);
    assert.equal(report.framesSent, FRAMES);
    const after_ = [...(await tree.ps()), ...(await tree.standbys())].map((r) => `${r.id}:${r.pid}:${r.restarts}:${r.state}`);
    assert.deepEqual(after_, before_, 'a process of the tree crashed or was restarted');
    assert.ok(loaded.length >= 100, `only ${loaded.length} probe samples during the fuzz`);
    assert.ok(l <= 3 * q, `another client's median ping went from ${q.toFixed(2)} ms quiet to ${l.toFixed(2)} ms under fuzz (over 3x)`);
  });
});
