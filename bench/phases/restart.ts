// Phase 4: kill -9 of an executor until the first answer from its replacement, and where
// that time goes according to the tree's own logs.
import { performance } from 'node:perf_hooks';
import { freePort } from '../../test/helpers/tree.js';
import { KILLS, PACED_KILLS, RESTART_CONFIG } from '../config.js';
import { F } from '../figures.js';
import type { BenchConn } from '../load.js';
import { log } from '../log.js';
import { watchingNoise } from '../noise.js';
import { fmtMs, median, sleep } from '../stats.js';
import { dropTree, newTree, openBound } from '../trees.js';

interface KillRecord {
  oldPid: number;
  newPid: number;
  killAt: number;
  ms: number;
  attempts: number;
}

/** Kills the executor serving `conn`'s session, then pings until a new one answers. */
async function killOnce(conn: BenchConn, retryPauseMs: number): Promise<KillRecord> {
  const p = await conn.call('system.ping');
  if (p.error) throw new Error(`ping before kill failed: ${p.error.message}`);
  const oldPid = (p.result!.executor as { pid: number }).pid;
  const killAt = Date.now();
  const t0 = performance.now();
  process.kill(oldPid, 'SIGKILL');
  let attempts = 0;
  const deadline = t0 + 10_000;
  while (performance.now() < deadline) {
    attempts++;
    const r = await conn.call('system.ping', undefined, 5_000);
    if (r.result) {
      const newPid = (r.result.executor as { pid: number }).pid;
      if (newPid !== oldPid) {
        return { oldPid, newPid, killAt, ms: performance.now() - t0, attempts };
      }
    } else if (r.error && r.error.code !== -32003) {
      throw new Error(`ping after kill failed with ${r.error.code}: ${r.error.message}`);
    }
    if (retryPauseMs > 0) await sleep(retryPauseMs);
  }
  throw new Error('no answer from a new executor within 10 s of the kill');
}

export async function phaseRestart(): Promise<void> {
  log(`phase 4/5: kill -9 of the remote executor → first answered ping (fresh tree, config ${JSON.stringify(RESTART_CONFIG)})`);
  log(`  ${KILLS} kills, 1.5 s apart (so the restart backoff has reset); the client re-sends at once on each -32003`);
  const tree = newTree(RESTART_CONFIG, await freePort());
  await tree.start();
  const conn = await openBound(tree, 'remote');
  for (let i = 0; i < 200; i++) await conn.call('system.ping');
  const records: KillRecord[] = [];
  for (let k = 0; k < KILLS; k++) {
    await sleep(1_500);
    const { value: r, otherPercent } = await watchingNoise(`kill ${k + 1}`, () => [tree.proc?.pid], () => killOnce(conn, 0));
    records.push(r);
    F.restart.push(r.ms);
    log(`  kill ${k + 1}: pid ${r.oldPid} → ${r.newPid}, first answer after ${fmtMs(r.ms)} (${r.attempts} attempts; others used ${otherPercent.toFixed(0)} % of a core)`);
  }
  log(`  diagnostic: ${PACED_KILLS} more kills with the client pausing 5 ms between retries (no retry storm competing for the 2 cores)`);
  const paced: KillRecord[] = [];
  for (let k = 0; k < PACED_KILLS; k++) {
    await sleep(1_500);
    const r = await killOnce(conn, 5);
    paced.push(r);
    F.restartPaced.push(r.ms);
    log(`  paced kill ${k + 1}: pid ${r.oldPid} → ${r.newPid}, first answer after ${fmtMs(r.ms)} (${r.attempts} attempts)`);
  }
  await conn.close();
  await sleep(100);

  // Where the time goes, from the tree's own logs (every process stamps Date.now()).
  const server = tree.logLines('server');
  const remote = tree.logLines('remote');
  const at = (lines: Record<string, unknown>[], pred: (l: Record<string, unknown>) => boolean) => lines.find(pred)?.time as number | undefined;
  const steps: [string, string][] = [
    ['exitSeen', 'kill → supervisor logs the exit'],
    ['execReady', '→ new executor logs "ready" (fork + node boot + imports)'],
    ['childStarted', '→ supervisor logs "child started" (ready over IPC)'],
    ['linkUp', '→ edge logs "executor link up"'],
    ['firstAnswer', '→ client gets the first answer (incl. session.load)'],
  ];
  const breakdown = (set: KillRecord[], label: string) => {
    const parts = new Map<string, number[]>(steps.map(([k]) => [k, []]));
    for (const r of set) {
      const points: Record<string, number | undefined> = {
        exitSeen: at(server, (l) => l.msg === 'child exited' && l.childPid === r.oldPid),
        execReady: at(remote, (l) => l.msg === 'executor ready' && l.pid === r.newPid),
        childStarted: at(server, (l) => l.msg === 'child started' && l.childPid === r.newPid),
        linkUp: at(server, (l) => l.msg === 'executor link up' && l.pid === r.newPid),
        firstAnswer: r.killAt + r.ms,
      };
      let prev = r.killAt;
      for (const [k] of steps) {
        const t = points[k];
        if (t === undefined) continue;
        parts.get(k)!.push(t - prev);
        prev = t;
      }
    }
    log(`  median breakdown, ${label}:`);
    for (const [k, name] of steps) {
      const v = parts.get(k)!;
      if (v.length) log(`    ${name.padEnd(56)} ${fmtMs(median(v)).padStart(8)}`);
    }
  };
  breakdown(records, `${records.length} kills, immediate retry`);
  breakdown(paced, `${paced.length} kills, retry paced at 5 ms`);
  await dropTree(tree);
}
