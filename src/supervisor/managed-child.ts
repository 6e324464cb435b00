// One supervised OS process: spawn, readiness, heartbeats, output capture, stop.
// Everything started for a child (timers, listeners) ends with it.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { childMessageSchema, type Attestation, type ChildBoot, type ExecutorState, type ExitRecord, type SupervisorMessage, type SupervisorQuery } from '../protocol/internal.js';
import type { ExecutorLaunch } from '../sandbox/launcher.js';
import type { ChildSpec } from './child-spec.js';
import type { LogRouter } from './log-router.js';
import { exitOf, spawnChild, type SpawnedChild } from './spawn-child.js';
import { RestartTracker, type RestartSettings } from './restart-policy.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  uptimeMs: number;
  /** Why the supervisor itself killed it, if it did. */
  killedFor: string | undefined;
  pid: number;
  /** The kernel killed it for crossing its cgroup's memory limit. */
  oomKilled: boolean;
}

/** Builds the sandbox launch for one process of this child (undefined: plain fork). */
export type LaunchFactory = () => ExecutorLaunch | undefined;

const READY_TIMEOUT_MS = 10_000;
const PROMOTION_TIMEOUT_MS = 1_000;
const MAX_PROCESS_GROUPS = 4_096;

/**
 * An executor is not trusted: it may only hand us process groups it really started — a
 * group leader that is its own child — or it could make us kill anything, even group 1.
 */
function isOwnGroupLeader(pgid: number, parentPid: number): boolean {
  if (pgid <= 1 || pgid === process.pid) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pgid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[1]) === parentPid && Number(fields[2]) === pgid;
  } catch {
    return false;
  }
}

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
  /**
   * When the child last proved alive (its last pong, or our first ping to it); null before
   * that. Silence is counted from here, so a hung child is found within timeoutMs of its
   * last sign of life rather than timeoutMs after the next ping.
   */
  private lastSeenAt: number | null = null;
  private lastPingAt = 0;
  private pingSeq = 0;
  private querySeq = 0;
  private readonly queries = new Map<number, (data: unknown) => void>();
  private killedFor: string | undefined;
  private stopping = false;
  restartTimer: NodeJS.Timeout | undefined;
  /** A booted process of the same spec, waiting to take over at once after a crash. */
  private standby: (SpawnedChild & { ready: boolean }) | undefined;
  /** Whether the running process was a promoted standby (for the log). */
  promoted = false;
  /** How the previous process ended, for the ledger's `lost` reasons. */
  lastExit: ExitRecord | null = null;
  /** Cgroups of exited processes being removed (a dead tree leaves its cgroup a moment later). */
  private readonly cgroupRemovals = new Set<Promise<void>>();
  /** The running process (its sandbox, cgroup). */
  private current: SpawnedChild | undefined;
  /** The executor's latest report on its own isolation. */
  attestation: Attestation | null = null;
  /** OOM kills in the running process's cgroup already reported. */
  private oomReported = 0;

  constructor(
    readonly spec: ChildSpec,
    restart: RestartSettings,
    private readonly logs: LogRouter,
    private readonly onExit: (child: ManagedChild, info: ExitInfo) => void,
  ) {
    this.tracker = new RestartTracker(restart);
  }

  /**
   * Starts the child: by promoting its warm standby when one is booted and waiting, else by
   * forking afresh. Resolves when it says it is ready, rejects if it dies first.
   */
  start(boot: ChildBoot, env: NodeJS.ProcessEnv, launch: LaunchFactory = () => undefined): Promise<void> {
    this.stopping = false;
    this.killedFor = undefined;
    this.state = 'starting';
    this.attestation = null;
    this.oomReported = 0;
    const spare = this.takeStandby();
    const spawned = spare ?? spawnChild(this.spec, boot, env, this.logs, launch());
    const { proc } = spawned;
    const confined = spawned.confined;
    this.current = spawned;
    this.proc = proc;
    this.pid = spawned.pid;
    this.startedAt = Date.now();
    this.resetHeartbeat();
    this.promoted = Boolean(spare);
    if (spare) proc.send({ t: 'activate' } satisfies SupervisorMessage);
    const why = spawned.failureHint;

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      // A promoted standby has nothing left to load: if it doesn't answer at once, it is stuck.
      const readyTimeout = spare ? PROMOTION_TIMEOUT_MS : READY_TIMEOUT_MS;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.kill(`not ready within ${readyTimeout} ms`);
        reject(new Error(`not ready within ${readyTimeout} ms${why()}`));
      }, readyTimeout);
      proc.on('message', (raw: unknown) => {
        const parsed = childMessageSchema.safeParse(raw);
        if (!parsed.success) return;
        const m = parsed.data;
        if (m.t === 'ready' && !settled) {
          settled = true;
          clearTimeout(timer);
          this.port = m.port;
          // A confined executor's host pid is read from its sandbox just after spawn.
          void spawned.pidKnown.then(() => {
            if (this.proc !== proc) return;
            this.pid = spawned.pid;
            this.state = 'running';
            resolve();
          });
        } else if (m.t === 'pong') {
          this.pingSentAt = null;
          this.lastSeenAt = Date.now();
        }
        else if (m.t === 'attest') this.attestation = m.result;
        else if (m.t === 'reply') {
          this.queries.get(m.seq)?.(m.data);
          this.queries.delete(m.seq);
        } else if (m.t === 'pgid' && !confined) {
          // A confined executor's groups live in its own pid namespace and die with it.
          if (m.op === 'remove') this.processGroups.delete(m.pgid);
          else if (isOwnGroupLeader(m.pgid, spawned.pid) && this.processGroups.size < MAX_PROCESS_GROUPS) this.processGroups.add(m.pgid);
        }
      });
      proc.once('exit', (rawCode, rawSignal) => {
        clearTimeout(timer);
        for (const done of this.queries.values()) done(null);
        this.queries.clear();
        this.reapProcessGroups();
        this.proc = undefined;
        const { code, signal } = exitOf(rawCode, rawSignal, confined);
        const oomKilled = signal === 'SIGKILL' && !this.killedFor && (spawned.cgroup?.oomKills() ?? 0) > this.oomReported;
        spawned.cgroup?.kill();
        this.removeCgroup(spawned, (err) => this.logs.write('server', { level: 40, msg: 'could not remove a cgroup', component: 'supervisor', error: err.message }));
        if (this.current === spawned) this.current = undefined;
        const info: ExitInfo = { code, signal, uptimeMs: Date.now() - this.startedAt, killedFor: this.killedFor, pid: spawned.pid, oomKilled };
        this.lastExit = { pid: spawned.pid, code, signal, killedFor: this.killedFor ?? null };
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
   * Heartbeat tick: sends a ping every `intervalMs`, and returns true once a ping is
   * outstanding and the child has shown no sign of life for `timeoutMs`. Only pings
   * actually sent are judged, so a child's boot time never counts against it.
   */
  heartbeat(intervalMs: number, timeoutMs: number, judge: boolean): boolean {
    if (this.state !== 'running' || !this.proc) return false;
    const now = Date.now();
    if (this.pingSentAt === null) {
      if (now - this.lastPingAt < intervalMs) return false;
      this.pingSentAt = this.lastPingAt = now;
      this.lastSeenAt ??= now;
      this.send({ t: 'ping', seq: ++this.pingSeq });
      return false;
    }
    return judge && now - (this.lastSeenAt ?? now) > timeoutMs;
  }

  /** How long it has shown no sign of life (0 while no ping is outstanding). */
  silentMs(now = Date.now()): number {
    return this.pingSentAt === null || this.lastSeenAt === null ? 0 : now - this.lastSeenAt;
  }

  /** Its cgroup's memory is all used: the kernel is reclaiming, which stalls what runs in it. */
  atMemoryLimit(): boolean {
    return this.current?.cgroup?.atMemoryLimit() ?? false;
  }

  /** Forgets the outstanding ping and the last sign of life (after the supervisor itself was stalled). */
  resetHeartbeat(): void {
    this.pingSentAt = null;
    this.lastSeenAt = null;
    this.lastPingAt = 0;
  }

  query(q: SupervisorQuery, timeoutMs = 1_000): Promise<unknown> {
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
    this.current?.killTree();
  }

  /** New OOM kills in the running process's cgroup since the last call (0 when none). */
  newOomKills(): number {
    const total = this.current?.cgroup?.oomKills() ?? 0;
    const fresh = total - this.oomReported;
    this.oomReported = total;
    return fresh;
  }

  /** SIGTERM, then SIGKILL after the spec's shutdown time. Resolves when it has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    await this.dropStandby();
    const proc = this.proc;
    this.state = 'stopped';
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) {
      this.reapProcessGroups();
      await Promise.all(this.cgroupRemovals);
      return;
    }
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    const spawned = this.current;
    if (spawned) spawned.terminate();
    else proc.kill('SIGTERM');
    const timer = setTimeout(() => (spawned ? spawned.killTree() : proc.kill('SIGKILL')), this.spec.shutdownMs);
    await exited;
    clearTimeout(timer);
    // The cgroup goes once the kernel lets go of the dead tree: the supervisor must not exit first.
    await Promise.all(this.cgroupRemovals);
  }

  private removeCgroup(child: SpawnedChild, onError: (err: Error) => void): void {
    const removal = child.cgroup?.remove().catch(onError);
    if (!removal) return;
    this.cgroupRemovals.add(removal);
    void removal.finally(() => this.cgroupRemovals.delete(removal));
  }

  /** Boots a standby process for this child, unless one exists. It waits for 'activate'. */
  prepareStandby(boot: ChildBoot, env: NodeJS.ProcessEnv, launch: (boot: ChildBoot) => ExecutorLaunch | undefined = () => undefined): void {
    if (this.standby || this.stopping) return;
    const standbyBoot = { ...boot, standby: true };
    let plan: ExecutorLaunch | undefined;
    try {
      plan = launch(standbyBoot);
    } catch {
      return; // Unenforceable under strict: no spare either.
    }
    const spare: SpawnedChild & { ready: boolean } = Object.assign(spawnChild(this.spec, standbyBoot, env, this.logs, plan), { ready: false });
    this.standby = spare;
    spare.proc.on('message', (raw: unknown) => {
      if ((raw as { t?: unknown } | null)?.t === 'standby') void spare.pidKnown.then(() => (spare.ready = true));
    });
    spare.proc.once('exit', () => {
      this.removeCgroup(spare, () => undefined);
      if (this.standby === spare) this.standby = undefined;
    });
  }

  get standbyPid(): number | null {
    return this.standby?.ready ? this.standby.pid : null;
  }

  /** A standby is booting but not yet ready. */
  get standbyPending(): boolean {
    return this.standby !== undefined && !this.standby.ready;
  }

  private takeStandby(): SpawnedChild | undefined {
    const spare = this.standby;
    this.standby = undefined;
    if (spare?.ready && spare.proc.connected) return spare;
    if (spare) spare.killTree();
    return undefined;
  }

  private async dropStandby(): Promise<void> {
    const spare = this.standby;
    this.standby = undefined;
    if (!spare || spare.proc.exitCode !== null || spare.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => spare.proc.once('exit', () => r()));
    spare.killTree();
    await exited;
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
