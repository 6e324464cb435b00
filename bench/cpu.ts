// CPU spent per process during a load measurement, and per request.
import { performance } from 'node:perf_hooks';
import { NOISY_PERCENT } from './config.js';
import { log } from './log.js';
import { noteNoise } from './noise.js';
import { cpuMs, machineBusyMs } from './stats.js';

export interface Proc {
  name: string;
  pid: number;
}

export interface CpuReport {
  seconds: number;
  shares: { name: string; cpuMs: number }[];
  /** CPU the rest of the machine used meanwhile (other users of this shared box), ms. */
  otherMs: number;
}

/** CPU spent by each process (and this one, and everything else) between start() and end(). */
export function cpuMeter(procs: Proc[]) {
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

export function printCpu(label: string, r: CpuReport, requests: number): void {
  const pct = (ms: number) => `${(ms / r.seconds / 10).toFixed(0).padStart(4)} % of a core`;
  const per = (ms: number) => `${((ms * 1000) / Math.max(1, requests)).toFixed(1).padStart(6)} µs CPU/request`;
  for (const s of r.shares) if (s.cpuMs > 0 || !s.name.includes('executor')) log(`      ${s.name.padEnd(36)} ${pct(s.cpuMs)}  ${per(s.cpuMs)}`);
  const total = r.shares.reduce((a, s) => a + s.cpuMs, 0);
  log(`      ${'total (bench + server side)'.padEnd(36)} ${pct(total)}  ${per(total)}`);
  log(`      ${'other processes on this machine'.padEnd(36)} ${pct(r.otherMs)}${r.otherMs / r.seconds / 10 > NOISY_PERCENT ? '   ← busy machine: figure is noisy' : ''}`);
  noteNoise(label, r.otherMs / r.seconds / 10);
}
