// `continuum doctor`: what this host offers for isolation and for the later daemons.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { CHROMIUM_PACKAGE_HINT, chromiumExecutable, chromiumInstalled } from '../../daemons/browser/chromium-path.js';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
}

function which(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = `${dir}/${bin}`;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // Keep looking.
    }
  }
  return undefined;
}

function version(bin: string, args: string[] = ['--version']): string {
  try {
    return execFileSync(bin, args, { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim();
  } catch {
    return 'present';
  }
}

function cgroupCheck(): Check {
  if (fs.existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    const controllers = fs.readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').trim();
    return { name: 'cgroups', ok: true, detail: `v2 (unified); controllers: ${controllers || 'none delegated'}` };
  }
  try {
    const enabled = fs
      .readFileSync('/proc/cgroups', 'utf8')
      .split('\n')
      .slice(1)
      .map((l) => l.split('\t'))
      .filter((f) => f[3] === '1')
      .map((f) => f[0]);
    const own = fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n').length;
    return { name: 'cgroups', ok: enabled.length > 0, detail: `v1; enabled controllers: ${enabled.join(', ')}; this process is in ${own} hierarchies` };
  } catch {
    return { name: 'cgroups', ok: false, detail: 'not available', hint: 'resource limits fall back to rlimits' };
  }
}

function namespaceCheck(): Check {
  const kinds = ['pid', 'mnt', 'net', 'uts', 'ipc', 'user', 'cgroup'].filter((k) => fs.existsSync(`/proc/self/ns/${k}`));
  let userns = 'unknown';
  try {
    userns = fs.readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim();
  } catch {
    // Older kernels lack the sysctl.
  }
  return { name: 'namespaces', ok: kinds.length >= 6, detail: `${kinds.join(', ')}; max_user_namespaces=${userns}` };
}

function seccompCheck(): Check {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const mode = /Seccomp:\s*(\d)/.exec(status)?.[1];
  const filter = fs.existsSync('/proc/sys/kernel/seccomp/actions_avail');
  return { name: 'seccomp', ok: filter, detail: filter ? `filters supported (this process: mode ${mode ?? '?'})` : 'not supported by this kernel' };
}

function binaryCheck(name: string, bins: string[], hint: string, args?: string[]): Check {
  for (const b of bins) {
    const p = which(b);
    if (p) return { name, ok: true, detail: `${p} (${version(p, args)})` };
  }
  return { name, ok: false, detail: 'not found', hint };
}

/** The exact binary the browser daemon runs, not any chromium on the PATH. */
function chromiumCheck(): Check {
  const p = chromiumExecutable();
  if (chromiumInstalled(p)) return { name: 'chromium', ok: true, detail: `${p} (${version(p)}), used by the browser daemon` };
  return { name: 'chromium', ok: false, detail: `${p} not found: the browser daemon runs, but browser.* commands answer -32003`, hint: CHROMIUM_PACKAGE_HINT };
}

export function doctor(opts: { json?: boolean }): { text: string; ok: boolean } {
  const checks: Check[] = [
    { name: 'node', ok: Number(process.versions.node.split('.')[0]) >= 20, detail: `v${process.versions.node}`, hint: 'Continuum needs Node.js 20 or later' },
    { name: 'user', ok: true, detail: `uid ${process.getuid?.()} gid ${process.getgid?.()}` },
    cgroupCheck(),
    namespaceCheck(),
    seccompCheck(),
    binaryCheck('bubblewrap', ['bwrap'], 'apt-get install bubblewrap'),
    binaryCheck('unshare/setpriv', ['unshare'], 'apt-get install util-linux'),
    chromiumCheck(),
    binaryCheck('nats-server', ['nats-server'], 'apt-get install nats-server (only needed to scale out)'),
  ];
  if (opts.json) return { text: JSON.stringify(checks, null, 2), ok: true };
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines = checks.map((c) => `${c.ok ? 'ok  ' : 'MISS'}  ${c.name.padEnd(width)}  ${c.detail}${c.ok || !c.hint ? '' : `  → ${c.hint}`}`);
  lines.push('', 'Sandbox enforcement is not implemented in this version: profiles are validated and reported by `process.info` only.');
  return { text: lines.join('\n'), ok: true };
}
