// The processes of a tree as /proc shows them, and killing them outright.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { isAlive, waitFor } from '../../helpers/tree.js';
import { childrenByParent } from '../../helpers/proc.js';

export function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Every live descendant of `root`, from /proc. */
export function descendants(root: number): number[] {
  const children = childrenByParent();
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    for (const c of children.get(stack.pop()!) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out.filter(isAlive);
}

/** Waits for a process running `command` under the executor `executorPid`. */
export function waitForCommand(executorPid: number, command: string): Promise<number> {
  return waitFor(() => descendants(executorPid).find((p) => cmdline(p) === command), 10_000, `"${command}" to run under pid ${executorPid}`);
}

export function kill9(pid: number | null): void {
  assert.ok(pid !== null, 'no pid to kill');
  process.kill(pid, 'SIGKILL');
}
