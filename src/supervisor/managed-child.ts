// One supervised OS process: spawn, readiness, heartbeats, output capture, stop.
// Everything started for a child (timers, listeners) ends with it.
import { fork, type ChildProcess } from 'node:child_process';
import { childMessageSchema, type ChildBoot, type ExecutorState, type SupervisorMessage } from '../protocol/internal.js';
import type { ChildSpec } from './child-spec.js';
import { LineSplitter, type LogRouter } from './log-router.js';
import { RestartTracker, type RestartSettings } from './restart-policy.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  uptimeMs: number;
  /** Why the supervisor itself killed it, if it did. */
  killedFor: string | undefined;
  pid: number;
}

const READY_TIMEOUT_MS = 10_000;

export class ManagedChild {
  state: ExecutorState = 'stopped';
  proc: ChildProcess | undefined;
  pid: number | null = null;
  startedAt = 0;
  restarts = 0;
  reason: string | null = null;
  /** When a pending restart will happen (for retryAfterMs). */
  restartAt = 0;
  port: number | undefined;
  readonly tracker: RestartTracker;
  /** Process groups the executor started and has not reaped (its shells). */
  readonly processGroups = new Set<number>();
  /** When the oldest unanswered ping was sent; null when none is outstanding. */
  private pingSentAt: number | null = null;
  private pingSeq = 0;
  private querySeq = 0;
  private readonly queries = new Map<number, (data: unknown) => void>();
  private killedFor: string | undefined;
  private stopping = false;
  restartTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly spec: ChildSpec,
    restart: RestartSettings,
    private readonly logs: LogRouter,
    private readonly onExit: (child: ManagedChild, info: ExitInfo) => void,
  ) {
    this.tracker = new RestartTracker(restart);
  }

  /** Spawns the process; resolves when it says it is ready, rejects if it dies first. */
  start(boot: ChildBoot, env: NodeJS.ProcessEnv): Promise<void> {
    this.stopping = false;
    this.killedFor = undefined;
    this.state = 'starting';
    const proc = fork(this.spec.module, [], {
      execArgv: ['--enable-source-maps'],
      env: { ...env, CONTINUUM_CHILD: JSON.stringify(boot) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    this.proc = proc;
    this.pid = proc.pid ?? null;
    this.startedAt = Date.now();
    this.pingSentAt = null;
    const pid = proc.pid ?? -1;
    const stdout = new LineSplitter((line) =>
      this.spec.trusted
        ? this.logs.trustedLine(line, pid, this.spec.id)
        : this.logs.executorLine(this.spec.logTarget, pid, this.spec.id, line),
    );
    proc.stdout!.on('data', (c: Buffer) => stdout.push(c));
    proc.stdout!.on('end', () => stdout.end());
    let stderrTail = '';
    proc.stderr!.on('data', (c: Buffer) => {
      const text = c.toString('utf8');
      stderrTail = (stderrTail + text).slice(-4096);
      this.logs.stderr(this.spec.logTarget, pid, this.spec.name, text);
    });
    // The line a person needs when a child dies before it is ready (e.g. EADDRINUSE).
    const why = () => {
      const lines = stderrTail.split('\n').map((l) => l.trim()).filter(Boolean);
      const line = lines.find((l) => /^\w*Error\b|^Error:/.test(l)) ?? lines.at(-1);
      return line ? `: ${line}` : '';
    };

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.kill(`not ready within ${READY_TIMEOUT_MS} ms`);
        reject(new Error(`not ready within ${READY_TIMEOUT_MS} ms${why()}`));
      }, READY_TIMEOUT_MS);
      proc.on('message', (raw: unknown) => {
        const parsed = childMessageSchema.safeParse(raw);
        if (!parsed.success) return;
        const m = parsed.data;
        if (m.t === 'ready' && !settled) {
          settled = true;
          clearTimeout(timer);
          this.port = m.port;
          this.state = 'running';
          resolve();
        } else if (m.t === 'pong') this.pingSentAt = null;
        else if (m.t === 'reply') {
          this.queries.get(m.seq)?.(m.data);
          this.queries.delete(m.seq);
        } else if (m.t === 'pgid') {
          if (m.op === 'add') this.processGroups.add(m.pgid);
          else this.processGroups.delete(m.pgid);
        }
      });
      proc.on('error', () => undefined);
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        for (const done of this.queries.values()) done(null);
        this.queries.clear();
        this.reapProcessGroups();
        this.proc = undefined;
        const info: ExitInfo = { code, signal, uptimeMs: Date.now() - this.startedAt, killedFor: this.killedFor, pid };
        if (!settled) {
          settled = true;
          reject(new Error(`exited before it was ready (${signal ?? `code ${code}`})${why()}`));
        }
        if (!this.stopping) this.onExit(this, info);
      });
    });
  }

  send(message: SupervisorMessage): void {
    if (this.proc?.connected) this.proc.send(message, (err) => void err);
  }

  /**
   * Heartbeat tick: true if a ping we sent has gone unanswered for `timeoutMs`. Only pings
   * actually sent are judged, so a child's boot time never counts against it.
   */
  heartbeat(timeoutMs: number, judge: boolean): boolean {
    if (this.state !== 'running' || !this.proc) return false;
    if (this.pingSentAt === null) {
      this.pingSentAt = Date.now();
      this.send({ t: 'ping', seq: ++this.pingSeq });
      return false;
    }
    return judge && Date.now() - this.pingSentAt > timeoutMs;
  }

  /** Forgets the outstanding ping (after the supervisor itself was stalled). */
  resetHeartbeat(): void {
    this.pingSentAt = null;
  }

  query(q: 'sessionCounts', timeoutMs = 1_000): Promise<unknown> {
    if (!this.proc?.connected) return Promise.resolve(null);
    const seq = ++this.querySeq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.queries.delete(seq);
        resolve(null);
      }, timeoutMs);
      this.queries.set(seq, (data) => {
        clearTimeout(timer);
        resolve(data);
      });
      this.send({ t: 'query', seq, q });
    });
  }

  kill(reason: string): void {
    this.killedFor ??= reason;
    try {
      this.proc?.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }

  /** SIGTERM, then SIGKILL after the spec's shutdown time. Resolves when it has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const proc = this.proc;
    this.state = 'stopped';
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) {
      this.reapProcessGroups();
      return;
    }
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), this.spec.shutdownMs);
    await exited;
    clearTimeout(timer);
  }

  /** Kills what the executor started and can no longer clean up itself. */
  private reapProcessGroups(): void {
    for (const pgid of this.processGroups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // The group is already gone.
      }
    }
    this.processGroups.clear();
  }
}
