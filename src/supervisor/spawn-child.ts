// Forks one child process and wires its output into the logs. Used for a child's real
// process and for its warm standby alike. A confined executor is started through its
// sandbox launcher instead of a plain fork; the IPC channel passes through the sandbox.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { ChildBoot, SupervisorMessage } from '../protocol/internal.js';
import type { Cgroup } from '../sandbox/cgroups.js';
import { signalFromExitCode } from '../sandbox/exit-status.js';
import type { ExecutorLaunch } from '../sandbox/launcher.js';
import type { ChildSpec } from './child-spec.js';
import { LineSplitter, type LogRouter } from './log-router.js';

export interface SpawnedChild {
  proc: ChildProcess;
  /**
   * The child's host pid, as `ps` shows it. For a confined executor this is the node
   * process inside the sandbox (known a moment after spawn), not the bwrap launcher.
   */
  pid: number;
  /** Resolves once `pid` is the real one. */
  pidKnown: Promise<void>;
  cgroup: Cgroup | undefined;
  /** Started inside a sandbox (bwrap), not by a plain fork. */
  confined: boolean;
  /** The line a person needs when the child died early (e.g. EADDRINUSE), from its stderr. */
  failureHint(): string;
  /** SIGKILLs the child and everything it started (its cgroup, its sandbox). */
  killTree(): void;
  /** Graceful stop: SIGTERM to the child itself (bwrap does not forward signals). */
  terminate(): void;
}

/**
 * bwrap reports a child killed by signal N as exit code 128+N; turn it back, so the logs
 * say "killed by SIGKILL" for a confined executor as for any other.
 */
export function exitOf(code: number | null, signal: NodeJS.Signals | null, confined: boolean): { code: number | null; signal: NodeJS.Signals | null } {
  const mapped = confined && !signal ? signalFromExitCode(code) : null;
  return mapped ? { code: null, signal: mapped } : { code, signal };
}

/**
 * bwrap: the sandbox's init (its pid 1, from --info-fd) has exactly one child, the executor.
 * The util-linux fallback: `unshare --fork`'s only child becomes the executor (it execs).
 */
async function sandboxedPid(infoPipe: NodeJS.ReadableStream | undefined, proc: ChildProcess): Promise<number | undefined> {
  let init = proc.pid ?? 0;
  if (infoPipe) {
    let text = '';
    for await (const chunk of infoPipe) text += String(chunk);
    init = Number((JSON.parse(text || '{}') as { 'child-pid'?: unknown })['child-pid']);
  }
  if (!Number.isInteger(init) || init <= 0) return undefined;
  for (let i = 0; i < 400 && proc.exitCode === null && proc.signalCode === null; i++) {
    try {
      const children = fs.readFileSync(`/proc/${init}/task/${init}/children`, 'utf8').trim();
      if (children) return Number(children.split(' ')[0]);
    } catch {
      return undefined;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return undefined;
}

/** Lines held while a confined executor's pid is not known yet (it is, within ms, normally). */
const MAX_HELD_LINES = 1_000;

export function spawnChild(spec: ChildSpec, boot: ChildBoot, env: NodeJS.ProcessEnv, logs: LogRouter, launch?: ExecutorLaunch): SpawnedChild {
  let proc: ChildProcess;
  if (launch) {
    proc = spawn(launch.command, launch.args, {
      env: { ...launch.env, CONTINUUM_CHILD: JSON.stringify(launch.boot) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc', ...launch.extraStdio],
      serialization: 'json',
    });
    launch.release();
  } else {
    proc = fork(spec.module, [], {
      execArgv: ['--enable-source-maps', ...(spec.execArgv ?? [])],
      env: { ...env, CONTINUUM_CHILD: JSON.stringify(boot) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
  }
  const launcherPid = proc.pid ?? -1;
  proc.on('error', () => undefined);
  const child: SpawnedChild = {
    proc,
    pid: launcherPid,
    pidKnown: Promise.resolve(),
    cgroup: launch?.cgroup,
    confined: launch !== undefined,
    failureHint: () => '',
    killTree: () => {
      child.cgroup?.kill();
      try {
        proc.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    },
    terminate: () => {
      try {
        if (child.pid !== launcherPid) process.kill(child.pid, 'SIGTERM');
        else proc.kill('SIGTERM');
      } catch {
        // Already gone.
      }
    },
  };
  if (launch) {
    const info = launch.infoFd === undefined ? undefined : (proc.stdio[launch.infoFd] as NodeJS.ReadableStream | null) ?? undefined;
    child.pidKnown = info || launch.infoFd === undefined
      ? sandboxedPid(info, proc).then(
          (pid) => {
            if (!pid) return;
            child.pid = pid;
            if (proc.connected) proc.send({ t: 'identity', pid } satisfies SupervisorMessage, () => undefined);
          },
          () => undefined,
        )
      : Promise.resolve();
  }
  // A confined executor's first lines can come before its host pid is read from the sandbox:
  // they wait for it, or they would be stamped with the launcher's pid (bwrap's), not its own.
  let held: (() => void)[] | undefined = launch ? [] : undefined;
  if (held) {
    void child.pidKnown.then(() => {
      const lines = held!;
      held = undefined;
      for (const route of lines) route();
    });
  }
  const afterPid = (route: () => void) => {
    if (held && held.length >= MAX_HELD_LINES) {
      // Never known, it seems: let them through as they are, in order.
      const lines = held;
      held = undefined;
      for (const r of lines) r();
    }
    if (held) held.push(route);
    else route();
  };
  const stdout = new LineSplitter(
    (line) => afterPid(() => {
      try {
        if (spec.trusted) logs.trustedLine(line, child.pid, spec.id);
        else logs.executorLine(spec.logTarget, child.pid, spec.id, line);
      } catch (err) {
        // A record nested too deeply to write again (a client's log.write data) must cost
        // that line, not the supervisor.
        logs.write(spec.logTarget, { level: 40, msg: `dropped a log line that could not be written (${(err as Error).message})`, pid: child.pid, child: spec.name });
      }
    }),
    (bytes) => logs.write(spec.logTarget, { level: 40, msg: `dropped a log line of ${bytes}+ characters (over the line limit)`, pid: child.pid, child: spec.name }),
  );
  proc.stdout!.on('data', (c: Buffer) => stdout.push(c));
  proc.stdout!.on('end', () => afterPid(() => stdout.end()));
  let stderrTail = '';
  proc.stderr!.on('data', (c: Buffer) => {
    const text = c.toString('utf8');
    stderrTail = (stderrTail + text).slice(-4096);
    afterPid(() => logs.stderr(spec.logTarget, child.pid, spec.name, text));
  });
  child.failureHint = () => {
    const lines = stderrTail.split('\n').map((l) => l.trim()).filter(Boolean);
    const line = lines.find((l) => /^\w*Error\b|^Error:|^bwrap:|^setpriv:/.test(l)) ?? lines.at(-1);
    return line ? `: ${line}` : '';
  };
  return child;
}
