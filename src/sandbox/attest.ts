// Live attestation: a confined executor checks its own isolation from the inside, at start
// and every few minutes — what the kernel says about it, not what the config asked for.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { Attestation, SandboxBoot } from '../protocol/internal.js';

type Check = Attestation['checks'][number];

export function parseStatus(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** The privilege checks for one /proc/<pid>/status. */
export function statusChecks(who: string, status: Record<string, string>, sb: SandboxBoot): Check[] {
  const uids = (status.Uid ?? '').split(/\s+/).map(Number);
  const gids = (status.Gid ?? '').split(/\s+/).map(Number);
  const checks: Check[] = [
    { name: `${who}.uid`, ok: uids.length === 4 && uids.every((u) => u === sb.uid) && gids.every((g) => g === sb.gid), detail: `Uid ${status.Uid}; Gid ${status.Gid}` },
    { name: `${who}.groups`, ok: (status.Groups ?? '').split(/\s+/).filter(Boolean).every((g) => Number(g) === sb.gid), detail: `Groups: ${status.Groups || '(none)'}` },
    { name: `${who}.no_new_privs`, ok: status.NoNewPrivs === '1', detail: `NoNewPrivs ${status.NoNewPrivs}` },
    { name: `${who}.capabilities`, ok: /^0+$/.test(status.CapEff ?? '') && /^0+$/.test(status.CapPrm ?? ''), detail: `CapEff ${status.CapEff}, CapPrm ${status.CapPrm}` },
  ];
  if (sb.seccomp) checks.push({ name: `${who}.seccomp`, ok: status.Seccomp === '2', detail: `Seccomp ${status.Seccomp} (2 = filter)` });
  return checks;
}

/** Expected value of each limit file, for the controllers bound at /sys/fs/cgroup. */
function cgroupChecks(sb: SandboxBoot): Check[] {
  const { limits, cgroup } = sb;
  if (!cgroup) return [];
  const expect: [string, string, string][] = [];
  const d = cgroup.dirs;
  if (cgroup.version === 2) {
    if (limits.memory !== undefined) expect.push(['memory', `${d.unified}/memory.max`, String(limits.memory)], ['memory.swap', `${d.unified}/memory.swap.max`, '0']);
    if (limits.cpu !== undefined) expect.push(['cpu', `${d.unified}/cpu.max`, `${Math.max(1000, Math.round(limits.cpu * 100_000))} 100000`]);
    if (limits.pids !== undefined) expect.push(['pids', `${d.unified}/pids.max`, String(limits.pids)]);
  } else {
    if (limits.memory !== undefined && d.memory) expect.push(['memory', `${d.memory}/memory.limit_in_bytes`, String(limits.memory)]);
    if (limits.cpu !== undefined && d.cpu) expect.push(['cpu', `${d.cpu}/cpu.cfs_quota_us`, String(Math.max(1000, Math.round(limits.cpu * 100_000)))]);
    if (limits.pids !== undefined && d.pids) expect.push(['pids', `${d.pids}/pids.max`, String(limits.pids)]);
  }
  return expect.map(([name, file, want]) => {
    let got = '(unreadable)';
    try {
      got = fs.readFileSync(file, 'utf8').trim();
    } catch {
      // Reported as a failed check.
    }
    return { name: `cgroup.${name}`, ok: got === want, detail: `${file} = ${got} (want ${want})` };
  });
}

function hiddenChecks(sb: SandboxBoot): Check[] {
  return sb.hidden.map((p) => {
    const visible = fs.existsSync(p);
    return { name: `hidden:${p}`.slice(0, 64), ok: !visible, detail: visible ? `${p} is visible inside the sandbox` : `${p} is not visible` };
  });
}

function readOnlyRootCheck(): Check {
  const probe = `/.continuum-attest-${process.pid}`;
  try {
    fs.writeFileSync(probe, '');
    fs.rmSync(probe, { force: true });
    return { name: 'root.read-only', ok: false, detail: 'wrote a file at /' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { name: 'root.read-only', ok: code === 'EROFS' || code === 'EACCES', detail: `writing at / fails with ${code}` };
  }
}

/** A connection to a public address must fail at once: the netns has only `lo`. */
function networkCheck(sb: SandboxBoot): Promise<Check> {
  if (sb.network === 'host') return Promise.resolve({ name: 'network.isolated', ok: true, detail: 'network: host (not isolated by profile)' });
  return new Promise((resolve) => {
    const socket = net.connect({ host: '1.1.1.1', port: 443, timeout: 2_000 });
    const done = (ok: boolean, detail: string) => {
      socket.destroy();
      resolve({ name: 'network.isolated', ok, detail });
    };
    socket.once('connect', () => done(false, 'connected to 1.1.1.1:443 directly'));
    socket.once('timeout', () => done(false, 'a direct connection to 1.1.1.1:443 hung instead of failing (is there a route?)'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(true, `direct connection to 1.1.1.1:443 fails with ${err.code}`));
  });
}

/** What a session's shell really runs with: its status, read from inside its nested sandbox. */
function shellChecks(sb: SandboxBoot, runShell: (script: string) => Promise<string>): Promise<Check[]> {
  return runShell('cat /proc/self/status').then(
    (out) => statusChecks('shell', parseStatus(out), sb),
    (err: Error) => [{ name: 'shell.sandbox', ok: false, detail: `could not start a sandboxed shell: ${err.message}` }],
  );
}

/** Runs a script the way shell.exec does (nested sandbox), for the attestation. */
export function runProbeShell(file: string, args: string[], extraFds: number[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe', ...extraFds], env: { PATH: '/usr/bin:/bin' } });
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(err.trim() || `exit ${code}`))));
  });
}

export async function attest(sb: SandboxBoot, runShell: (script: string) => Promise<string>): Promise<Attestation> {
  const checks: Check[] = [
    ...statusChecks('executor', parseStatus(fs.readFileSync('/proc/self/status', 'utf8')), sb),
    ...cgroupChecks(sb),
    ...hiddenChecks(sb),
    readOnlyRootCheck(),
    await networkCheck(sb),
    ...(await shellChecks(sb, runShell)),
  ];
  return { ok: checks.every((c) => c.ok), at: Date.now(), checks };
}
