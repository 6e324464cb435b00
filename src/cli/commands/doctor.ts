// `continuum doctor`: what this host offers for isolation and for the later daemons.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { CHROMIUM_PACKAGE_HINT, chromiumExecutable, chromiumInstalled } from '../../daemons/browser/chromium-path.js';
import { CgroupManager, detectCgroups } from '../../sandbox/cgroups.js';
import { findSeccompPython } from '../../sandbox/seccomp.js';
import type { ProcessRow } from '../../supervisor/supervisor.js';
import { controlCall } from '../runtime.js';

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
  if (!filter) return { name: 'seccomp', ok: false, detail: 'not supported by this kernel' };
  const py = findSeccompPython();
  return { name: 'seccomp', ok: Boolean(py), detail: `filters supported (this process: mode ${mode ?? '?'}); libseccomp bindings: ${py ? `yes (${py})` : 'missing'}`, hint: 'apt-get install python3-seccomp' };
}

function cgroupLimitsCheck(): Check {
  const host = detectCgroups();
  if (!host) return { name: 'cgroup limits', ok: false, detail: 'no usable cgroup hierarchy', hint: 'memory/cpu/pids limits are not enforced' };
  const sup = CgroupManager.for(host, 'continuum-doctor-').supports();
  const root = process.getuid?.() === 0;
  const have = Object.entries(sup).filter(([, v]) => v).map(([k]) => k);
  return { name: 'cgroup limits', ok: root && have.length === 4, detail: `v${host.version}: ${have.join(', ') || 'none'}${root ? '' : ' (not root: needs a delegated cgroup)'}`, hint: 'run as root, or under systemd with Delegate=yes (docs/SANDBOX.md)' };
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

/** A running tree's per-environment sandbox warnings and attestations, if one runs at `home`. */
async function runningSandboxes(home: string | undefined): Promise<string[]> {
  if (!home) return [];
  try {
    const { processes } = await controlCall<{ processes: ProcessRow[] }>(home, 'ps');
    return processes.flatMap((p) => {
      if (!p.sandbox) return [];
      if (!p.sandbox.confined) return [`     ${p.id}: unconfined by its profile`];
      const a = p.sandbox.attestation;
      const att = a ? (a.ok ? 'attested ok' : `ATTESTATION FAILED: ${a.checks.filter((c) => !c.ok).map((c) => c.detail).join('; ')}`) : 'not attested yet';
      return [`${p.sandbox.warnings.length || (a && !a.ok) ? 'WARN' : 'ok  '} ${p.id}: ${att}`, ...p.sandbox.warnings.map((w) => `       ! ${w}`)];
    });
  } catch {
    return [];
  }
}

export async function doctor(opts: { json?: boolean; home?: string }): Promise<{ text: string; ok: boolean }> {
  const checks: Check[] = [
    { name: 'node', ok: Number(process.versions.node.split('.')[0]) >= 20, detail: `v${process.versions.node}`, hint: 'Continuum needs Node.js 20 or later' },
    { name: 'user', ok: true, detail: `uid ${process.getuid?.()} gid ${process.getgid?.()}` },
    cgroupCheck(),
    namespaceCheck(),
    seccompCheck(),
    cgroupLimitsCheck(),
    binaryCheck('bubblewrap', ['bwrap'], 'apt-get install bubblewrap'),
    binaryCheck('setpriv', ['setpriv'], 'apt-get install util-linux'),
    chromiumCheck(),
    binaryCheck('nats-server', ['nats-server'], 'apt-get install nats-server (only needed to scale out)'),
  ];
  if (opts.json) return { text: JSON.stringify(checks, null, 2), ok: true };
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines = checks.map((c) => `${c.ok ? 'ok  ' : 'MISS'}  ${c.name.padEnd(width)}  ${c.detail}${c.ok || !c.hint ? '' : `  → ${c.hint}`}`);
  const bwrap = checks.find((c) => c.name === 'bubblewrap')!.ok;
  lines.push('', bwrap
    ? 'Confined environments run under bubblewrap (namespaces, new root, seccomp), with cgroup limits where shown above; see docs/SANDBOX.md.'
    : process.getuid?.() === 0
      ? 'Without bubblewrap, confined environments use the util-linux fallback (unshare + pivot_root + setpriv): no seccomp, no per-session sandboxes; see docs/SANDBOX.md.'
      : 'Without bubblewrap (and not root), confined environments run UNCONFINED with a warning (or refuse to start with sandbox.strict); see docs/SANDBOX.md.');
  const running = await runningSandboxes(opts.home);
  if (running.length) lines.push('', 'Running executors:', ...running);
  return { text: lines.join('\n'), ok: true };
}
