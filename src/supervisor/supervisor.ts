// continuum-supervisor: starts the daemons and one executor per environment replica,
// restarts what dies (backoff + per-environment crash-loop breaker), watches heartbeats,
// owns the log files, and answers the CLI on its control socket.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { busProof } from '../bus/auth.js';
import { homePaths, SERVER_LOG, type HomePaths } from '../config/paths.js';
import type { Config } from '../config/schema.js';
import { ensureSecrets } from '../config/secrets.js';
import type { ProcessRow, SandboxRow } from '../protocol/control.js';
import type { ChildBoot, ExecutorStatus } from '../protocol/internal.js';
import { SandboxHost, SandboxUnenforceable } from '../sandbox/launcher.js';
import { readNamespaces } from '../sandbox/namespaces.js';
import { daemonSpecs, egressEnvironments, executorSpecs, type ChildSpec } from './child-spec.js';
import { AuditTrail } from './audit-trail.js';
import { LogRouter } from './log-router.js';
import { ManagedChild, type ExitInfo } from './managed-child.js';
import { processInfo } from '../protocol/methods/process.js';
import { DashboardLogins } from './dashboard-logins.js';
import { ProcStats, type ProcSample } from './proc-stats.js';

export type { ProcessRow, SandboxRow } from '../protocol/control.js';

export interface RuntimeInfo {
  pid: number;
  host: string;
  port: number;
  url: string;
  home: string;
  startedAt: number;
}

/** Roughly how long a Node child takes from spawn to ready; part of retryAfterMs. */
const BOOT_ESTIMATE_MS = 150;
/** Standbys are booted this long after start or a restart, so they don't compete with serving. */
const STANDBY_DELAY_MS = 1_000;
const STANDBY_STAGGER_MS = 150;
const EXECUTOR_ENV_KEYS = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'NODE_OPTIONS'];

/** How much longer a silent child whose cgroup is at its memory limit gets before it is killed. */
const MEMORY_STALL_GRACE_MS = 10_000;

export class Supervisor {
  readonly paths: HomePaths;
  readonly logs: LogRouter;
  private readonly children = new Map<string, ManagedChild>();
  private readonly busKey = randomBytes(32).toString('hex');
  private readonly dashboardKey = randomBytes(32).toString('hex');
  /** One-time dashboard login links. */
  readonly logins = new DashboardLogins();
  private readonly namespaces = readNamespaces();
  private readonly stats = new ProcStats();
  /** pid → its latest 2-second sample: what ps, the dashboard and /metrics all read. */
  private readonly samples = new Map<number, ProcSample>();
  private readonly sandbox: SandboxHost;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** Children given the memory-stall grace (logged once per silence). */
  private readonly memoryStalled = new Set<ManagedChild>();
  private lastHeartbeatTick = 0;
  private standbyTimer: NodeJS.Timeout | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private shuttingDown: Promise<void> | undefined;
  port: number;

  constructor(private readonly config: Config, home: string) {
    this.paths = homePaths(home);
    this.port = config.port;
    for (const dir of [this.paths.home, this.paths.run, this.paths.state, this.paths.workspaces, this.paths.artifacts]) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    // The session socket's folder is bound read-only into sandboxes.
    fs.mkdirSync(path.dirname(this.paths.sessionSocket), { recursive: true, mode: 0o755 });
    for (const spec of executorSpecs(config)) fs.mkdirSync(path.dirname(this.paths.executorSocket(spec.id)), { recursive: true, mode: 0o700 });
    this.sandbox = new SandboxHost(this.paths, config);
    this.logs = new LogRouter(this.paths.logs, config.logs, new Set(config.environments.map((e) => e.name)));
    this.logs.audit = new AuditTrail(this.paths.audit, new Set(config.environments.map((e) => e.name)));
    for (const spec of [...daemonSpecs(config), ...executorSpecs(config)]) {
      this.children.set(spec.id, new ManagedChild(spec, config.restart, this.logs, (c, info) => this.onChildExit(c, info)));
    }
  }

  private log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
    this.logs.write(SERVER_LOG, { level: { info: 30, warn: 40, error: 50 }[level], msg, component: 'supervisor', ...fields });
  }

  /** Starts every child; resolves once the edge accepts connections and all are ready. */
  async start(): Promise<RuntimeInfo> {
    const t0 = Date.now();
    ensureSecrets(this.paths.secrets, this.config.environments.map((e) => e.name));
    this.log('info', 'supervisor starting', { home: this.paths.home, environments: this.config.environments.map((e) => e.name) });
    const stale = await this.sandbox.prepare();
    if (stale.length) this.log('warn', 'removed cgroups left by a previous run', { cgroups: stale });
    this.log('info', 'sandbox mechanisms', { ...this.sandbox.info() });
    for (const env of this.config.environments) {
      const warnings = this.sandbox.warnings(env);
      if (warnings.length) this.log('warn', `sandbox profile of ${env.name} not fully enforced${env.sandbox.strict ? ' (strict: it will not start)' : ''}`, { env: env.name, warnings });
    }
    const results = await Promise.allSettled([...this.children.values()].map((c) => this.spawn(c)));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [[...this.children.values()][i]!.spec.name + ': ' + (r.reason as Error).message] : []));
    const edge = this.children.get('websocket-daemon')!;
    if (edge.state !== 'running' || this.children.get('session-daemon')!.state !== 'running') {
      await this.stop();
      throw new Error(`Continuum could not start:\n  ${failed.join('\n  ')}`);
    }
    this.port = edge.port ?? this.port;
    for (const f of failed) this.log('error', 'child failed to start', { detail: f });
    this.pushExecutors();
    this.prepareStandbys();
    this.lastHeartbeatTick = Date.now();
    this.heartbeatTimer = setInterval(() => this.checkHeartbeats(), this.heartbeatTickMs());
    this.statsTimer = setInterval(() => this.sampleStats(), 2_000);
    const info: RuntimeInfo = {
      pid: process.pid,
      host: this.config.host,
      port: this.port,
      url: `ws://${this.config.host}:${this.port}/ws`,
      home: this.paths.home,
      startedAt: Date.now(),
    };
    fs.writeFileSync(this.paths.runtimeFile, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
    this.log('info', 'supervisor ready', { readyMs: Date.now() - t0, port: this.port, children: this.children.size });
    return info;
  }

  private boot(spec: ChildSpec): ChildBoot {
    const config = spec.role === 'websocket-daemon' ? { ...this.config, port: this.port } : this.config;
    const id = spec.role === 'executor' ? spec.id : spec.role === 'websocket-daemon' ? 'edge' : spec.id;
    const boot: ChildBoot = {
      role: spec.role,
      name: spec.name,
      home: this.paths.home,
      config,
      busProof: busProof(this.busKey, spec.role, id),
      supervisorNamespaces: this.namespaces,
    };
    if (spec.role === 'session-daemon') {
      boot.busKey = this.busKey;
      const owners: Record<string, { uid: number; gid: number }> = {};
      for (const env of this.config.environments) {
        const owner = this.sandbox.owner(env.name);
        if (owner) owners[env.name] = { uid: owner.uid, gid: owner.gid };
      }
      boot.workspaceOwners = owners;
    }
    if (spec.environment !== undefined && spec.replica !== undefined) {
      boot.executor = { id: spec.id, environment: spec.environment, replica: spec.replica };
      const env = this.config.environments.find((e) => e.name === spec.environment);
      if (env) boot.sandboxWarnings = this.sandbox.warnings(env);
    }
    const previous = this.children.get(spec.id)?.lastExit;
    if (previous) boot.previousExit = previous;
    if (spec.role === 'websocket-daemon') boot.dashboardKey = this.dashboardKey;
    if (spec.role === 'executor' && egressEnvironments(this.config).includes(spec.environment!)) boot.egressSocket = this.paths.egressSocket(spec.environment!);
    return boot;
  }

  private childEnv(spec: ChildSpec): NodeJS.ProcessEnv {
    if (spec.trusted) return process.env;
    // Executors get a clean environment: none of the supervisor's variables (or secrets).
    const env: NodeJS.ProcessEnv = {};
    for (const k of EXECUTOR_ENV_KEYS) if (process.env[k] !== undefined) env[k] = process.env[k];
    return env;
  }

  private hasStandby(spec: ChildSpec): boolean {
    return spec.role === 'executor' && this.config.environments.some((e) => e.name === spec.environment && e.standby);
  }

  /** Boots standbys one after another, off the start-up path and off the restart path. */
  private prepareStandbys(delayMs = STANDBY_DELAY_MS): void {
    clearTimeout(this.standbyTimer);
    this.standbyTimer = setTimeout(() => {
      if (this.shuttingDown) return;
      const next = [...this.children.values()].find((c) => c.state === 'running' && this.hasStandby(c.spec) && c.standbyPid === null && !c.standbyPending);
      if (!next) return;
      next.prepareStandby(this.boot(next.spec), this.childEnv(next.spec), (b) => this.launch(next.spec, b));
      this.prepareStandbys(STANDBY_STAGGER_MS);
    }, delayMs);
  }

  /** The sandbox launch for a confined executor (undefined: an ordinary fork). */
  private launch(spec: ChildSpec, boot: ChildBoot) {
    const env = spec.role === 'executor' ? this.config.environments.find((e) => e.name === spec.environment) : undefined;
    return env ? this.sandbox.launch(env, boot, spec.module, this.childEnv(spec)) : undefined;
  }

  private async spawn(child: ManagedChild): Promise<void> {
    try {
      const boot = this.boot(child.spec);
      await child.start(boot, this.childEnv(child.spec), () => this.launch(child.spec, boot));
      if (this.hasStandby(child.spec) && this.heartbeatTimer) this.prepareStandbys();
      this.log('info', 'child started', { child: child.spec.name, id: child.spec.id, childPid: child.pid, restarts: child.restarts, promotedStandby: child.promoted });
      if (child.spec.environment) this.logs.write(child.spec.logTarget, { msg: 'executor started', env: child.spec.environment, pid: child.pid, executorId: child.spec.id, restarts: child.restarts });
      if (child.spec.id === 'websocket-daemon' && child.port) this.port = child.port;
      this.pushExecutors();
    } catch (err) {
      if (err instanceof SandboxUnenforceable) {
        // Retrying can't help until the host changes: failed, visible, cleared by `continuum restart`.
        child.state = 'failed';
        child.reason = err.message;
        this.pushExecutors();
      }
      this.log('error', 'child failed to start', { child: child.spec.name, id: child.spec.id, error: (err as Error).message });
      throw err;
    }
  }

  private onChildExit(child: ManagedChild, info: ExitInfo): void {
    if (this.shuttingDown) return;
    const memory = this.config.environments.find((e) => e.name === child.spec.environment)?.sandbox.memory;
    const how = info.oomKilled && memory
      ? `memory limit (${Math.round(memory / 1024 / 1024)} MiB)`
      : info.killedFor ? `killed by the supervisor: ${info.killedFor}` : info.signal ? `killed by ${info.signal}` : `exited with code ${info.code}`;
    if (info.oomKilled && memory && child.lastExit) child.lastExit.oom = how;
    const decision = child.tracker.onExit(info.uptimeMs);
    const fields = { child: child.spec.name, id: child.spec.id, childPid: info.pid, code: info.code, signal: info.signal, uptimeMs: info.uptimeMs, cause: how };
    this.log('warn', 'child exited', fields);
    if (child.spec.environment) this.logs.write(child.spec.logTarget, { level: 50, msg: `executor ${how}`, env: child.spec.environment, pid: info.pid, executorId: child.spec.id, uptimeMs: info.uptimeMs });
    child.pid = null;
    if (decision.action === 'give-up') {
      child.state = 'failed';
      child.reason = decision.reason;
      this.log('error', 'child marked failed', { ...fields, reason: decision.reason });
      if (child.spec.environment) this.logs.write(child.spec.logTarget, { level: 50, msg: `environment ${child.spec.environment} marked failed: ${decision.reason}; \`continuum restart ${child.spec.environment}\` tries again`, env: child.spec.environment, executorId: child.spec.id });
      this.pushExecutors();
      return;
    }
    child.state = 'restarting';
    child.reason = how;
    child.restarts++;
    child.restartAt = Date.now() + decision.delayMs;
    this.pushExecutors();
    child.restartTimer = setTimeout(() => {
      if (this.shuttingDown || child.state !== 'restarting') return;
      this.spawn(child).catch(() => undefined);
    }, decision.delayMs);
  }

  /** Clears a failed (or backing-off) environment and starts its executors again. */
  async restartEnvironment(environment: string): Promise<string[]> {
    const targets = [...this.children.values()].filter((c) => c.spec.environment === environment || c.spec.id === environment);
    if (targets.length === 0) throw new Error(`no environment or child named "${environment}"`);
    await Promise.all(
      targets.map(async (c) => {
        clearTimeout(c.restartTimer);
        c.tracker.reset();
        c.reason = null;
        if (c.proc) await c.stop();
        await this.spawn(c).catch(() => undefined);
      }),
    );
    return targets.map((c) => `${c.spec.id}: ${c.state}`);
  }

  executorStatuses(): ExecutorStatus[] {
    return [...this.children.values()]
      .filter((c) => c.spec.role === 'executor')
      .map((c) => this.linkStatus(c, c.spec.environment!, c.spec.replica!, this.paths.executorSocket(c.spec.id)));
  }

  /** The daemons that serve command namespaces, in the shape the edge links to. */
  serviceStatuses(): ExecutorStatus[] {
    return [...this.children.values()]
      .filter((c) => c.spec.serves)
      .map((c) => ({ ...this.linkStatus(c, c.spec.id, 0, this.paths.serviceSocket(c.spec.id)), service: true }));
  }

  private linkStatus(c: ManagedChild, environment: string, replica: number, socket: string): ExecutorStatus {
    return {
      id: c.spec.id,
      environment,
      replica,
      state: c.state,
      pid: c.state === 'running' ? c.pid : null,
      socket,
      restarts: c.restarts,
      retryAfterMs: Math.max(0, c.restartAt - Date.now()) + BOOT_ESTIMATE_MS,
      reason: c.reason,
      lastExit: c.lastExit,
    };
  }

  /** The edge routes by these; the renderer shows every change live on the dashboard. */
  private pushExecutors(): void {
    const message = { t: 'executors', executors: this.executorStatuses(), services: this.serviceStatuses() } as const;
    this.children.get('websocket-daemon')?.send(message);
    this.children.get('renderer-daemon')?.send(message);
  }

  /**
   * Each running executor's own `process.info` (what its sandbox really is), asked over IPC.
   * Executors are not trusted: an answer that doesn't fit the schema counts as none.
   */
  async processInfo(): Promise<Record<string, unknown>> {
    const executors = [...this.children.values()].filter((c) => c.spec.role === 'executor' && c.state === 'running');
    const answers = await Promise.all(executors.map(async (c) => [c.spec.id, processInfo.result.safeParse(await c.query('processInfo')).data ?? null] as const));
    return Object.fromEntries(answers);
  }

  /** Ticks finer than the ping interval, so a hung child is killed close to timeoutMs after it fell silent. */
  private heartbeatTickMs(): number {
    const { intervalMs, timeoutMs } = this.config.heartbeat;
    return Math.max(20, Math.min(intervalMs, Math.floor(timeoutMs / 10)));
  }

  private checkHeartbeats(): void {
    const now = Date.now();
    const { intervalMs, timeoutMs } = this.config.heartbeat;
    // If this tick is late, the supervisor itself was stalled and hasn't read the pongs
    // waiting for it: judge nobody this time.
    const late = now - this.lastHeartbeatTick > Math.max(2 * this.heartbeatTickMs(), intervalMs);
    this.lastHeartbeatTick = now;
    if (late) for (const child of this.children.values()) child.resetHeartbeat();
    for (const child of this.children.values()) {
      if (!child.heartbeat(intervalMs, timeoutMs, !late)) {
        this.memoryStalled.delete(child);
        continue;
      }
      // Silent while its cgroup is at its memory limit: the kernel is reclaiming in it (a
      // command there is growing) and stalls it until the OOM killer picks the hog, which can
      // take seconds on a busy machine. That is not a hang: give the kernel a while first.
      // Once given, the grace lasts its whole window: after the hog is killed, the child may
      // still be paging its own evicted memory back in while the cgroup no longer looks full.
      if (child.silentMs(now) <= timeoutMs + MEMORY_STALL_GRACE_MS && (this.memoryStalled.has(child) || child.atMemoryLimit())) {
        if (!this.memoryStalled.has(child)) {
          this.memoryStalled.add(child);
          this.log('warn', 'child silent while its cgroup is at its memory limit; waiting for the kernel before killing it', { child: child.spec.name, id: child.spec.id, childPid: child.pid, silentMs: child.silentMs(now), graceMs: MEMORY_STALL_GRACE_MS });
        }
        continue;
      }
      this.memoryStalled.delete(child);
      this.log('error', 'child missed its heartbeat; killing it', { child: child.spec.name, id: child.spec.id, childPid: child.pid, timeoutMs });
      child.kill(`no heartbeat for ${timeoutMs} ms`);
    }
  }

  /**
   * Every process is sampled on this one clock, and readers get the latest sample: sampling
   * on each read would measure CPU over whatever short interval since the previous reader.
   */
  private sampleStats(): void {
    const pids = [process.pid, ...[...this.children.values()].flatMap((c) => [c.pid, c.standbyPid])].filter((p): p is number => p !== null);
    const fresh = new Map<number, ProcSample>();
    for (const pid of pids) {
      const sample = this.stats.sample(pid);
      if (sample) fresh.set(pid, sample);
    }
    for (const pid of this.samples.keys()) if (!fresh.has(pid)) this.stats.forget(pid);
    this.samples.clear();
    for (const [pid, sample] of fresh) this.samples.set(pid, sample);
    this.reportOomKills();
  }

  private sampleOf(pid: number): ProcSample | undefined {
    return this.samples.get(pid) ?? this.stats.sample(pid);
  }

  /** The kernel's OOM kills in executors' sandboxes, reported to their environment's log. */
  private reportOomKills(): void {
    for (const c of this.children.values()) {
      const oom = c.newOomKills();
      if (oom > 0 && c.spec.environment) {
        const memory = this.config.environments.find((e) => e.name === c.spec.environment)?.sandbox.memory ?? 0;
        this.logs.write(c.spec.logTarget, { level: 40, msg: `memory limit (${Math.round(memory / 1024 / 1024)} MiB) hit: the kernel killed ${oom} process${oom > 1 ? 'es' : ''} in this executor's sandbox`, env: c.spec.environment, executorId: c.spec.id });
      }
    }
  }

  private sandboxRow(c: ManagedChild): SandboxRow | undefined {
    const env = this.config.environments.find((e) => e.name === c.spec.environment);
    if (!env || c.spec.role !== 'executor') return undefined;
    return { confined: env.sandbox.isolation === 'confined', warnings: this.sandbox.warnings(env), attestation: c.attestation };
  }

  async processTable(): Promise<ProcessRow[]> {
    const counts = ((await this.children.get('session-daemon')?.query('sessionCounts')) ?? {}) as Record<string, number>;
    const now = Date.now();
    const self = this.sampleOf(process.pid);
    const rows: ProcessRow[] = [
      { name: 'continuum-supervisor', id: 'supervisor', pid: process.pid, environment: null, state: this.shuttingDown ? 'stopping' : 'running', restarts: 0, uptimeMs: Math.round(process.uptime() * 1000), rssBytes: self?.rssBytes ?? null, cpuPercent: self?.cpuPercent ?? null, cpuSeconds: self?.cpuSeconds ?? null, sessions: null, reason: null },
    ];
    for (const c of this.children.values()) {
      const s = c.pid ? this.sampleOf(c.pid) : undefined;
      rows.push({
        name: c.spec.name,
        id: c.spec.id,
        pid: c.pid,
        environment: c.spec.environment ?? null,
        state: c.state,
        restarts: c.restarts,
        uptimeMs: c.pid ? now - c.startedAt : 0,
        rssBytes: s?.rssBytes ?? null,
        cpuPercent: s?.cpuPercent ?? null,
        cpuSeconds: s?.cpuSeconds ?? null,
        sessions: c.spec.role === 'executor' ? counts[c.spec.id] ?? 0 : null,
        reason: c.reason,
        ...(this.sandboxRow(c) ? { sandbox: this.sandboxRow(c) } : {}),
      });
    }
    return rows;
  }

  /** Warm standby processes, one per executor replica that has one ready. */
  standbyTable(): ProcessRow[] {
    return [...this.children.values()].flatMap((c) => {
      const pid = c.standbyPid;
      if (pid === null) return [];
      const st = this.sampleOf(pid);
      return [{ name: c.spec.name, id: `${c.spec.id}.standby`, pid, environment: c.spec.environment ?? null, state: 'standby', restarts: 0, uptimeMs: 0, rssBytes: st?.rssBytes ?? null, cpuPercent: st?.cpuPercent ?? null, cpuSeconds: st?.cpuSeconds ?? null, sessions: null, reason: null }];
    });
  }

  /** Stops the edge and executors, then the session daemon; within the children's shutdown times. */
  stop(): Promise<void> {
    this.shuttingDown ??= (async () => {
      clearInterval(this.heartbeatTimer);
      clearInterval(this.statsTimer);
      clearTimeout(this.standbyTimer);
      this.log('info', 'supervisor stopping');
      const all = [...this.children.values()];
      await Promise.all(all.filter((c) => c.spec.role !== 'session-daemon').map((c) => c.stop()));
      await Promise.all(all.filter((c) => c.spec.role === 'session-daemon').map((c) => c.stop()));
      this.log('info', 'supervisor stopped');
      this.logs.close();
      this.logs.audit?.close();
      for (const f of [this.paths.runtimeFile, this.paths.sessionSocket, ...all.filter((c) => c.spec.role === 'executor').map((c) => path.dirname(this.paths.executorSocket(c.spec.id))), ...all.filter((c) => c.spec.serves).map((c) => this.paths.serviceSocket(c.spec.id)), ...egressEnvironments(this.config).map((e) => path.dirname(this.paths.egressSocket(e)))]) {
        fs.rmSync(f, { force: true, recursive: true });
      }
    })();
    return this.shuttingDown;
  }
}
