// Progress lines, stamped with the seconds since the bench started.
import { performance } from 'node:perf_hooks';

export const benchStart = performance.now();

export function log(msg: string): void {
  const t = ((performance.now() - benchStart) / 1000).toFixed(1).padStart(5);
  process.stdout.write(`[${t} s] ${msg}\n`);
}
