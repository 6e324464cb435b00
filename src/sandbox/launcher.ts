// The supervisor's side of confinement: detects what the host offers once at start, says
// which profile parts it can't enforce, and turns an executor's spawn into
//   sh (joins the cgroup) → setpriv (unprivileged uid/gid, no groups, no capabilities)
//     → bwrap (user/pid/ipc/uts/net/mount namespaces, new root, seccomp) → node
// The executor's host pid (what `ps` shows and kills) comes from bwrap's --info-fd: the
// sandbox's init, whose only child is the executor.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HomePaths } from '../config/paths.js';
import type { Config, EnvironmentConfig } from '../config/schema.js';
import type { ChildBoot, MountOp, SandboxBoot } from '../protocol/internal.js';
import { CgroupManager, detectCgroups, type Cgroup } from './cgroups.js';
import { sandboxIdentities, type SandboxIdentity } from './identity.js';
import { bwrapMountArgs, systemMounts, writeEtcFiles } from './rootfs.js';
import { buildSeccompPrograms, type SeccompKind } from './seccomp.js';
import { unshareRootScript } from './unshare-root.js';

/**
 * V8 sizes its heap from the machine's memory, not the cgroup's: under a 256 MiB limit it would
 * let garbage grow until the kernel OOM-kills the executor (a burst of big or deep requests did).
 * Capped at half the limit, it collects first; the rest is for the commands' own processes.
 */
export function heapFlags(memoryBytes: number | undefined): string[] {
  if (!memoryBytes) return [];
  const oldSpaceMiB = Math.max(32, Math.floor(memoryBytes / 2 / 1024 / 1024));
  return [`--max-old-space-size=${oldSpaceMiB}`, '--max-semi-space-size=4'];
}

/** Fixed paths inside every sandbox. */
export const INSIDE = {
  dir: '/run/continuum',
  shellSeccomp: '/run/continuum/seccomp-shell.bpf',
  /** The egress proxy's socket folder (bound as a folder, so a restarted proxy's socket shows). */
  egressDir: '/run/continuum/egress',
  cgroup: '/sys/fs/cgroup',
} as const;

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function which(bin: string): string | undefined {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')]) {
    const p = path.join(dir, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // Keep looking.
    }
  }
  return undefined;
}

export interface SandboxHostInfo {
  root: boolean;
  bwrap: string | undefined;
  bwrapVersion: string | undefined;
  mechanism: 'bubblewrap' | 'unshare' | 'none';
  setpriv: string | undefined;
  cgroup: string;
  seccomp: string;
}

/** How an executor is started: the command line, extra fds, its cgroup, and the boot it gets. */
export interface ExecutorLaunch {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** stdio entries after [stdin, stdout, stderr, ipc]: fds to pass, or 'pipe' for --info-fd. */
  extraStdio: (number | 'pipe')[];
  /** Index in stdio of bwrap's --info-fd pipe; without one, the executor is the launcher's child. */
  infoFd: number | undefined;
  cgroup: Cgroup | undefined;
  boot: ChildBoot;
  /** Closes what the supervisor opened for this launch (the seccomp fd). */
  release(): void;
}

/** Wraps a command line so the process enters the cgroup before anything else runs. */
function joiningCgroup(cgroup: Cgroup | undefined, command: string, args: string[], env: NodeJS.ProcessEnv): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  if (!cgroup) return { command, args, env };
  return {
    command: '/bin/sh',
    args: ['-c', 'IFS=:; for f in $CONTINUUM_CGROUP_PROCS; do echo $$ > "$f" || exit 111; done; unset CONTINUUM_CGROUP_PROCS IFS; exec "$@"', 'continuum-confine', command, ...args],
    env: { ...env, CONTINUUM_CGROUP_PROCS: cgroup.procsFiles.join(':') },
  };
}

export class SandboxUnenforceable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SandboxUnenforceable';
  }
}

export class SandboxHost {
  private readonly identities: Map<string, SandboxIdentity>;
  private readonly bwrap = which('bwrap');
  private readonly setpriv = which('setpriv');
  private readonly root = process.getuid?.() === 0;
  /**
   * bubblewrap when present; util-linux unshare + pivot_root + setpriv when not and we are
   * root. CONTINUUM_SANDBOX_MECHANISM=unshare forces the fallback (to try it on a host with bwrap).
   */
  private readonly mechanism: 'bubblewrap' | 'unshare' | 'none' =
    this.bwrap && process.env.CONTINUUM_SANDBOX_MECHANISM !== 'unshare'
      ? 'bubblewrap'
      : this.root && this.setpriv && which('unshare') && which('pivot_root') ? 'unshare' : 'none';
  private cgroups: CgroupManager | undefined;
  private cgroupProblem: string | undefined;
  private seccomp: Record<SeccompKind, string> | undefined;
  private seccompProblem: string | undefined;
  private readonly system: MountOp[];
  private seq = 0;
  readonly prefix: string;

  constructor(private readonly paths: HomePaths, private readonly config: Config) {
    this.identities = sandboxIdentities(config.environments);
    // Our cgroups are named after the home, so a crashed run's leftovers are recognisably ours.
    this.prefix = `continuum-${createHash('sha256').update(paths.home).digest('hex').slice(0, 10)}-`;
    const dir = path.join(paths.run, 'sandbox');
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    const etc = writeEtcFiles(dir, [...this.identities.values()]);
    this.system = systemMounts(process.execPath, etc);
    if (!config.environments.some((e) => e.sandbox.isolation === 'confined')) return;
    const host = detectCgroups();
    if (!host) this.cgroupProblem = 'no cgroup hierarchy found';
    else if (!this.root) this.cgroupProblem = 'not running as root, and cgroup delegation to non-root is not set up';
    else this.cgroups = CgroupManager.for(host, this.prefix);
    if (config.environments.some((e) => e.sandbox.isolation === 'confined' && e.sandbox.seccomp)) {
      try {
        this.seccomp = buildSeccompPrograms(dir);
      } catch (err) {
        this.seccompProblem = (err as Error).message;
      }
    }
  }

  /** Removes our cgroups left by a crashed run and prepares ours (v2 delegation). */
  async prepare(): Promise<string[]> {
    if (!this.cgroups) return [];
    try {
      const stale = await this.cgroups.removeStale();
      this.cgroups.prepare();
      return stale;
    } catch (err) {
      this.cgroupProblem = (err as Error).message;
      this.cgroups = undefined;
      return [];
    }
  }

  info(): SandboxHostInfo {
    let bwrapVersion: string | undefined;
    if (this.bwrap) {
      try {
        bwrapVersion = execFileSync(this.bwrap, ['--version'], { encoding: 'utf8', timeout: 5_000 }).trim();
      } catch {
        bwrapVersion = 'unknown version';
      }
    }
    const cg = this.cgroups;
    const supports = cg?.supports();
    return {
      root: this.root,
      bwrap: this.bwrap,
      bwrapVersion,
      mechanism: this.mechanism,
      setpriv: this.setpriv,
      cgroup: cg ? `v${cg.host.version} (${Object.entries(supports!).filter(([, v]) => v).map(([k]) => k).join(', ')})` : `none: ${this.cgroupProblem}`,
      seccomp: this.seccomp ? 'libseccomp (bubblewrap --seccomp)' : `none: ${this.seccompProblem ?? 'not requested'}`,
    };
  }

  /** What of this environment's profile this host can't enforce. Empty = all of it. */
  warnings(env: EnvironmentConfig): string[] {
    const p = env.sandbox;
    if (p.isolation !== 'confined') return [];
    if (this.mechanism === 'none') return ['bubblewrap is not installed (apt-get install bubblewrap) and the util-linux fallback needs root: this executor runs unconfined, with the supervisor\'s privileges'];
    const out: string[] = [];
    if (this.mechanism === 'unshare') {
      out.push('util-linux fallback (no bubblewrap): sessions of this environment share one sandbox (no per-session isolation)');
      if (p.seccomp) out.push('util-linux fallback (no bubblewrap): seccomp filter not enforced');
    }
    if (!this.root) out.push('the supervisor is not root: the executor keeps the supervisor\'s uid');
    else if (!this.setpriv) out.push('setpriv (util-linux) is missing: the executor keeps the supervisor\'s uid inside its user namespace');
    const wants = { memory: p.memory !== undefined, cpu: p.cpu !== undefined, pids: p.pids !== undefined };
    const has = this.cgroups?.supports();
    for (const k of ['memory', 'cpu', 'pids'] as const) {
      if (wants[k] && !has?.[k]) out.push(`${k} limit not enforced: ${this.cgroups ? `the ${k} controller is not available to us` : this.cgroupProblem}`);
    }
    if (p.seccomp && !this.seccomp && this.mechanism === 'bubblewrap') out.push(`seccomp filter not enforced: ${this.seccompProblem}`);
    return out;
  }

  /**
   * The launch of one executor process (a real one or a standby). Throws
   * SandboxUnenforceable under `strict` when part of the profile can't be enforced.
   */
  launch(env: EnvironmentConfig, boot: ChildBoot, module: string, childEnv: NodeJS.ProcessEnv): ExecutorLaunch | undefined {
    const p = env.sandbox;
    if (p.isolation !== 'confined') return undefined;
    const warnings = this.warnings(env);
    if (warnings.length && p.strict) throw new SandboxUnenforceable(`the ${env.name} sandbox profile can't be enforced on this host (strict): ${warnings.join('; ')}`);
    if (this.mechanism === 'none') return undefined;
    const bubblewrap = this.mechanism === 'bubblewrap';
    const id = this.identities.get(env.name)!;
    const uid = this.root && this.setpriv ? id.uid : process.getuid!();
    const gid = this.root && this.setpriv ? id.gid : process.getgid!();
    const executorId = boot.executor!.id;
    const socketDir = path.dirname(this.paths.executorSocket(executorId));
    const workspaces = path.join(this.paths.workspaces, env.name);
    for (const dir of [socketDir, workspaces]) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (this.root) fs.chownSync(dir, uid, gid);
    }
    // The limits apply to the executor and all it starts; a fresh cgroup per process, so a
    // standby doesn't share its executor's memory budget.
    const limits = { memory: p.memory, cpu: p.cpu, pids: p.pids };
    // Everything that can fail goes before the cgroup is made: a launch that throws after it
    // would leave it behind (seen with <home> deleted under a running tree, once per restart).
    const egress = boot.egressSocket;
    if (egress) fs.mkdirSync(path.dirname(egress), { recursive: true, mode: 0o755 });
    const seccompFd = bubblewrap && this.seccomp && p.seccomp ? fs.openSync(this.seccomp.executor, 'r') : undefined;
    let cgroup: Cgroup | undefined;
    try {
      cgroup = this.cgroups?.create(`${executorId}-${++this.seq}`, limits);
    } catch (err) {
      if (seccompFd !== undefined) fs.closeSync(seccompFd);
      throw err;
    }

    const mounts: MountOp[] = [
      ...this.system,
      { op: 'tmpfs', dest: '/tmp', perms: '1777' },
      { op: 'ro-bind', src: path.join(projectRoot, 'dist') },
      { op: 'ro-bind', src: path.join(projectRoot, 'node_modules') },
      { op: 'ro-bind', src: path.join(projectRoot, 'package.json') },
      { op: 'ro-bind', src: path.dirname(this.paths.sessionSocket) },
      { op: 'bind', src: socketDir },
      { op: 'bind', src: workspaces },
    ];
    if (this.seccomp && bubblewrap) mounts.push({ op: 'file', src: this.seccomp.shell, dest: INSIDE.shellSeccomp });
    let insideCgroup: SandboxBoot['cgroup'] = null;
    if (cgroup) {
      const dirs: Record<string, string> = {};
      for (const [controller, dir] of Object.entries(cgroup.dirs)) {
        const dest = controller === 'unified' ? INSIDE.cgroup : `${INSIDE.cgroup}/${controller}`;
        mounts.push({ op: 'ro-bind', src: dir, dest });
        dirs[controller] = dest;
      }
      insideCgroup = { version: this.cgroups!.host.version, dirs };
    }
    const extra: MountOp[] = [...p.filesystem.readOnly.map((src): MountOp => ({ op: 'ro-bind', src })), ...p.filesystem.writable.map((src): MountOp => ({ op: 'bind', src }))];
    mounts.push(...extra);
    const insideBoot: ChildBoot = { ...boot };
    if (egress) {
      mounts.push({ op: 'bind', src: path.dirname(egress), dest: INSIDE.egressDir });
      insideBoot.egressSocket = path.posix.join(INSIDE.egressDir, path.basename(egress));
    }
    const network = p.network === 'none' || p.network === 'host' ? p.network : 'allow';
    insideBoot.sandbox = {
      mechanism: this.mechanism,
      uid,
      gid,
      bwrap: bubblewrap ? this.bwrap! : null,
      // Seen from inside the executor, where each file is already at its destination.
      shellMounts: [...this.system, ...extra].map((m): MountOp => (m.op === 'file' ? { ...m, src: m.dest } : m)),
      shellSeccomp: this.seccomp && bubblewrap ? INSIDE.shellSeccomp : null,
      seccomp: Boolean(this.seccomp && p.seccomp && bubblewrap),
      cgroup: insideCgroup,
      limits,
      network,
      hidden: ['/etc/shadow', this.paths.secrets, this.paths.logs, this.paths.supervisorSocket, path.join(projectRoot, 'src'), '/root'],
      warnings,
      strict: p.strict,
    };

    if (!bubblewrap) return this.unshareLaunch(mounts, { uid, gid, workspaces, network, module, childEnv, cgroup, boot: insideBoot, memory: p.memory });
    // As root, bwrap builds the sandbox with host privileges (so <home> may stay 0700) and
    // setpriv, the first thing inside, drops to the environment's uid/gid for good: no
    // groups, no capabilities (bounding set emptied), no_new_privs. Without root, bwrap
    // uses an unprivileged user namespace and the executor keeps our uid.
    // bwrap (as root) covers /proc/irq and /proc/bus, which makes the kernel refuse the fresh
    // /proc of each shell's nested sandbox (a covered proc is "too revealing" to remount);
    // they are root-only anyway, so they are uncovered before the privileges go.
    const dropPrivileges = this.root && this.setpriv
      ? ['--cap-add', 'CAP_SETUID,CAP_SETGID,CAP_SETPCAP,CAP_SYS_ADMIN', '--', '/bin/sh', '-c', 'umount -n /proc/irq /proc/bus 2>/dev/null; exec "$@"', 'continuum-sandbox',
        this.setpriv, '--reuid', String(uid), '--regid', String(gid), '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs']
      : [];
    // stdio: 0 1 2, 3 = ipc, 4 = --info-fd pipe, 5 = seccomp program.
    const args = [
      ...(dropPrivileges.length ? [] : ['--unshare-user', '--uid', String(uid), '--gid', String(gid)]),
      '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
      ...(network === 'host' ? [] : ['--unshare-net']),
      '--hostname', `continuum-${env.name}`,
      '--die-with-parent',
      ...bwrapMountArgs(mounts),
      '--remount-ro', '/',
      '--chdir', workspaces,
      '--info-fd', '4',
      ...(seccompFd !== undefined ? ['--seccomp', '5'] : []),
      ...dropPrivileges,
      '--', process.execPath, '--enable-source-maps', ...heapFlags(p.memory), module,
    ];
    const { command, args: full, env: launchEnv } = joiningCgroup(cgroup, this.bwrap!, args, childEnv);
    return {
      command,
      args: full,
      env: launchEnv,
      extraStdio: ['pipe', ...(seccompFd !== undefined ? [seccompFd] : [])],
      infoFd: 4,
      cgroup,
      boot: insideBoot,
      release: () => {
        if (seccompFd !== undefined) fs.closeSync(seccompFd);
      },
    };
  }

  /** The util-linux fallback: unshare → sh (builds the root, pivot_root) → setpriv → node. */
  private unshareLaunch(mounts: MountOp[], o: { uid: number; gid: number; workspaces: string; network: string; module: string; childEnv: NodeJS.ProcessEnv; cgroup: Cgroup | undefined; boot: ChildBoot; memory: number | undefined }): ExecutorLaunch {
    const script = unshareRootScript(mounts, { chdir: o.workspaces, network: o.network !== 'host' });
    const args = [
      '--pid', '--fork', '--kill-child', '--mount', '--ipc', '--uts', ...(o.network === 'host' ? [] : ['--net']),
      '--', '/bin/sh', '-c', script, 'continuum-sandbox',
      this.setpriv!, '--reuid', String(o.uid), '--regid', String(o.gid), '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs',
      '--', process.execPath, '--enable-source-maps', ...heapFlags(o.memory), o.module,
    ];
    const { command, args: full, env } = joiningCgroup(o.cgroup, which('unshare')!, args, o.childEnv);
    return { command, args: full, env, extraStdio: [], infoFd: undefined, cgroup: o.cgroup, boot: o.boot, release: () => undefined };
  }

  /** uid/gid an environment's workspaces must belong to, when it is confined and we are root. */
  owner(environment: string): { uid: number; gid: number } | undefined {
    if (!this.root || this.mechanism === 'none' || !this.setpriv) return undefined;
    return this.identities.get(environment);
  }
}
