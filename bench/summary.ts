// The final table: each figure against its target, then which measurements were noisy and
// what machine this ran on.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { LOAD, NOISY_PERCENT, ROUNDS, SESSIONS } from './config.js';
import { F, N } from './figures.js';
import type { LoadResult, SequentialResult } from './load.js';
import { benchStart } from './log.js';
import { noisy } from './noise.js';
import { fmtMiB, fmtMs, fmtRate, loadAverage, median, MiB } from './stats.js';

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

export function summary(): void {
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
  for (const l of F.ledger) rows.push([`ledger on vs off: ${l.workload}`, fmtRate(l.off), fmtRate(l.on), rx(l.ratio), '≥ 0.9× off', verdict(l.ratio >= 0.9)]);
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
  process.stdout.write('(ledger rows: "raw ws floor" is Continuum with the ledger off)\n');
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
