// RSS and CPU% of a process, from /proc (no ps fork per sample).
import fs from 'node:fs';

const CLOCK_TICKS = 100;
const PAGE_SIZE = 4096;

export interface ProcSample {
  rssBytes: number;
  cpuPercent: number;
  /** user + system CPU time since the process started. */
  cpuSeconds: number;
}

export class ProcStats {
  private last = new Map<number, { ticks: number; at: number }>();

  sample(pid: number): ProcSample | undefined {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      this.last.delete(pid);
      return undefined;
    }
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const rssBytes = Number(fields[21]) * PAGE_SIZE;
    const now = Date.now();
    const prev = this.last.get(pid);
    this.last.set(pid, { ticks, at: now });
    const cpuPercent = prev && now > prev.at ? ((ticks - prev.ticks) / CLOCK_TICKS) / ((now - prev.at) / 1000) * 100 : 0;
    return { rssBytes, cpuPercent: Math.max(0, Math.round(cpuPercent * 10) / 10), cpuSeconds: ticks / CLOCK_TICKS };
  }

  forget(pid: number): void {
    this.last.delete(pid);
  }
}
