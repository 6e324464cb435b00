// Phase 5: the command ledger's cost. Two trees in the same run, one with the ledger and
// one without (`ledger.enabled: false`), loaded alike in interleaved rounds (the order
// alternates, so drift hits both). system.ping is the bench's throughput figure (read-only,
// so not ledgered: it shows the ledger costs other requests nothing); state.set with string
// ids is the worst case for the ledger (the cheapest command that changes something: two
// ledger writes per request); shell.exec is what the ledger is mostly for.
// Target: throughput with the ledger ≥ 0.9× without.
import { freePort } from '../../test/helpers/tree.js';
import { LOAD, PING_CONFIG, ROUNDS } from '../config.js';
import { F } from '../figures.js';
import { closeAll, closedLoop, openMany, type LoadResult } from '../load.js';
import { log } from '../log.js';
import { fmtMs, fmtRate, median } from '../stats.js';
import { cpuMeter, printCpu, type Proc } from '../cpu.js';
import { dropTree, newTree, openBound, pidOf } from '../trees.js';
import type { Tree } from '../../test/helpers/tree.js';

/** The processes a ledgered request goes through (the bench's sessions are on remote-0). */
async function ledgerProcs(tree: Tree): Promise<Proc[]> {
  const rows = await tree.ps();
  return [
    { name: 'continuum-websocket-daemon (edge)', pid: pidOf(rows, 'websocket-daemon') },
    { name: 'continuum-remote-executor', pid: pidOf(rows, 'remote-0') },
    { name: 'continuum-session-daemon', pid: pidOf(rows, 'session-daemon') },
    { name: 'continuum-supervisor (log writer)', pid: pidOf(rows, 'supervisor') },
  ];
}

const WORKLOADS = [
  { name: 'system.ping (read-only)', method: 'system.ping', params: undefined, stringIds: false, connections: LOAD.connections, depth: LOAD.depth },
  { name: 'state.set, string ids', method: 'state.set', params: { key: 'k', value: 1 }, stringIds: true, connections: LOAD.connections, depth: LOAD.depth },
  { name: 'shell.exec true, string ids', method: 'shell.exec', params: { command: 'true' }, stringIds: true, connections: 20, depth: 1 },
] as const;

export async function phaseLedger(): Promise<void> {
  log(`phase 5/5: the command ledger — the same load with the ledger on and off, ${ROUNDS} interleaved rounds`);
  const on = newTree(PING_CONFIG, await freePort());
  const off = newTree({ ...PING_CONFIG, ledger: { enabled: false } }, await freePort());
  await on.start();
  await off.start();
  log(`  started: ledger on ${on.url}, ledger off ${off.url}; ${LOAD.connections} connections × ${LOAD.depth} in flight, bound to remote sessions`);
  const procs = { on: await ledgerProcs(on), off: await ledgerProcs(off) };
  const onConns = await openMany(LOAD.connections, () => openBound(on, 'remote'));
  const offConns = await openMany(LOAD.connections, () => openBound(off, 'remote'));
  try {
    for (const w of WORKLOADS) {
      for (const [i, c] of [...onConns, ...offConns].entries()) c.idPrefix = w.stringIds ? `bench-${i}-` : undefined;
      const results = { on: [] as LoadResult[], off: [] as LoadResult[] };
      for (let round = 1; round <= ROUNDS; round++) {
        const order = round % 2 === 1 ? (['off', 'on'] as const) : (['on', 'off'] as const);
        for (const side of order) {
          const conns = (side === 'on' ? onConns : offConns).slice(0, w.connections);
          const meter = cpuMeter(procs[side]);
          const r = await closedLoop(conns, { ...LOAD, depth: w.depth, method: w.method, params: w.params }, { onMeasureStart: () => meter.start(), onMeasureEnd: () => meter.end() });
          results[side].push(r);
          const errs = Object.entries(r.errors);
          log(`    round ${round} ${w.name} (${w.connections}×${w.depth}), ledger ${side.padEnd(3)} ${fmtRate(r.rate).padStart(13)}, p50 ${fmtMs(r.latency.p50)}, p99 ${fmtMs(r.latency.p99)}${errs.length ? `; errors ${errs.map(([k, n]) => `${k}×${n}`).join(', ')}` : ''}`);
          // Where the ledger's cost lands, once per workload and side.
          if (round === ROUNDS) printCpu(`ledger ${side} ${w.name}`, meter.report, r.completed);
        }
      }
      const ratio = median(results.on.map((r, i) => r.rate / results.off[i]!.rate));
      F.ledger.push({ workload: w.name, on: median(results.on.map((r) => r.rate)), off: median(results.off.map((r) => r.rate)), ratio });
      log(`  ${w.name}: ledger on/off throughput ratio ${ratio.toFixed(3)} (median of per-round ratios; target ≥ 0.9)`);
    }
  } finally {
    await closeAll([...onConns, ...offConns]);
    await dropTree(on);
    await dropTree(off);
  }
}
