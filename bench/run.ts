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
//
// Everything targets 127.0.0.1; every loop is bounded in count and time. Figures are
// PASS/MISS against targets but never fail the run; only a broken bench exits non-zero.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { homePaths } from '../src/config/paths.js';
import { freePort, stopTree, tempHome, Tree, type PsRow } from '../test/helpers/tree.js';
import { ExecutorDirect } from './bus-client.js';
import { BenchConn, closeAll, closedLoop, openMany, sequential, sequentialWith, type LoadResult, type SequentialResult } from './load.js';
import { cpuMs, fmtMiB, fmtMs, fmtRate, hwmBytes, loadAverage, machineBusyMs, median, MiB, rssBytes, sleep, treeCpu, treeCpuDelta } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const PING_CONFIG = { limits: { maxInFlightPerConnection: 64 } };
const RESTART_CONFIG = { ...PING_CONFIG, restart: { stableAfterMs: 1000, intensity: 100, periodMs: 1000 } };
const ENVIRONMENTS = ['browser', 'server', 'remote', 'agent', 'persona'];

const ROUNDS = 4;
const SEQ = { warmup: 1_000, count: 5_000, maxMs: 2_500 };
const LOAD = { connections: 100, depth: 16, warmupMs: 1_000, measureMs: 3_000 };
const SESSIONS = { connections: 100, perConnection: 100, maxMs: 60_000 };
const OPEN_CONNECTIONS = 1_000;
const KILLS = 7;
const PACED_KILLS = 3;
const COLD_STARTS = 3;
/** Other processes using more than this share of a core during a measurement make it suspect. */
const NOISY_PERCENT = 25;

const benchStart = performance.now();
const trees = new Set<Tree>();
const scratch: string[] = [];
const helpers = new Set<ChildProcess>();
const noisy: string[] = [];

function log(msg: string): void {
  const t = ((performance.now() - benchStart) / 1000).toFixed(1).padStart(5);
  process.stdout.write(`[${t} s] ${msg}\n`);
}

function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a';
}

// ---------------------------------------------------------------- helper processes

/** Starts one of the bench's own helper processes and waits for its ready line. */
async function startHelper(script: string, args: string[], ready: RegExp): Promise<{ proc: ChildProcess; match: RegExpExecArray }> {
  const proc = spawn(process.execPath, [path.join(here, script), ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  helpers.add(proc);
  proc.once('exit', () => helpers.delete(proc));
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${script} did not start in 5 s`)), 5_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    proc.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return { proc, match };
}

async function stopHelper(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.stdin!.end();
  proc.kill('SIGTERM');
  await exited;
}

// ---------------------------------------------------------------- CPU accounting

interface Proc {
  name: string;
  pid: number;
}

interface CpuReport {
  seconds: number;
  shares: { name: string; cpuMs: number }[];
  /** CPU the rest of the machine used meanwhile (other users of this shared box), ms. */
  otherMs: number;
}

/** CPU spent by each process (and this one, and everything else) between start() and end(). */
function cpuMeter(procs: Proc[]) {
  let before: number[] = [];
  let selfBefore: NodeJS.CpuUsage | undefined;
  let machineBefore = 0;
  let t0 = 0;
  let report: CpuReport = { seconds: 0, shares: [], otherMs: 0 };
  return {
    start() {
      before = procs.map((p) => cpuMs(p.pid));
      selfBefore = process.cpuUsage();
      machineBefore = machineBusyMs();
      t0 = performance.now();
    },
    end() {
      const self = process.cpuUsage(selfBefore);
      const shares = [{ name: 'bench client (this process)', cpuMs: (self.user + self.system) / 1000 }, ...procs.map((p, i) => ({ name: p.name, cpuMs: cpuMs(p.pid) - before[i]! }))];
      const ours = shares.reduce((a, s) => a + s.cpuMs, 0);
      report = { seconds: (performance.now() - t0) / 1000, shares, otherMs: Math.max(0, machineBusyMs() - machineBefore - ours) };
    },
    get report() {
      return report;
    },
  };
}

function printCpu(label: string, r: CpuReport, requests: number): void {
  const pct = (ms: number) => `${(ms / r.seconds / 10).toFixed(0).padStart(4)} % of a core`;
  const per = (ms: number) => `${((ms * 1000) / Math.max(1, requests)).toFixed(1).padStart(6)} µs CPU/request`;
  for (const s of r.shares) if (s.cpuMs > 0 || !s.name.includes('executor')) log(`      ${s.name.padEnd(36)} ${pct(s.cpuMs)}  ${per(s.cpuMs)}`);
  const total = r.shares.reduce((a, s) => a + s.cpuMs, 0);
  log(`      ${'total (bench + server side)'.padEnd(36)} ${pct(total)}  ${per(total)}`);
  log(`      ${'other processes on this machine'.padEnd(36)} ${pct(r.otherMs)}${r.otherMs / r.seconds / 10 > NOISY_PERCENT ? '   ← busy machine: figure is noisy' : ''}`);
  noteNoise(label, r.otherMs / r.seconds / 10);
}

function noteNoise(label: string, percent: number): void {
  if (percent > NOISY_PERCENT) noisy.push(`${label} (${percent.toFixed(0)} % of a core used by others)`);
}

/**
 * Runs `fn` and reports how much CPU the rest of the machine (not this process, not the
 * processes at or below `roots()`) used meanwhile.
 */
async function watchingNoise<T>(label: string, roots: () => (number | undefined)[], fn: () => Promise<T>): Promise<{ value: T; otherPercent: number }> {
  const snapshot = () => {
    const all = new Map<number, number>();
    for (const r of roots()) if (r) for (const [pid, ms] of treeCpu(r)) all.set(pid, ms);
    return all;
  };
  const before = snapshot();
  const self = process.cpuUsage();
  const machine = machineBusyMs();
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const machineMs = machineBusyMs() - machine;
  const selfUsage = process.cpuUsage(self);
  const ours = (selfUsage.user + selfUsage.system) / 1000 + treeCpuDelta(before, snapshot());
  const otherPercent = Math.max(0, machineMs - ours) / seconds / 10;
  noteNoise(label, otherPercent);
  return { value, otherPercent };
}

function describeLoad(r: LoadResult): string {
  const errs = Object.entries(r.errors);
  return `${fmtRate(r.rate).padStart(13)}, p50 ${fmtMs(r.latency.p50).padStart(7)}, p99 ${fmtMs(r.latency.p99).padStart(7)}${errs.length ? `; errors ${errs.map(([c, n]) => `${c}×${n}`).join(', ')}` : ''}`;
}

function describeSeq(r: SequentialResult, otherPercent?: number): string {
  return `p50 ${fmtMs(r.p50).padStart(7)}, p99 ${fmtMs(r.p99).padStart(7)}, mean ${fmtMs(r.mean).padStart(7)} (n=${r.n}${r.errors ? `, ${r.errors} error answers` : ''}${otherPercent !== undefined ? `; others used ${otherPercent.toFixed(0)} % of a core` : ''})`;
}

// ---------------------------------------------------------------- Continuum helpers

function newTree(config: Record<string, unknown>, port: number): Tree {
  const home = tempHome('ct-bench-');
  scratch.push(home);
  const tree = new Tree(home, port, config);
  trees.add(tree);
  return tree;
}

async function dropTree(tree: Tree): Promise<void> {
  trees.delete(tree);
  await stopTree(tree);
}

/** Opens a connection and binds it to a session of `environment`. */
async function openBound(tree: Tree, environment: string, params: Record<string, unknown> = {}): Promise<BenchConn> {
  const conn = await BenchConn.open(tree.url, tree.token(environment));
  const r = await conn.call('session.connect', { environment, ...params });
  if (r.error) {
    await conn.close();
    throw new Error(`session.connect (${environment}) failed: ${r.error.code} ${r.error.message}`);
  }
  conn.sessionId = String(r.result!.sessionId);
  return conn;
}

function pidOf(rows: PsRow[], id: string): number {
  const pid = rows.find((r) => r.id === id)?.pid;
  if (!pid) throw new Error(`no running ${id} in continuum ps`);
  return pid;
}

/** Polls until a ping through a fresh connection succeeds; resolves with performance.now() then. */
async function firstPing(tree: Tree, deadline: number): Promise<number> {
  while (performance.now() < deadline) {
    let token: string | undefined;
    try {
      token = tree.token('remote');
    } catch {
      token = undefined;
    }
    if (!token) {
      await sleep(5);
      continue;
    }
    let conn: BenchConn;
    try {
      conn = await BenchConn.open(tree.url, token, 2_000);
    } catch {
      await sleep(5);
      continue;
    }
    try {
      while (performance.now() < deadline && !conn.closed) {
        const c = await conn.call('session.connect', { environment: 'remote' }, 2_000);
        if (c.error) {
          await sleep(5);
          continue;
        }
        while (performance.now() < deadline && !conn.closed) {
          const p = await conn.call('system.ping', undefined, 2_000);
          if (!p.error) return performance.now();
          await sleep(5);
        }
      }
    } finally {
      await conn.close();
    }
  }
  throw new Error('no successful ping before the deadline');
}

// ---------------------------------------------------------------- figures

interface Figures {
  rawSeq: SequentialResult[];
  relaySeq: SequentialResult[];
  ctSeq: SequentialResult[];
  edgeSeq: SequentialResult[];
  execSeq: SequentialResult[];
  rawLoad: LoadResult[];
  relayLoad: LoadResult[];
  ctLoad: LoadResult[];
  spreadLoad?: LoadResult;
  coldBanner: number[];
  coldPing: number[];
  restart: number[];
  restartPaced: number[];
  sessionsCreated?: number;
  rss10k?: number;
  rssOpen?: number;
  openConnections?: number;
}

/** Share of a core other processes used during each measurement, in the same order as the figures. */
const N: Record<'rawSeq' | 'relaySeq' | 'ctSeq' | 'edgeSeq' | 'execSeq' | 'rawLoad' | 'relayLoad' | 'ctLoad', number[]> = { rawSeq: [], relaySeq: [], ctSeq: [], edgeSeq: [], execSeq: [], rawLoad: [], relayLoad: [], ctLoad: [] };

const F: Figures = { rawSeq: [], relaySeq: [], ctSeq: [], edgeSeq: [], execSeq: [], rawLoad: [], relayLoad: [], ctLoad: [], coldBanner: [], coldPing: [], restart: [], restartPaced: [] };

// ---------------------------------------------------------------- phases

async function phaseColdStart(): Promise<void> {
  log(`phase 1/4: cold start — spawn \`continuum start\` (fresh home) → banner, and → first answered system.ping; ${COLD_STARTS} runs`);
  for (let i = 0; i < COLD_STARTS; i++) {
    const tree = newTree(PING_CONFIG, await freePort());
    const { value, otherPercent } = await watchingNoise(`cold start ${i + 1}`, () => [tree.proc?.pid], async () => {
      const t0 = performance.now();
      const started = tree.start();
      const pinged = firstPing(tree, t0 + 15_000);
      await started;
      const banner = performance.now() - t0;
      return { banner, ping: (await pinged) - t0 };
    });
    const reported = /ready in (\d+) ms/.exec(tree.stdout)?.[1] ?? '?';
    F.coldBanner.push(value.banner);
    F.coldPing.push(value.ping);
    log(`  run ${i + 1}: banner after ${fmtMs(value.banner)} (it says "ready in ${reported} ms"), first ping answered after ${fmtMs(value.ping)}; others used ${otherPercent.toFixed(0)} % of a core`);
    await dropTree(tree);
  }
}

async function phasePing(): Promise<void> {
  log(`phase 2/4: system.ping — raw ws echo vs Continuum (config ${JSON.stringify(PING_CONFIG)}), ${ROUNDS} interleaved rounds`);
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

async function phaseSessions(): Promise<void> {
  log(`phase 3/4: edge memory with many sessions (fresh tree, config ${JSON.stringify(PING_CONFIG)})`);
  const tree = newTree(PING_CONFIG, await freePort());
  await tree.start();
  const rows = await tree.ps();
  const edge = pidOf(rows, 'websocket-daemon');
  const executor = pidOf(rows, 'remote-0');
  const daemon = pidOf(rows, 'session-daemon');
  const mem = () => `edge RSS ${fmtMiB(rssBytes(edge))} (peak ${fmtMiB(hwmBytes(edge))}); remote executor ${fmtMiB(rssBytes(executor))}; session daemon ${fmtMiB(rssBytes(daemon))}`;
  await sleep(500);
  const baseline = rssBytes(edge);
  log(`  idle tree: ${mem()}`);

  const total = SESSIONS.connections * SESSIONS.perConnection;
  log(`  creating ${total.toLocaleString('en-US')} sessions over ${SESSIONS.connections} connections: each connection ${SESSIONS.perConnection}× session.connect {environment:"remote", mode:"new"} (which moves it to the new session) then one system.ping in it; ≤ ${SESSIONS.maxMs / 1000} s`);
  const conns = await openMany(SESSIONS.connections, () => BenchConn.open(tree.url, tree.token('remote')));
  let created = 0;
  let failures = 0;
  const t0 = performance.now();
  const deadline = t0 + SESSIONS.maxMs;
  await Promise.all(
    conns.map(async (conn, c) => {
      for (let i = 0; i < SESSIONS.perConnection && performance.now() < deadline; i++) {
        const r = await conn.call('session.connect', { environment: 'remote', mode: 'new', sessionId: `bench-${c}-${i}` });
        const p = r.error ? r : await conn.call('system.ping');
        if (r.error || p.error) {
          failures++;
          continue;
        }
        created++;
        if (created % 2_500 === 0) log(`  … ${created.toLocaleString('en-US')} sessions (${((created * 1000) / (performance.now() - t0)).toFixed(0)}/s): ${mem()}`);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  F.sessionsCreated = created;
  const counted = (await tree.ps()).find((r) => r.id === 'remote-0')?.sessions;
  await sleep(300);
  F.rss10k = rssBytes(edge);
  log(`  ${created.toLocaleString('en-US')} sessions created and pinged in ${secs.toFixed(1)} s (${(created / secs).toFixed(0)}/s, ${failures} failures); \`continuum ps\` counts ${counted} sessions on remote-0`);
  log(`  → with ${SESSIONS.connections} connections open and ${created.toLocaleString('en-US')} sessions in the store: ${mem()}`);
  await closeAll(conns);
  await sleep(300);
  const afterClose = rssBytes(edge);
  log(`  those connections closed (their sessions stay in the store): edge RSS ${fmtMiB(afterClose)}`);

  log(`  opening ${OPEN_CONNECTIONS} WebSocket connections, each bound to its own new session and pinged once, all kept open`);
  const open = await openMany(OPEN_CONNECTIONS, async (i) => {
    const conn = await openBound(tree, 'remote', { mode: 'new', sessionId: `bench-open-${i}` });
    const p = await conn.call('system.ping');
    if (p.error) throw new Error(`ping failed: ${p.error.message}`);
    if ((i + 1) % 250 === 0) log(`  … ${i + 1} connections open`);
    return conn;
  });
  F.openConnections = open.filter((c) => !c.closed).length;
  await sleep(300);
  F.rssOpen = rssBytes(edge);
  log(`  → with ${F.openConnections} connections open, each bound (${(created + OPEN_CONNECTIONS).toLocaleString('en-US')} sessions in the store): ${mem()}`);
  log(`  ≈ ${((F.rssOpen - afterClose) / OPEN_CONNECTIONS / 1024).toFixed(1)} KiB of edge RSS per open bound connection; the idle edge was ${fmtMiB(baseline)}`);
  await closeAll(open);
  await dropTree(tree);
}

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

async function phaseRestart(): Promise<void> {
  log(`phase 4/4: kill -9 of the remote executor → first answered ping (fresh tree, config ${JSON.stringify(RESTART_CONFIG)})`);
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

// ---------------------------------------------------------------- summary

const med = (xs: number[]) => median(xs);

/** Rounds in which neither measurement was disturbed by other processes; all rounds if none was clean. */
function cleanRounds(a: keyof typeof N, b: keyof typeof N): { idx: number[]; clean: boolean } {
  const n = Math.min(N[a].length, N[b].length);
  const all = Array.from({ length: n }, (_, i) => i);
  const idx = all.filter((i) => N[a][i]! <= NOISY_PERCENT && N[b][i]! <= NOISY_PERCENT);
  return idx.length ? { idx, clean: true } : { idx: all, clean: false };
}

/** Median of a over the chosen rounds, median of b, and the median of the per-round ratios a/b. */
function compare(a: number[], b: number[], rounds: { idx: number[] }): { a: number; b: number; ratio: number } {
  const pick = (xs: number[]) => rounds.idx.map((i) => xs[i]!).filter((x) => x !== undefined);
  return { a: median(pick(a)), b: median(pick(b)), ratio: median(rounds.idx.map((i) => a[i]! / b[i]!)) };
}

function summary(): void {
  const rows: string[][] = [];
  const verdict = (ok: boolean | undefined) => (ok === undefined ? 'n/a' : ok ? 'PASS' : 'MISS');
  const rx = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a');
  const p50 = (s: SequentialResult[]) => s.map((x) => x.p50);
  const p99 = (s: SequentialResult[]) => s.map((x) => x.p99);
  const rate = (s: LoadResult[]) => s.map((x) => x.rate);
  const lp50 = (s: LoadResult[]) => s.map((x) => x.latency.p50);
  const lp99 = (s: LoadResult[]) => s.map((x) => x.latency.p99);
  const has = F.rawSeq.length > 0 && F.ctSeq.length === F.rawSeq.length;
  const hasLoad = F.rawLoad.length > 0 && F.ctLoad.length === F.rawLoad.length;

  const seqRounds = cleanRounds('ctSeq', 'rawSeq');
  const loadRounds = cleanRounds('ctLoad', 'rawLoad');
  const tag = (r: { idx: number[]; clean: boolean }) => (r.clean ? `${r.idx.length} clean round${r.idx.length > 1 ? 's' : ''}` : 'all rounds, none clean');
  const sp50 = compare(p50(F.ctSeq), p50(F.rawSeq), seqRounds);
  rows.push([`ping p50, 1 conn, sequential (${tag(seqRounds)})`, fmtMs(sp50.b), fmtMs(sp50.a), rx(sp50.ratio), '≤ 1.5× raw', verdict(has ? sp50.ratio <= 1.5 : undefined)]);
  const sp99 = compare(p99(F.ctSeq), p99(F.rawSeq), seqRounds);
  rows.push(['ping p99, 1 conn, sequential', fmtMs(sp99.b), fmtMs(sp99.a), rx(sp99.ratio), '', '']);
  const thr = compare(rate(F.ctLoad), rate(F.rawLoad), loadRounds);
  rows.push([`throughput, ${LOAD.connections}×${LOAD.depth} in flight (${tag(loadRounds)})`, fmtRate(thr.b), fmtRate(thr.a), rx(thr.ratio), '≥ 0.7× raw', verdict(hasLoad ? thr.ratio >= 0.7 : undefined)]);
  const l50 = compare(lp50(F.ctLoad), lp50(F.rawLoad), loadRounds);
  rows.push(['  p50 under that load', fmtMs(l50.b), fmtMs(l50.a), rx(l50.ratio), '', '']);
  const l99 = compare(lp99(F.ctLoad), lp99(F.rawLoad), loadRounds);
  rows.push(['  p99 under that load', fmtMs(l99.b), fmtMs(l99.a), rx(l99.ratio), '', '']);
  const rs = med(F.restart);
  rows.push([`kill -9 → first answer (median of ${F.restart.length})`, '', fmtMs(rs), '', '≤ 100 ms', verdict(F.restart.length ? rs <= 100 : undefined)]);
  const cb = med(F.coldBanner);
  const cp = med(F.coldPing);
  rows.push([`cold start → banner (median of ${F.coldBanner.length})`, '', fmtMs(cb), '', '< 1.5 s', verdict(F.coldBanner.length ? cb < 1500 : undefined)]);
  rows.push([`cold start → first ping (median of ${F.coldPing.length})`, '', fmtMs(cp), '', '< 1.5 s', verdict(F.coldPing.length ? cp < 1500 : undefined)]);
  const enough = (F.sessionsCreated ?? 0) >= 10_000;
  rows.push([`edge RSS, ${(F.sessionsCreated ?? 0).toLocaleString('en-US')} sessions, ${SESSIONS.connections} conns open`, '', F.rss10k ? fmtMiB(F.rss10k) : 'n/a', '', '< 300 MiB', verdict(F.rss10k ? enough && F.rss10k < 300 * MiB : undefined)]);
  rows.push([`edge RSS, ${F.openConnections ?? 0} open conns, each bound`, '', F.rssOpen ? fmtMiB(F.rssOpen) : 'n/a', '', '< 300 MiB', verdict(F.rssOpen ? F.rssOpen < 300 * MiB : undefined)]);
  rows.push(['diagnostics (no targets)', '', '', '', '', '']);
  if (F.relaySeq.length) {
    const r = cleanRounds('relaySeq', 'rawSeq');
    const c = compare(p50(F.relaySeq), p50(F.rawSeq), r);
    rows.push([`  2-process relay floor: p50, sequential`, fmtMs(c.b), fmtMs(c.a), rx(c.ratio), '', '']);
    const d = compare(p50(F.ctSeq), p50(F.relaySeq), cleanRounds('ctSeq', 'relaySeq'));
    rows.push(['  Continuum vs relay: p50, sequential', fmtMs(d.b), fmtMs(d.a), rx(d.ratio), '(relay)', '']);
  }
  if (F.relayLoad.length) {
    const c = compare(rate(F.relayLoad), rate(F.rawLoad), cleanRounds('relayLoad', 'rawLoad'));
    rows.push(['  2-process relay floor: throughput', fmtRate(c.b), fmtRate(c.a), rx(c.ratio), '', '']);
    const d = compare(rate(F.ctLoad), rate(F.relayLoad), cleanRounds('ctLoad', 'relayLoad'));
    rows.push(['  Continuum vs relay: throughput', fmtRate(d.b), fmtRate(d.a), rx(d.ratio), '(relay)', '']);
  }
  if (F.edgeSeq.length) {
    const c = compare(p50(F.edgeSeq), p50(F.rawSeq), cleanRounds('edgeSeq', 'rawSeq'));
    rows.push(['  edge alone (-32012): p50, sequential', fmtMs(c.b), fmtMs(c.a), rx(c.ratio), '', '']);
  }
  if (F.execSeq.length) rows.push(['  executor alone (Unix socket): p50', '', fmtMs(compare(p50(F.execSeq), p50(F.rawSeq), cleanRounds('execSeq', 'execSeq')).a), '', '', '']);
  if (F.spreadLoad) rows.push(['  Continuum load over 5 executors', fmtRate(med(rate(F.rawLoad))), fmtRate(F.spreadLoad.rate), rx(F.spreadLoad.rate / med(rate(F.rawLoad))), '', '']);
  if (F.restartPaced.length) rows.push([`  kill -9 → answer, retry paced 5 ms (n=${F.restartPaced.length})`, '', fmtMs(med(F.restartPaced)), '', '', '']);

  const w = [44, 14, 14, 8, 12, 4];
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  process.stdout.write('\n');
  process.stdout.write(`${line(['figure', 'raw ws floor', 'Continuum', 'ratio', 'target', ''])}\n`);
  process.stdout.write(`${'-'.repeat(w.reduce((a, b) => a + b + 2, 0))}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
  process.stdout.write(`\nPing figures: medians over the interleaved rounds in which other processes used ≤ ${NOISY_PERCENT} % of a core during both measurements\n(all ${ROUNDS} rounds if none was that quiet); a ratio is the median of the per-round ratios. \"(relay)\" rows compare to the relay, not raw.\n`);
  if (noisy.length) {
    process.stdout.write(`Other processes were busy during ${noisy.length} measurement(s), so those figures are noisy:\n`);
    for (const n of noisy.slice(0, 12)) process.stdout.write(`  - ${n}\n`);
    if (noisy.length > 12) process.stdout.write(`  - … and ${noisy.length - 12} more\n`);
  }
  process.stdout.write(`node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${os.platform()} ${os.release()}; load average at the end ${loadAverage()}; bench took ${((performance.now() - benchStart) / 1000).toFixed(0)} s\n`);
}

// ---------------------------------------------------------------- main

async function cleanup(): Promise<void> {
  for (const proc of [...helpers]) await stopHelper(proc).catch(() => undefined);
  for (const tree of [...trees]) await dropTree(tree).catch(() => undefined);
  for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true });
}

let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  log('interrupted; stopping what the bench started');
  void cleanup().finally(() => process.exit(130));
});

log(`Continuum bench: node ${process.version}, ${os.cpus().length} cores, load average ${loadAverage()}; per-command logging is on (it always is)`);
let failed = false;
try {
  await phaseColdStart();
  await phasePing();
  await phaseSessions();
  await phaseRestart();
} catch (err) {
  failed = true;
  log(`bench failed: ${(err as Error).stack ?? String(err)}`);
} finally {
  await cleanup();
}
summary();
process.exit(failed ? 1 : 0);
