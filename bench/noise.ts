// Other users of this shared machine: measurements during which they used much CPU are
// flagged, and the summary lists them.
import { performance } from 'node:perf_hooks';
import { NOISY_PERCENT } from './config.js';
import { machineBusyMs, treeCpu, treeCpuDelta } from './stats.js';

/** Labels of the measurements that other processes disturbed, for the summary. */
export const noisy: string[] = [];

export function noteNoise(label: string, percent: number): void {
  if (percent > NOISY_PERCENT) noisy.push(`${label} (${percent.toFixed(0)} % of a core used by others)`);
}

/**
 * Runs `fn` and reports how much CPU the rest of the machine (not this process, not the
 * processes at or below `roots()`) used meanwhile.
 */
export async function watchingNoise<T>(label: string, roots: () => (number | undefined)[], fn: () => Promise<T>): Promise<{ value: T; otherPercent: number }> {
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
