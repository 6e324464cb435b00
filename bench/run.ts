// `npm run bench`: Continuum against the raw floor, in one run on this machine.
//
//   1. cold start: spawn `continuum start` (fresh home) → banner, and → first answered
//      system.ping; median of 3.
//   2. system.ping, interleaved in rounds so that machine noise hits both sides alike:
//        raw `ws` echo server (own process)         — the floor for one WebSocket hop
//        Continuum's tree (edge → remote executor)  — started with the real CLI
//      each: 1 connection sequential (p50/p99) and 100 connections × 16 in flight
//      (throughput, p50/p99). Diagnostics in the same rounds: a minimal two-process relay
//      (the floor for Continuum's architecture), the edge alone, the executor alone, and
//      the CPU each process spends per request.
//   3. edge RSS with 10 000 sessions (created and used once over 100 connections), then
//      with 1 000 open connections each bound to its own session.
//   4. kill -9 of an executor → first successfully answered ping, median of 7 kills.
//   5. the command ledger's cost: the same load on two trees, ledger on and off, interleaved.
//
// Everything targets 127.0.0.1; every loop is bounded in count and time. Figures are
// PASS/MISS against targets but never fail the run; only a broken bench exits non-zero.
//
// The phases are in phases/, one file each; this file runs them in order, stops whatever
// they started (also on Ctrl-C or a failure), and prints the summary table.
import fs from 'node:fs';
import os from 'node:os';
import { helpers, stopHelper } from './helper-process.js';
import { log } from './log.js';
import { phaseColdStart } from './phases/cold-start.js';
import { phaseLedger } from './phases/ledger.js';
import { phaseMemory } from './phases/memory.js';
import { phasePing } from './phases/ping.js';
import { phaseRestart } from './phases/restart.js';
import { loadAverage } from './stats.js';
import { summary } from './summary.js';
import { dropTree, scratch, trees } from './trees.js';

let cleaning: Promise<void> | undefined;
/** Stops what the bench started; once, however many paths ask (an interrupt and the main flow's end). */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const proc of [...helpers]) await stopHelper(proc).catch(() => undefined);
    for (const tree of [...trees]) await dropTree(tree).catch(() => undefined);
    for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true });
  })();
  return cleaning;
}

let interrupted = false;
function interrupt(why: string | undefined): void {
  if (interrupted) {
    if (why) process.exit(130); // a second Ctrl-C: now
    return;
  }
  interrupted = true;
  if (why) log(`${why}; stopping what the bench started`);
  void cleanup().finally(() => process.exit(130));
}
process.on('SIGINT', () => interrupt('interrupted'));
// Piped into something that quit (`| head`): stop the trees rather than leave them running.
process.stdout.on('error', () => interrupt(undefined));

log(`Continuum bench: node ${process.version}, ${os.cpus().length} cores, load average ${loadAverage()}; per-command logging is on (it always is)`);
let failed = false;
try {
  // `npm run bench -- ledger ping` runs only the phases named; no names runs them all.
  const only = new Set(process.argv.slice(2));
  const phases = { 'cold-start': phaseColdStart, ping: phasePing, memory: phaseMemory, restart: phaseRestart, ledger: phaseLedger };
  for (const [name, phase] of Object.entries(phases)) if (only.size === 0 || only.has(name)) await phase();
} catch (err) {
  failed = true;
  log(`bench failed: ${(err as Error).stack ?? String(err)}`);
} finally {
  await cleanup();
}
summary();
process.exit(failed ? 1 : 0);
