// Namespace identities of a process, as the kernel reports them (e.g. "pid:[4026531836]").
// Two processes share a namespace exactly when these strings are equal.
import fs from 'node:fs';

const NAMESPACES = ['pid', 'mnt', 'net', 'uts', 'ipc', 'user', 'cgroup'];

export function readNamespaces(pid: number | 'self' = 'self'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const ns of NAMESPACES) {
    try {
      out[ns] = fs.readlinkSync(`/proc/${pid}/ns/${ns}`);
    } catch {
      // Not every kernel has every namespace type.
    }
  }
  return out;
}
