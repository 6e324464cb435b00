// Phase 2: system.ping through Continuum against a bare `ws` echo server, in interleaved
// rounds so that machine noise hits both alike, with diagnostics (a two-process relay, the
// edge alone, the executor alone) and the CPU each process spends per request.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { homePaths } from '../../src/config/paths.js';
import { freePort } from '../../test/helpers/tree.js';
import { ExecutorDirect } from '../bus-client.js';
import { ENVIRONMENTS, LOAD, PING_CONFIG, ROUNDS, SEQ } from '../config.js';
import { cpuMeter, printCpu, type Proc } from '../cpu.js';
import { F, N } from '../figures.js';
import { startHelper, stopHelper } from '../helper-process.js';
import { BenchConn, closeAll, closedLoop, openMany, sequential, sequentialWith, type LoadResult, type SequentialResult } from '../load.js';
import { log } from '../log.js';
import { watchingNoise } from '../noise.js';
import { fmtMiB, fmtMs, fmtRate, MiB } from '../stats.js';
import { dropTree, newTree, openBound, pidOf, scratch } from '../trees.js';

function describeLoad(r: LoadResult): string {
  const errs = Object.entries(r.errors);
  return `${fmtRate(r.rate).padStart(13)}, p50 ${fmtMs(r.latency.p50).padStart(7)}, p99 ${fmtMs(r.latency.p99).padStart(7)}${errs.length ? `; errors ${errs.map(([c, n]) => `${c}×${n}`).join(', ')}` : ''}`;
}

function describeSeq(r: SequentialResult, otherPercent?: number): string {
  return `p50 ${fmtMs(r.p50).padStart(7)}, p99 ${fmtMs(r.p99).padStart(7)}, mean ${fmtMs(r.mean).padStart(7)} (n=${r.n}${r.errors ? `, ${r.errors} error answers` : ''}${otherPercent !== undefined ? `; others used ${otherPercent.toFixed(0)} % of a core` : ''})`;
}

export async function phasePing(): Promise<void> {
  log(`phase 2/5: system.ping — raw ws echo vs Continuum (config ${JSON.stringify(PING_CONFIG)}), ${ROUNDS} interleaved rounds`);
  const echo = await startHelper('echo-server.js', [], /PORT (\d+)/);
  const rawUrl = `ws://127.0.0.1:${echo.match[1]}/`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ct-relay-'));
  scratch.push(dir);
  const sock = path.join(dir, 'relay.sock');
  const backend = await startHelper('relay.js', ['backend', sock], /READY/);
  const front = await startHelper('relay.js', ['front', sock], /PORT (\d+)/);
  const relayUrl = `ws://127.0.0.1:${front.match[1]}/`;
  const tree = newTree(PING_CONFIG, await freePort());
  await tree.start();
  const rows = await tree.ps();
  const edgePid = pidOf(rows, 'websocket-daemon');
  const treeProcs: Proc[] = [
    { name: 'continuum-websocket-daemon (edge)', pid: edgePid },
    ...ENVIRONMENTS.map((e) => ({ name: `continuum-${e}-executor`, pid: pidOf(rows, `${e}-0`) })),
    { name: 'continuum-supervisor (log writer)', pid: pidOf(rows, 'supervisor') },
    { name: 'continuum-session-daemon', pid: pidOf(rows, 'session-daemon') },
  ];
  const echoProcs: Proc[] = [{ name: 'echo server', pid: echo.proc.pid! }];
  const relayProcs: Proc[] = [
    { name: 'relay front (ws server)', pid: front.proc.pid! },
    { name: 'relay backend', pid: backend.proc.pid! },
  ];
  log(`  started: echo server pid ${echo.proc.pid}, relay pids ${front.proc.pid}/${backend.proc.pid}, Continuum edge pid ${edgePid} (${tree.url})`);
  log('  what is measured:');
  log('    raw        bare `ws` server in its own process: parse the request, stringify a ping-shaped answer');
  log('    Continuum  system.ping on a connection bound to a remote session: edge → remote executor → edge');
  log('    relay      (diagnostic) ws server → Unix socket (Continuum frame codec) → echo process: the floor for one extra process hop');
  log('    edge alone (diagnostic) system.ping with no session bound: answered -32012 by the edge itself (no executor, no log line)');
  log('    executor   (diagnostic) system.ping frames sent straight to remote-0\'s Unix socket, bypassing the edge');

  const rawOne = await BenchConn.open(rawUrl);
  const relayOne = await BenchConn.open(relayUrl);
  const ctOne = await openBound(tree, 'remote');
  const unbound = await BenchConn.open(tree.url, tree.token('remote'));
  const direct = await ExecutorDirect.open(homePaths(tree.home).executorSocket('remote-0'), ctOne.sessionId!);
  log(`  opening ${LOAD.connections} load connections to each (Continuum's bound to remote sessions)`);
  const rawConns = await openMany(LOAD.connections, () => BenchConn.open(rawUrl));
  const relayConns = await openMany(LOAD.connections, () => BenchConn.open(relayUrl));
  const ctConns = await openMany(LOAD.connections, () => openBound(tree, 'remote'));

  for (let round = 1; round <= ROUNDS; round++) {
    log(`  round ${round}/${ROUNDS}: sequential, 1 connection (${SEQ.warmup} warm-up, then up to ${SEQ.count} pings or ${SEQ.maxMs / 1000} s each)`);
    const seq = async (label: string, root: () => (number | undefined)[], run: () => Promise<SequentialResult>, into: SequentialResult[], noise?: number[]) => {
      const { value, otherPercent } = await watchingNoise(`round ${round} sequential ${label.trim()}`, root, run);
      into.push(value);
      noise?.push(otherPercent);
      log(`    ${label} ${describeSeq(value, otherPercent)}`);
    };
    const echoRoot = () => [echo.proc.pid];
    const treeRoot = () => [tree.proc?.pid];
    await seq('raw       ', echoRoot, () => sequential(rawOne, SEQ), F.rawSeq, N.rawSeq);
    await seq('Continuum ', treeRoot, () => sequential(ctOne, SEQ), F.ctSeq, N.ctSeq);
    await seq('relay     ', () => [front.proc.pid, backend.proc.pid], () => sequential(relayOne, SEQ), F.relaySeq, N.relaySeq);
    await seq('edge alone', treeRoot, () => sequential(unbound, SEQ), F.edgeSeq, N.edgeSeq);
    await seq('executor  ', treeRoot, () => sequentialWith(() => direct.ping(), SEQ), F.execSeq, N.execSeq);

    log(`  round ${round}/${ROUNDS}: load, ${LOAD.connections} connections × ${LOAD.depth} in flight (${LOAD.warmupMs / 1000} s warm-up + ${LOAD.measureMs / 1000} s measured each)`);
    const load = async (label: string, conns: BenchConn[], procs: Proc[], into: LoadResult[], noise: number[]) => {
      const meter = cpuMeter(procs);
      const r = await closedLoop(conns, LOAD, { onMeasureStart: meter.start, onMeasureEnd: meter.end });
      into.push(r);
      noise.push(meter.report.otherMs / meter.report.seconds / 10);
      log(`    ${label} ${describeLoad(r)}`);
      printCpu(`round ${round} load ${label.trim()}`, meter.report, r.completed);
    };
    await load('raw       ', rawConns, echoProcs, F.rawLoad, N.rawLoad);
    await load('Continuum ', ctConns, treeProcs, F.ctLoad, N.ctLoad);
    await load('relay     ', relayConns, relayProcs, F.relayLoad, N.relayLoad);
  }
  await closeAll([rawOne, relayOne, ctOne, unbound, ...rawConns, ...relayConns, ...ctConns]);
  direct.close();

  log(`  diagnostic: the same Continuum load spread over the 5 environments (${LOAD.connections / ENVIRONMENTS.length} connections each, 5 executors)`);
  const spread = await openMany(LOAD.connections, (i) => openBound(tree, ENVIRONMENTS[i % ENVIRONMENTS.length]!));
  const meter = cpuMeter(treeProcs);
  F.spreadLoad = await closedLoop(spread, LOAD, { onMeasureStart: meter.start, onMeasureEnd: meter.end });
  log(`    Continuum, 5 executors ${describeLoad(F.spreadLoad)}`);
  printCpu('load over 5 executors', meter.report, F.spreadLoad.completed);
  await closeAll(spread);

  const logDir = path.join(tree.home, 'logs');
  const logBytes = fs.readdirSync(logDir).reduce((a, f) => a + fs.statSync(path.join(logDir, f)).size, 0);
  log(`  per-command logging wrote ${fmtMiB(logBytes)} of logs during this phase (rotated at ${fmtMiB(10 * MiB)} per file)`);
  await dropTree(tree);
  for (const h of [front, backend, echo]) await stopHelper(h.proc);
}
