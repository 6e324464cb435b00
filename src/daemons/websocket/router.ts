// The edge's hot path: a client frame is checked, then forwarded to the bound session's
// executor as the same bytes; the executor's answer goes back to the client as it came.
// Only session.* methods are served here, with the session daemon's help.
import { isUtf8 } from 'node:buffer';
import type WebSocket from 'ws';
import type { Frame } from '../../bus/frame-codec.js';
import { FrameKind, ResponseFlags } from '../../bus/frame-codec.js';
import type { TickCork } from '../../bus/tick-cork.js';
import type { Config } from '../../config/schema.js';
import { emitRecord } from '../../logging/child-log.js';
import { ContinuumError, toContinuumError } from '../../protocol/errors.js';
import { errorFrame, notificationFrame, parseRequest, sniffId, successFrame, type RequestId } from '../../protocol/jsonrpc.js';
import { methodsByName } from '../../protocol/methods/index.js';
import { Backpressure } from './backpressure.js';
import type { ExecutorLink, ExecutorPool } from './executor-pool.js';
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
  /** Its streamed output is paused until the client reads (see backpressure.ts). */
  paused: boolean;
}

const SESSION_METHODS = new Set(['session.connect', 'session.join', 'session.info', 'session.close']);
const DEADLINE_GRACE_MS = 5_000;
const CLOSED = 3;

export class Router {
  private nextTag = 1;
  private readonly inflight = new Map<number, Inflight>();
  /** executor id → connections bound to one of its sessions (for restart notices). */
  private readonly boundTo = new Map<string, Set<ClientConnection>>();
  private readonly touched = new Set<string>();
  private readonly allowed: Map<string, Set<string>>;
  private readonly shellDefaultTimeout: Map<string, number>;
  private readonly backpressure: Backpressure;

  constructor(private readonly config: Config, private readonly pool: ExecutorPool, private readonly binder: SessionBinder, private readonly touch: (ids: string[]) => void) {
    this.allowed = new Map(config.environments.map((e) => [e.name, new Set(e.commands)]));
    this.shellDefaultTimeout = new Map(config.environments.map((e) => [e.name, e.shell.defaultTimeoutMs]));
    this.backpressure = new Backpressure(config.limits, pool);
    setInterval(() => {
      this.sweepDeadlines();
      this.backpressure.sweep();
    }, 250).unref();
    // Touch often enough that an active session can't look idle to the expiry sweep.
    const shortestIdle = Math.min(...config.environments.map((e) => e.sessionIdleMs));
    setInterval(() => this.flushTouches(), Math.max(250, Math.min(5_000, Math.floor(shortestIdle / 4)))).unref();
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
    const tag = this.nextTag;
    this.nextTag = tag >= 0xffffffff ? 1 : tag + 1;
    const link = this.pool.send(binding.executorId, tag, binding.sessionId, data);
    if (!link) {
      const err = this.pool.unavailable(binding.executorId)!;
      this.reply(conn, errorFrame(id, err));
      this.logCommand(binding, id, method.name, 0, 'unavailable', err.rpcCode, link);
      return;
    }
    const now = Date.now();
    const params = request.params as { timeoutMs?: unknown } | undefined;
    const budget = method.name === 'shell.exec'
      ? typeof params?.timeoutMs === 'number' ? params.timeoutMs : this.shellDefaultTimeout.get(binding.environment) ?? this.config.limits.defaultTimeoutMs
      : this.config.limits.defaultTimeoutMs;
    conn.inflight++;
    this.inflight.set(tag, { conn, id, method: method.name, sessionId: binding.sessionId, environment: binding.environment, executorId: binding.executorId, start: now, deadline: now + budget + DEADLINE_GRACE_MS, paused: false });
    this.touched.add(binding.sessionId);
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
    let code: number | undefined;
    if (isError) {
      try {
        code = (JSON.parse(body.toString('utf8')) as { error?: { code?: number } }).error?.code;
      } catch {
        code = undefined;
      }
    }
    this.logCommand(entry, entry.id, entry.method, Date.now() - entry.start, isError ? 'error' : 'ok', code, link);
  }

  onExecutorLost(link: ExecutorLink, tags: number[], error: ContinuumError): void {
    for (const tag of tags) this.fail(tag, error, 'unavailable', link);
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
    // Answers for this connection's requests will find nobody; drop their entries now.
    for (const [tag, entry] of this.inflight) {
      if (entry.conn === conn) {
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
    this.logCommand(entry, entry.id, entry.method, Date.now() - entry.start, outcome, error.rpcCode, link);
  }

  private sweepDeadlines(): void {
    const now = Date.now();
    for (const [tag, entry] of this.inflight) {
      if (entry.deadline <= now) {
        this.pool.links.get(entry.executorId)?.inflight.delete(tag);
        this.fail(tag, new ContinuumError('TIMEOUT', `${entry.method} got no answer from executor ${entry.executorId} in ${entry.deadline - entry.start} ms`, { retryable: true }), 'timeout');
      }
    }
  }

  private flushTouches(): void {
    // A session with a command still running is active, however long the command takes.
    for (const entry of this.inflight.values()) this.touched.add(entry.sessionId);
    if (this.touched.size === 0) return;
    const ids = [...this.touched];
    this.touched.clear();
    this.touch(ids);
  }

  private serveSessionMethod(conn: ClientConnection, name: string, id: RequestId | null, params: unknown): void {
    conn.backlog = [];
    const start = Date.now();
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
      this.unbind(conn);
      this.closeBindings(binding.sessionId);
      return result;
    };
    task()
      .then(
        (result) => this.reply(conn, successFrame(id, result)),
        (err) => {
          const e = toContinuumError(err);
          // A link error (daemon restarting) is a retryable unavailability to the client.
          const wire = e.rpcCode === undefined || e.code === 'CONTINUUM_INTERNAL' && e.data?.retryable
            ? new ContinuumError('EXECUTOR_UNAVAILABLE', `the session daemon is unavailable (${e.message}); retry shortly`, { retryable: true, retryAfterMs: 200 })
            : e;
          this.reply(conn, errorFrame(id, wire));
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

  private sessionEvent(binding: Binding, msg: string, fields: Record<string, unknown>): void {
    emitRecord({ time: Date.now(), level: 30, msg, pid: process.pid, env: binding.environment, sessionId: binding.sessionId, ...fields }, binding.environment);
  }

  private logCommand(entry: { sessionId: string; environment: string }, id: RequestId | null, method: string, durationMs: number, outcome: string, code: number | undefined, link: ExecutorLink | undefined): void {
    const record: Record<string, unknown> = {
      time: Date.now(),
      level: outcome === 'ok' ? 30 : 40,
      msg: 'command',
      pid: link?.connectedPid ?? link?.status.pid ?? undefined,
      env: entry.environment,
      sessionId: entry.sessionId,
      requestId: id,
      method,
      durationMs,
      outcome,
    };
    if (code !== undefined) record.code = code;
    emitRecord(record as never, entry.environment);
  }
}
