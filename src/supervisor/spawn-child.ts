// Forks one child process and wires its output into the logs. Used for a child's real
// process and for its warm standby alike.
import { fork, type ChildProcess } from 'node:child_process';
import type { ChildBoot } from '../protocol/internal.js';
import type { ChildSpec } from './child-spec.js';
import { LineSplitter, type LogRouter } from './log-router.js';

export interface SpawnedChild {
  proc: ChildProcess;
  pid: number;
  /** The line a person needs when the child died early (e.g. EADDRINUSE), from its stderr. */
  failureHint(): string;
}

export function spawnChild(spec: ChildSpec, boot: ChildBoot, env: NodeJS.ProcessEnv, logs: LogRouter): SpawnedChild {
  const proc = fork(spec.module, [], {
    execArgv: ['--enable-source-maps'],
    env: { ...env, CONTINUUM_CHILD: JSON.stringify(boot) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  });
  const pid = proc.pid ?? -1;
  proc.on('error', () => undefined);
  const stdout = new LineSplitter(
    (line) => {
      try {
        if (spec.trusted) logs.trustedLine(line, pid, spec.id);
        else logs.executorLine(spec.logTarget, pid, spec.id, line);
      } catch (err) {
        // A record nested too deeply to write again (a client's log.write data) must cost
        // that line, not the supervisor.
        logs.write(spec.logTarget, { level: 40, msg: `dropped a log line that could not be written (${(err as Error).message})`, pid, child: spec.name });
      }
    },
    (bytes) => logs.write(spec.logTarget, { level: 40, msg: `dropped a log line of ${bytes}+ characters (over the line limit)`, pid, child: spec.name }),
  );
  proc.stdout!.on('data', (c: Buffer) => stdout.push(c));
  proc.stdout!.on('end', () => stdout.end());
  let stderrTail = '';
  proc.stderr!.on('data', (c: Buffer) => {
    const text = c.toString('utf8');
    stderrTail = (stderrTail + text).slice(-4096);
    logs.stderr(spec.logTarget, pid, spec.name, text);
  });
  return {
    proc,
    pid,
    failureHint: () => {
      const lines = stderrTail.split('\n').map((l) => l.trim()).filter(Boolean);
      const line = lines.find((l) => /^\w*Error\b|^Error:/.test(l)) ?? lines.at(-1);
      return line ? `: ${line}` : '';
    },
  };
}
