// The process table as /proc shows it, for tests and the bench.
import fs from 'node:fs';

/** parent pid → pids of its children, for every process visible now. */
export function childrenByParent(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // Gone while we looked.
    }
  }
  return children;
}

export function ppidOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function isBwrap(pid: number | undefined): boolean {
  try {
    return pid !== undefined && /(^|\/)bwrap$/.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]!);
  } catch {
    return false;
  }
}

/**
 * The supervisor a process was started by: its parent, or for a confined executor the parent
 * of its sandbox (supervisor → bwrap launcher → bwrap init, pid 1 inside → executor).
 */
export function startedBy(pid: number): number | undefined {
  const parent = ppidOf(pid);
  if (!isBwrap(parent)) return parent;
  const launcher = ppidOf(parent!);
  return isBwrap(launcher) ? ppidOf(launcher!) : undefined;
}
