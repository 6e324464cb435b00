// Small numeric and /proc helpers for the benchmark.
import fs from 'node:fs';
import { childrenByParent } from '../test/helpers/proc.js';

/** A bounded latency recorder (milliseconds); past `capacity` samples it stops recording. */
export class Samples {
  private readonly data: Float64Array;
  count = 0;

  constructor(capacity = 2_000_000) {
    this.data = new Float64Array(capacity);
  }

  add(ms: number): void {
    if (this.count < this.data.length) this.data[this.count++] = ms;
  }

  sorted(): Float64Array {
    return this.data.slice(0, this.count).sort();
  }
}

export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface LatencySummary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
}

export function summarize(samples: Samples): LatencySummary {
  const s = samples.sorted();
  let sum = 0;
  for (const v of s) sum += v;
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), mean: s.length ? sum / s.length : NaN };
}

/** Resident set size of a process, in bytes (VmRSS of /proc/PID/status). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Peak resident set size (VmHWM), in bytes. */
export function hwmBytes(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

const CLK_TCK = 100;

/** utime + stime of a process so far, in ms (clock-tick resolution, 10 ms). */
export function cpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

export const MiB = 1024 * 1024;

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(0)} ms`;
}

export function fmtMiB(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

export function fmtRate(perSec: number): string {
  return `${Math.round(perSec).toLocaleString('en-US')} req/s`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** CPU time the whole machine has spent busy so far (all CPUs, incl. steal), in ms. */
export function machineBusyMs(): number {
  const first = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …
  const busy = first[0]! + first[1]! + first[2]! + first[5]! + first[6]! + first[7]!;
  return (busy * 1000) / CLK_TCK;
}

export function loadAverage(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** CPU so far (ms) of `rootPid` and every process below it, by pid. */
export function treeCpu(rootPid: number): Map<number, number> {
  const children = childrenByParent();
  const out = new Map<number, number>();
  const queue = [rootPid];
  while (queue.length) {
    const pid = queue.pop()!;
    const ms = cpuMs(pid);
    if (Number.isFinite(ms)) out.set(pid, ms);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** CPU used between two treeCpu() snapshots by the processes alive at the end (new ones count whole). */
export function treeCpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, ms] of after) sum += ms - (before.get(pid) ?? 0);
  return sum;
}
