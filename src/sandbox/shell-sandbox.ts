// Each session's shell runs in its own sandbox nested in the executor's: a fresh user, pid,
// ipc and mount namespace whose root holds the read-only system part, the session's own
// workspace and a /tmp of its own — no other session's files — under the stricter seccomp
// program (no mount, unshare, chroot, … on top of the executor's list). It shares the
// executor's network namespace, so it reaches the same loopback (the egress forwarder).
import fs from 'node:fs';
import path from 'node:path';
import type { SandboxBoot } from '../protocol/internal.js';
import { runProbeShell } from './attest.js';
import { bwrapMountArgs } from './rootfs.js';

/** Inside the executor's tmpfs /tmp; bound as the shell's /tmp. */
export const SESSION_TMP_ROOT = '/tmp/sessions';

export function sessionTmp(sessionId: string): string {
  return path.join(SESSION_TMP_ROOT, sessionId);
}

export function removeSessionTmp(sessionId: string): void {
  fs.rm(sessionTmp(sessionId), { recursive: true, force: true }, () => undefined);
}

/**
 * The command line for one shell.exec: bwrap … -- <command>. `seccompFd` is the stdio index
 * the caller passes the shell's seccomp program on.
 */
export function shellSandboxCommand(sb: SandboxBoot, opts: { sessionId: string; workspace: string; seccompFd: number | undefined; command: string[] }): { file: string; args: string[] } {
  const tmp = sessionTmp(opts.sessionId);
  fs.mkdirSync(tmp, { recursive: true, mode: 0o700 });
  const args = [
    '--unshare-user', '--uid', String(sb.uid), '--gid', String(sb.gid),
    '--unshare-pid', '--unshare-ipc',
    '--die-with-parent', '--new-session',
    ...bwrapMountArgs([...sb.shellMounts, { op: 'bind', src: tmp, dest: '/tmp' }, { op: 'bind', src: opts.workspace }]),
    '--remount-ro', '/',
    ...(opts.seccompFd !== undefined ? ['--seccomp', String(opts.seccompFd)] : []),
    '--', ...opts.command,
  ];
  return { file: sb.bwrap!, args };
}

/** Runs a script in a shell sandbox like any session's (for the attestation). */
export function probeShell(sb: SandboxBoot): (script: string) => Promise<string> {
  return async (script) => {
    // The util-linux fallback has no nested sandboxes: shells run as the executor does.
    if (!sb.bwrap) return runProbeShell('/bin/sh', ['-c', script], []);
    const workspace = '/tmp/attest-workspace';
    fs.mkdirSync(workspace, { recursive: true, mode: 0o700 });
    const fd = sb.shellSeccomp ? fs.openSync(sb.shellSeccomp, 'r') : undefined;
    try {
      const { file, args } = shellSandboxCommand(sb, { sessionId: '.attest', workspace, seccompFd: fd === undefined ? undefined : 3, command: ['/bin/sh', '-c', script] });
      return await runProbeShell(file, args, fd === undefined ? [] : [fd]);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  };
}
