// The edge's hot path: a client frame is checked, then forwarded to the bound session's
// executor as the same bytes; the executor's answer goes back to the client as it came.
// Only session.* and command.* (the ledger) are served here, with the session daemon's help;
// other commands are dispatched once their ledger entry is durable (ledger-gate.ts).
import { isUtf8 } from 'node:buffer';
import type WebSocket from 'ws';
import type { Frame } from '../../bus/frame-codec.js';
import { FrameKind, ResponseFlags } from '../../bus/frame-codec.js';
import type { TickCork } from '../../bus/tick-cork.js';
import type { Config } from '../../config/schema.js';
import { audit, logAndAuditLine } from '../../logging/audit-line.js';
import { emitRecord } from '../../logging/child-log.js';
import { ContinuumError, toContinuumError } from '../../protocol/errors.js';
import { errorFrame, notificationFrame, parseRequest, sniffId, successFrame, type RequestId } from '../../protocol/jsonrpc.js';
import type { ExecutorStatus, ExitRecord } from '../../protocol/internal.js';
import type { MethodDescriptor } from '../../protocol/method.js';
import { commandList, commandStatus } from '../../protocol/methods/command.js';
import { BROWSER_DEFAULT_TIMEOUT_MS, methodsByName } from '../../protocol/methods/index.js';
import { Backpressure } from './backpressure.js';
import type { ExecutorLink, ExecutorPool } from './executor-pool.js';
import { LedgerGate, type Admission, type EdgeLedgerWriter, type Tracked } from './ledger-gate.js';
import type { EdgeMetrics } from './metrics.js';
import type { Binding, SessionBinder } from './session-binder.js';

export interface ClientConnection {
  ws: WebSocket;
  /** Corks the TCP socket under `ws` while a tick's answers are written (one syscall). */
  cork: TickCork;
  grants: ReadonlySet<string>;
  remote: string;
  tokenId: string;
  binding: Binding | undefined;
  inflight: number;
  /** Frames that arrived while a session.* call was being served, in order. */
  backlog: { data: Buffer; isBinary: boolean }[] | undefined;
  /** Unique across edge runs: the ledger's scope for this connection's numeric ids. */
  serial: string;
  seq: number;
  /** Commands waiting for their ledger entry, and those behind them, in the order sent. */
  ordered: Admission[];
  /** The session whose "who" fields `auditWho` holds (JSON members, ready for a command line). */
  auditSession: string | undefined;
  auditWho: string;
}

interface Inflight {
  conn: ClientConnection;
  id: RequestId | null;
  method: string;
  sessionId: string;
  environment: string;
  executorId: string;
  start: number;
  deadline: number;
  tracked: Tracked | undefined;
  /** Its streamed output is paused until the client reads (see backpressure.ts). */
  paused: boolean;
}

/** How long in-flight requests of a dead executor wait for the supervisor to say why it died. */
const REASON_WAIT_MS = 250;

interface AwaitingExit {
  link: ExecutorLink;
  tags: number[];
  error: ContinuumError;
  deadPid: number;
  timer: NodeJS.Timeout;
}

/** The -32003 of a request lost with its executor, saying how the process ended. */
function withExitReason(error: ContinuumError, exit: ExitRecord): ContinuumError {
  const reason = exit.oom ?? exit.killedFor ?? (exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`);
  return new ContinuumError('EXECUTOR_UNAVAILABLE', `${error.message} (${reason})`, { ...error.data, reason, pid: exit.pid });
}

/** Request bytes an executor may hold at once: 1/16 of its memory limit, 64 MiB without one. */
const DEFAULT_INFLIGHT_BUDGET = 64 * 1024 * 1024;
const MIN_INFLIGHT_BUDGET = 8 * 1024 * 1024;

const SESSION_METHODS = new Set(['session.connect', 'session.join', 'session.info', 'session.close']);
const LEDGER_QUERIES = new Set([commandStatus.name, commandList.name]);
const DEADLINE_GRACE_MS = 5_000;
const CLOSED = 3;

/** A request's own `timeoutMs` (shell.exec, browser.*), if it gives one. */
function timeoutOf(params: unknown): number | undefined {
  const t = (params as { timeoutMs?: unknown } | null | undefined)?.timeoutMs;
  return typeof t === 'number' ? t : undefined;
}

export class Router {
  private nextTag = 1;
  private readonly inflight = new Map<number, Inflight>();
  private readonly awaitingExit = new Set<AwaitingExit>();
  /** executor id → connections bound to one of its sessions (for restart notices). */
  private readonly boundTo = new Map<string, Set<ClientConnection>>();
  private readonly touched = new Set<string>();
  /** Commands routed per session since the last touch (the dashboard's "commands run"). */
  private readonly commandCounts = new Map<string, number>();
  private readonly allowed: Map<string, Set<string>>;
  private readonly inflightBudget: Map<string, number>;
  private readonly shellDefaultTimeout: Map<string, number>;
  /** The command ledger around dispatch; undefined when it is turned off. */
  private readonly ledger: LedgerGate | undefined;
  private readonly backpressure: Backpressure;

  constructor(
    private readonly config: Config,
    private readonly pool: ExecutorPool,
    private readonly binder: SessionBinder,
    private readonly touch: (ids: string[], commands: Record<string, number>) => void,
    private readonly metrics: EdgeMetrics,
    writer: EdgeLedgerWriter | undefined,
  ) {
    const hooks = {
      send: (conn: ClientConnection, frame: string | Buffer) => this.replyRaw(conn, frame),
      log: (binding: Binding, conn: ClientConnection, id: RequestId | null, method: string, outcome: string, code: number | undefined) => this.logCommand(binding, conn, id, method, 0, outcome, code, undefined),
      admitted: (a: Admission, tracked: Tracked | undefined) => {
        a.tracked = tracked;
        a.ready = true;
        this.runReady(a.conn);
      },
    };
    this.ledger = writer ? new LedgerGate(config, writer, hooks) : undefined;
    this.allowed = new Map(config.environments.map((e) => [e.name, new Set(e.commands)]));
    this.inflightBudget = new Map(config.environments.map((e) => [e.name, e.sandbox.memory ? Math.max(MIN_INFLIGHT_BUDGET, Math.floor(e.sandbox.memory / 16)) : DEFAULT_INFLIGHT_BUDGET]));
    this.shellDefaultTimeout = new Map(config.environments.map((e) => [e.name, e.shell.defaultTimeoutMs]));
    this.backpressure = new Backpressure(config.limits, pool);
    setInterval(() => {
      this.sweepInflight();
      this.backpressure.sweep();
    }, 250).unref();
    // Touch often enough that an active session can't look idle to the expiry sweep, and that
    // the dashboard's "last active" and "commands" are at most a second behind.
    const shortestIdle = Math.min(...config.environments.map((e) => e.sessionIdleMs));
    setInterval(() => this.flushTouches(), Math.max(250, Math.min(1_000, Math.floor(shortestIdle / 4)))).unref();
  }

  onMessage(conn: ClientConnection, data: Buffer, isBinary: boolean): void {
    if (conn.backlog) {
      if (conn.backlog.length >= this.config.limits.maxInFlightPerConnection) {
        const id = isBinary ? null : sniffId(data.subarray(0, 4096).toString('utf8'));
        this.reply(conn, errorFrame(id, new ContinuumError('OVERLOADED', 'too many requests sent while the session was being bound; wait for the session.connect answer', { retryAfterMs: 50 })));
        return;
      }
      conn.backlog.push({ data, isBinary });
      return;
    }
    if (isBinary) {
      this.reply(conn, errorFrame(null, new ContinuumError('INVALID_REQUEST', 'invalid request: binary frames are not accepted; send JSON-RPC as text frames')));
      return;
    }
    if (data.length > this.config.limits.frameSoftBytes) {
      const id = sniffId(data.subarray(0, 4096).toString('utf8'));
      this.reply(conn, errorFrame(id, new ContinuumError('PAYLOAD_TOO_LARGE', `payload too large: ${data.length} bytes is over the ${this.config.limits.frameSoftBytes}-byte limit; send less per request`, { limit: this.config.limits.frameSoftBytes })));
      return;
    }
    // ws leaves UTF-8 to us (skipUTF8Validation), so a bad frame costs an error, not the connection.
    if (!isUtf8(data)) {
      this.reply(conn, errorFrame(sniffId(data.subarray(0, 4096).toString('utf8')), new ContinuumError('PARSE_ERROR', 'parse error: the frame is not valid UTF-8; send JSON-RPC as UTF-8 text')));
      return;
    }
    const parsed = parseRequest(data.toString('utf8'));
    if (!parsed.ok) {
      this.reply(conn, errorFrame(parsed.id, parsed.error));
      return;
    }
    // Notifications (no id) get no answer by definition; the protocol has none for clients.
    if (parsed.isNotification) return;
    const { request, id } = parsed;
    const method = methodsByName.get(request.method);
    if (!method) {
      this.reply(conn, errorFrame(id, new ContinuumError('METHOD_NOT_FOUND', `method "${request.method.slice(0, 100)}" not found; system.commands lists the commands`)));
      return;
    }
    if (SESSION_METHODS.has(method.name)) {
      this.serveSessionMethod(conn, method.name, id, request.params);
      return;
    }
    const binding = conn.binding;
    if (!binding) {
      this.reply(conn, errorFrame(id, new ContinuumError('NO_SESSION', 'no session is bound to this connection; call session.connect or session.join first')));
      return;
    }
    if (!this.allowed.get(binding.environment)?.has(method.namespace)) {
      this.reply(conn, errorFrame(id, new ContinuumError('FORBIDDEN', `the ${binding.environment} environment's policy does not allow ${method.namespace}.* commands`)));
      return;
    }
    // A client that doesn't read its answers gets no more work: the answers would pile up here.
    if (conn.ws.bufferedAmount > this.config.limits.frameHardBytes) {
      this.reply(conn, errorFrame(id, new ContinuumError('OVERLOADED', `${conn.ws.bufferedAmount} bytes of answers are waiting for this client to read them; read them before sending more`, { retryAfterMs: 200 })));
      return;
    }
    if (conn.inflight >= this.config.limits.maxInFlightPerConnection) {
      this.reply(conn, errorFrame(id, new ContinuumError('OVERLOADED', `too many requests in flight on this connection (limit ${this.config.limits.maxInFlightPerConnection}); wait for answers before sending more`, { retryAfterMs: 50, limit: this.config.limits.maxInFlightPerConnection })));
      return;
    }
    if (LEDGER_QUERIES.has(method.name)) {
      this.serveLedgerQuery(conn, binding, method, id, request.params);
      return;
    }
    const ledgered = this.ledger !== undefined && !method.readOnly;
    // Of the params only the timeout is needed later: a queued command keeps no parsed object alive.
    const timeoutMs = timeoutOf(request.params);
    if (!ledgered && conn.ordered.length === 0) return this.dispatch(conn, binding, method, id, data, timeoutMs, undefined);
    // Behind this connection's commands still waiting for their ledger entry, or waiting for
    // its own: sent order is run order. A resent string id is answered by the gate.
    const a: Admission = { conn, binding, method, id, data, timeoutMs, ready: !ledgered, ledgered, tracked: undefined };
    conn.ordered.push(a);
    conn.inflight++;
    if (ledgered) this.ledger!.admit(a);
  }

  /** Dispatches the connection's queued commands whose turn has come, in the order sent. */
  private runReady(conn: ClientConnection): void {
    while (conn.ordered[0]?.ready) {
      const a = conn.ordered.shift()!;
      conn.inflight--;
      if (!a.ledgered || a.tracked) this.dispatch(conn, a.binding, a.method, a.id, a.data, a.timeoutMs, a.tracked);
    }
  }

  private dispatch(conn: ClientConnection, binding: Binding, method: MethodDescriptor, id: RequestId | null, data: Buffer, timeoutMs: number | undefined, tracked: Tracked | undefined): void {
    const tag = this.nextTag;
    this.nextTag = tag >= 0xffffffff ? 1 : tag + 1;
    // A system daemon's namespace (render.*, browser.*) goes to that daemon, the rest to the session's executor.
    const target = method.host === 'executor' ? binding.executorId : method.host;
    // An executor must not be handed more request bytes than its memory can hold (many clients
    // each sending big frames would otherwise have the kernel or V8 kill it): past its budget,
    // a request waits at the client (-32005, retryable) rather than in the executor.
    const held = this.pool.links.get(target)?.inflight.bytes ?? 0;
    const allowance = this.inflightBudget.get(binding.environment) ?? DEFAULT_INFLIGHT_BUDGET;
    if (held > 0 && held + data.length > allowance) {
      const err = new ContinuumError('OVERLOADED', `executor ${target} already holds ${held} bytes of requests (its budget is ${allowance}); retry shortly`, { retryAfterMs: 100, limit: allowance });
      if (tracked) this.ledger!.notDispatched(conn, tracked, errorFrame(id, err));
      else this.reply(conn, errorFrame(id, err));
      this.logCommand(binding, conn, id, method.name, 0, 'overloaded', err.rpcCode, undefined);
      return;
    }
    const link = this.pool.send(target, tag, binding.sessionId, binding.environment, data);
    if (!link) {
      const err = this.pool.unavailable(target)!;
      if (tracked) this.ledger!.notDispatched(conn, tracked, errorFrame(id, err));
      else this.reply(conn, errorFrame(id, err));
      this.logCommand(binding, conn, id, method.name, 0, 'unavailable', err.rpcCode, link);
      return;
    }
    const now = Date.now();
    const budget = method.name === 'shell.exec'
      ? timeoutMs ?? this.shellDefaultTimeout.get(binding.environment) ?? this.config.limits.defaultTimeoutMs
      : method.host === 'browser-daemon' // the daemon answers -32004 itself, at the call's own deadline
        ? Math.max(timeoutMs ?? BROWSER_DEFAULT_TIMEOUT_MS, this.config.limits.defaultTimeoutMs)
        : this.config.limits.defaultTimeoutMs;
    conn.inflight++;
    this.inflight.set(tag, { conn, id, method: method.name, sessionId: binding.sessionId, environment: binding.environment, executorId: target, start: now, deadline: now + budget + DEADLINE_GRACE_MS, tracked, paused: false });
    this.commandCounts.set(binding.sessionId, (this.commandCounts.get(binding.sessionId) ?? 0) + 1);
    if (tracked) this.ledger!.dispatched(tracked, now);
  }

  onExecutorFrame(link: ExecutorLink, frame: Frame): void {
    if (frame.kind === FrameKind.Notify) {
      const entry = this.inflight.get(frame.tag);
      if (entry && entry.conn.ws.readyState !== CLOSED) {
        entry.conn.ws.send(frame.payload, { binary: false });
        this.backpressure.afterNotify(frame.tag, entry);
      }
      return;
    }
    if (frame.kind !== FrameKind.Response) return;
    const entry = this.inflight.get(frame.tag);
    link.inflight.delete(frame.tag);
    if (!entry) return;
    this.inflight.delete(frame.tag);
    this.backpressure.forget(frame.tag, entry);
    entry.conn.inflight--;
    const isError = frame.payload[0] === ResponseFlags.Error;
    const body = frame.payload.subarray(1);
    const conn = entry.conn;
    if (conn.ws.readyState !== CLOSED) {
      // An executor's chunk often holds many answers for one connection: send them together.
      conn.cork.hold();
      conn.ws.send(body, { binary: false });
      this.backpressure.afterAnswer(conn);
    }
    if (entry.tracked) this.ledger!.answered(entry as Inflight & { tracked: Tracked }, isError, body);
    let code: number | undefined;
    if (isError) {
      try {
        code = (JSON.parse(body.toString('utf8')) as { error?: { code?: number } }).error?.code;
      } catch {
        code = undefined;
      }
    }
    this.logCommand(entry, conn, entry.id, entry.method, Date.now() - entry.start, isError ? 'error' : 'ok', code, link);
  }

  /**
   * The link to an executor dropped with these requests in flight. They are answered -32003
   * once the supervisor says how that process ended (it usually knows within a few ms), so
   * `data.reason` can say e.g. "memory limit (256 MiB)"; after REASON_WAIT_MS without news,
   * without a reason.
   */
  onExecutorLost(link: ExecutorLink, tags: number[], error: ContinuumError, deadPid: number | null): void {
    if (tags.length === 0) return;
    if (deadPid === null || link.status.service) return this.failLost(link, tags, error);
    const known = link.status.lastExit?.pid === deadPid ? link.status.lastExit : undefined;
    if (known) return this.failLost(link, tags, withExitReason(error, known));
    const waiting = { link, tags, error, deadPid, timer: setTimeout(() => this.settleLost(waiting, undefined), REASON_WAIT_MS) };
    this.awaitingExit.add(waiting);
  }

  private settleLost(waiting: AwaitingExit, exit: ExitRecord | undefined): void {
    if (!this.awaitingExit.delete(waiting)) return;
    clearTimeout(waiting.timer);
    this.failLost(waiting.link, waiting.tags, exit ? withExitReason(waiting.error, exit) : waiting.error);
  }

  private failLost(link: ExecutorLink, tags: number[], error: ContinuumError): void {
    const lost = new ContinuumError('EXECUTOR_UNAVAILABLE', error.message, { ...error.data, ledger: 'lost' });
    for (const tag of tags) {
      const entry = this.inflight.get(tag);
      if (entry?.tracked) this.ledger!.lost(link, entry as Inflight & { tracked: Tracked });
      this.fail(tag, entry?.tracked ? lost : error, 'unavailable', link);
    }
  }

  /** The supervisor's view of the executors: says why a dead one died. */
  onStatuses(statuses: ExecutorStatus[]): void {
    for (const waiting of this.awaitingExit) {
      const exit = statuses.find((s) => s.id === waiting.link.status.id)?.lastExit;
      if (exit?.pid === waiting.deadPid) this.settleLost(waiting, exit);
    }
    this.ledger?.onStatuses(statuses);
  }

  onExecutorUp(link: ExecutorLink, previousPid: number | null): void {
    if (previousPid === null || previousPid === link.status.pid) return;
    const executor = { id: link.status.id, pid: link.status.pid };
    for (const conn of this.boundTo.get(link.status.id) ?? []) {
      if (conn.ws.readyState === CLOSED || !conn.binding) continue;
      this.reply(conn, notificationFrame('session.executorRestarted', { sessionId: conn.binding.sessionId, executor }));
    }
  }

  /** The client's socket took all it was given (it is reading). */
  onDrain(conn: ClientConnection): void {
    this.backpressure.onDrain(conn);
  }

  onClose(conn: ClientConnection): void {
    this.backpressure.onClose(conn);
    this.unbind(conn);
    // Answers for this connection's requests will find nobody; drop their entries now,
    // except ledgered ones: their answers are recorded, for a resend or command.status.
    for (const [tag, entry] of this.inflight) {
      if (entry.conn === conn && !entry.tracked) {
        this.inflight.delete(tag);
        this.pool.links.get(entry.executorId)?.inflight.delete(tag);
      }
    }
  }

  private fail(tag: number, error: ContinuumError, outcome: string, link?: ExecutorLink): void {
    const entry = this.inflight.get(tag);
    if (!entry) return;
    this.inflight.delete(tag);
    this.backpressure.forget(tag, entry);
    entry.conn.inflight--;
    this.reply(entry.conn, errorFrame(entry.id, error));
    // A lost command is recorded once its reason is known (LedgerGate.lost); a timed-out one now.
    if (entry.tracked && outcome === 'timeout') this.ledger!.timedOut(entry as Inflight & { tracked: Tracked }, error);
    this.logCommand(entry, entry.conn, entry.id, entry.method, Date.now() - entry.start, outcome, error.rpcCode, link);
  }

  /** Deadlines passed (-32004), and ledgered commands running long enough for their `start`. */
  private sweepInflight(): void {
    const now = Date.now();
    for (const [tag, entry] of this.inflight) {
      if (entry.tracked) this.ledger!.stillRunning(entry.tracked, now);
      if (entry.deadline <= now) {
        this.pool.links.get(entry.executorId)?.inflight.delete(tag);
        this.fail(tag, new ContinuumError('TIMEOUT', `${entry.method} got no answer from executor ${entry.executorId} in ${entry.deadline - entry.start} ms`, { retryable: true }), 'timeout');
      }
    }
  }

  private flushTouches(): void {
    // A session with a command still running is active, however long the command takes.
    for (const entry of this.inflight.values()) this.touched.add(entry.sessionId);
    for (const id of this.commandCounts.keys()) this.touched.add(id);
    if (this.touched.size === 0) return;
    const ids = [...this.touched];
    const commands = Object.fromEntries(this.commandCounts);
    this.touched.clear();
    this.commandCounts.clear();
    this.touch(ids, commands);
  }

  /** environment → sessions that have at least one connection bound now. */
  boundSessions(): Map<string, number> {
    const sessions = new Map<string, string>();
    for (const set of this.boundTo.values()) for (const conn of set) if (conn.binding) sessions.set(conn.binding.sessionId, conn.binding.environment);
    const out = new Map<string, number>();
    for (const env of sessions.values()) out.set(env, (out.get(env) ?? 0) + 1);
    return out;
  }

  private serveSessionMethod(conn: ClientConnection, name: string, id: RequestId | null, params: unknown): void {
    conn.backlog = [];
    const start = Date.now();
    const boundBefore = conn.binding?.environment ?? '';
    const task = async (): Promise<unknown> => {
      if (name === 'session.connect' || name === 'session.join') {
        const { result, binding } = name === 'session.connect' ? await this.binder.connect(params, conn.grants) : await this.binder.join(params, conn.grants);
        if (conn.ws.readyState === CLOSED) return result; // gone while we asked: bind nothing
        this.bind(conn, binding);
        this.sessionEvent(binding, `session ${result.action}`, { event: `session.${result.action}`, requestId: id, executorId: binding.executorId, remote: conn.remote, tokenId: conn.tokenId });
        return result;
      }
      const binding = conn.binding;
      if (!binding) throw new ContinuumError('NO_SESSION', 'no session is bound to this connection; call session.connect or session.join first');
      if (name === 'session.info') return this.binder.info(params, binding);
      const result = await this.binder.close(params, binding);
      // The session daemon logs the close itself; the audit needs who asked.
      audit(binding.environment, { time: Date.now(), env: binding.environment, tokenId: conn.tokenId, remote: conn.remote, sessionId: binding.sessionId, event: 'session.closed', requestId: id, outcome: 'ok' });
      this.unbind(conn);
      this.closeBindings(binding.sessionId);
      return result;
    };
    task()
      .then(
        (result) => {
          this.reply(conn, successFrame(id, result));
          this.metrics.observe(conn.binding?.environment ?? boundBefore, name, 'ok', Date.now() - start);
        },
        (err) => {
          const e = toContinuumError(err);
          // A link error (daemon restarting) is a retryable unavailability to the client.
          const wire = e.rpcCode === undefined || e.code === 'CONTINUUM_INTERNAL' && e.data?.retryable
            ? new ContinuumError('EXECUTOR_UNAVAILABLE', `the session daemon is unavailable (${e.message}); retry shortly`, { retryable: true, retryAfterMs: 200 })
            : e;
          this.reply(conn, errorFrame(id, wire));
          this.metrics.observe(conn.binding?.environment ?? boundBefore, name, 'error', Date.now() - start);
          emitRecord({ time: Date.now(), level: 30, msg: 'session call failed', pid: process.pid, component: 'websocket-daemon', method: name, requestId: id, durationMs: Date.now() - start, outcome: 'error', code: wire.rpcCode, remote: conn.remote }, 'server');
        },
      )
      .finally(() => {
        const backlog = conn.ws.readyState === CLOSED ? [] : conn.backlog ?? [];
        conn.backlog = undefined;
        for (const { data, isBinary } of backlog) this.onMessage(conn, data, isBinary);
      });
  }

  private bind(conn: ClientConnection, binding: Binding): void {
    this.unbind(conn);
    conn.binding = binding;
    let set = this.boundTo.get(binding.executorId);
    if (!set) this.boundTo.set(binding.executorId, (set = new Set()));
    set.add(conn);
  }

  private unbind(conn: ClientConnection): void {
    if (!conn.binding) return;
    this.boundTo.get(conn.binding.executorId)?.delete(conn);
    conn.binding = undefined;
  }

  /** Other connections bound to a closed session are unbound too: their next command gets -32012. */
  private closeBindings(sessionId: string): void {
    for (const set of this.boundTo.values()) {
      for (const conn of set) if (conn.binding?.sessionId === sessionId) this.unbind(conn);
    }
  }

  private reply(conn: ClientConnection, text: string): void {
    if (conn.ws.readyState !== CLOSED) conn.ws.send(text);
  }

  private replyRaw(conn: ClientConnection, frame: string | Buffer): void {
    if (conn.ws.readyState !== CLOSED) conn.ws.send(frame, { binary: false });
  }

  /** command.status / command.list: the session daemon's ledger, once what this edge knows has landed. */
  private serveLedgerQuery(conn: ClientConnection, binding: Binding, method: MethodDescriptor, id: RequestId | null, params: unknown): void {
    const answer = this.ledger
      ? this.ledger.query(binding, method, params)
      : Promise.reject(new ContinuumError('METHOD_NOT_FOUND', `${method.name} is not served: the command ledger is turned off in this server's config`));
    answer.then(
      (result) => this.reply(conn, successFrame(id, result)),
      (err) => {
        const e = toContinuumError(err);
        const wire = e.rpcCode === undefined || e.code === 'CONTINUUM_INTERNAL' ? new ContinuumError('EXECUTOR_UNAVAILABLE', `the ledger is unavailable (${e.message}); retry shortly`, { retryable: true, retryAfterMs: 200 }) : e;
        this.reply(conn, errorFrame(id, wire));
      },
    );
  }

  private sessionEvent(binding: Binding, msg: string, fields: Record<string, unknown>): void {
    emitRecord({ time: Date.now(), level: 30, msg, pid: process.pid, env: binding.environment, sessionId: binding.sessionId, ...fields }, binding.environment);
    audit(binding.environment, { time: Date.now(), env: binding.environment, tokenId: fields.tokenId, remote: fields.remote, sessionId: binding.sessionId, event: fields.event, requestId: fields.requestId ?? null, outcome: 'ok' });
  }

  private logCommand(entry: { sessionId: string; environment: string }, conn: ClientConnection, id: RequestId | null, method: string, durationMs: number, outcome: string, code: number | undefined, link: ExecutorLink | undefined): void {
    // The environment's log line and its audit record in one (who, what, when, how it ended),
    // written as text: one per command, and the object JSON.stringify needed for it was a sixth
    // of what the edge allocated per request. `method` is a registry name and `outcome` one of
    // ours (nothing to escape); who asked is the same for a connection's session, so kept.
    if (conn.auditSession !== entry.sessionId) {
      conn.auditSession = entry.sessionId;
      conn.auditWho = `"env":${JSON.stringify(entry.environment)},"tokenId":${JSON.stringify(conn.tokenId)},"remote":${JSON.stringify(conn.remote)},"sessionId":${JSON.stringify(entry.sessionId)}`;
    }
    const pid = link?.connectedPid ?? link?.status.pid;
    logAndAuditLine(
      entry.environment,
      `{"time":${Date.now()},"level":${outcome === 'ok' ? 30 : 40},"msg":"command",${pid === undefined ? '' : `"pid":${pid},`}${conn.auditWho},"event":"command","method":"${method}","requestId":${JSON.stringify(id)},"outcome":"${outcome}","code":${code ?? null},"durationMs":${durationMs}}`,
    );
    this.metrics.observe(entry.environment, method, outcome, durationMs);
  }
}
