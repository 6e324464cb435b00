// The edge's hot path: a client frame is checked, then forwarded to the bound session's
// executor as the same bytes; the executor's answer goes back to the client as it came.
// Only session.* methods are served here, with the session daemon's help.
import type WebSocket from 'ws';
import type { Frame } from '../../bus/frame-codec.js';
import { FrameKind, ResponseFlags } from '../../bus/frame-codec.js';
import type { TickCork } from '../../bus/tick-cork.js';
import type { Config } from '../../config/schema.js';
import { audit } from '../../logging/audit-line.js';
import { emitRecord } from '../../logging/child-log.js';
import { ContinuumError, toContinuumError } from '../../protocol/errors.js';
import { errorFrame, notificationFrame, parseRequest, sniffId, successFrame, type RequestId } from '../../protocol/jsonrpc.js';
import { lostReasonOf, lostError, replayFrame } from '../../protocol/ledger.js';
import type { ExecutorStatus } from '../../protocol/internal.js';
import type { MethodDescriptor } from '../../protocol/method.js';
import { commandList, commandStatus, FINAL_COMMAND_STATES, type LostReason } from '../../protocol/methods/command.js';
import { methodsByName } from '../../protocol/methods/index.js';
import type { ExecutorLink, ExecutorPool } from './executor-pool.js';
import { finishOf } from './ledger-answers.js';
import type { LedgerWriter } from './ledger-writer.js';
import { parseParams, type Binding, type SessionBinder } from './session-binder.js';

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
}

/** A ledgered request of this edge, from its accept until its final state is durable. */
interface Tracked {
  key: string;
  sessionId: string;
  requestId: string;
  /** Resends of the same string id, waiting for the answer. */
  waiters: { conn: ClientConnection; id: RequestId | null }[];
  /** The answer, once known: what a later resend gets until the ledger has it. */
  answer?: string | Buffer;
  /** When it was dispatched; its `start` is written only if it is still running a moment later. */
  dispatchedAt?: number;
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
}

/** Ledgered commands of an executor whose link dropped, waiting for the supervisor to say why it died. */
interface Dying {
  pid: number | null;
  entries: Inflight[];
  timer: NodeJS.Timeout;
  settled: Promise<void>;
  done: () => void;
}

const DYING_WAIT_MS = 2_000;
/**
 * A command still running this long after dispatch gets its `started` written; one that
 * finishes sooner goes from accepted to its final state in one write that carries its start
 * time. Half the ledger's writes for quick commands, at the cost of `started` showing late.
 */
const START_AFTER_MS = 25;

const SESSION_METHODS = new Set(['session.connect', 'session.join', 'session.info', 'session.close']);
const LEDGER_QUERIES = new Set([commandStatus.name, commandList.name]);
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
  private readonly outputCap: Map<string, number>;
  /** String-id requests of this edge not yet final in the ledger, by session + id. */
  private readonly open = new Map<string, Tracked>();
  /** Keys whose never-dispatched entry is being removed: a resend waits for that. */
  private readonly dropping = new Set<string>();
  private readonly dying = new Map<string, Dying>();
  private unstarted: Tracked[] = [];

  constructor(
    private readonly config: Config,
    private readonly pool: ExecutorPool,
    private readonly binder: SessionBinder,
    private readonly touch: (ids: string[]) => void,
    private readonly ledger: LedgerWriter | undefined,
  ) {
    this.outputCap = new Map(config.environments.map((e) => [e.name, e.ledger.outputBytes]));
    this.allowed = new Map(config.environments.map((e) => [e.name, new Set(e.commands)]));
    this.shellDefaultTimeout = new Map(config.environments.map((e) => [e.name, e.shell.defaultTimeoutMs]));
    setInterval(() => this.sweepDeadlines(), 250).unref();
    if (ledger) setInterval(() => this.recordStarts(), START_AFTER_MS).unref();
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
      this.reply(conn, errorFrame(id, new ContinuumError('METHOD_NOT_FOUND', `method "${request.method}" not found; system.commands lists the commands`)));
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
    if (this.ledger && !method.readOnly) this.admit(conn, binding, method, id, data, request.params);
    else this.dispatch(conn, binding, method, id, data, request.params, undefined);
  }

  /** Writes the ledger entry, then dispatches; a resent string id gets the first one's answer instead. */
  private admit(conn: ClientConnection, binding: Binding, method: MethodDescriptor, id: RequestId | null, data: Buffer, params: unknown): void {
    const scoped = typeof id === 'string';
    const requestId = scoped ? id : `#${conn.serial}.${++conn.seq}`;
    const key = `${binding.sessionId}\n${requestId}`;
    if (scoped) {
      const running = this.open.get(key);
      if (running) {
        if (running.answer !== undefined) this.replyRaw(conn, running.answer);
        else running.waiters.push({ conn, id });
        return;
      }
      if (this.dropping.has(key)) {
        this.reply(conn, errorFrame(id, new ContinuumError('EXECUTOR_UNAVAILABLE', `request ${requestId} is being cleared from the ledger after the session daemon restarted; nothing ran; retry shortly`, { retryable: true, retryAfterMs: 200 })));
        return;
      }
    }
    const tracked: Tracked = { key, sessionId: binding.sessionId, requestId, waiters: [] };
    if (scoped) this.open.set(key, tracked);
    conn.inflight++;
    const op = { op: 'accept' as const, s: binding.sessionId, r: requestId, scope: scoped ? ('request' as const) : ('connection' as const), env: binding.environment, m: method.name, ex: binding.executorId, at: Date.now() };
    this.ledger!.accept(op).then(
      (existing) => {
        conn.inflight--;
        if (existing === null) {
          this.dispatch(conn, binding, method, id, data, params, tracked);
          return;
        }
        this.open.delete(key);
        // Only an entry left open by an earlier edge run can be open and not ours; the session daemon closes those at hello.
        const frame = FINAL_COMMAND_STATES.has(existing.state)
          ? replayFrame(id, existing)
          : errorFrame(id, new ContinuumError('EXECUTOR_UNAVAILABLE', `request ${requestId} is still open in the ledger; ask command.status, or retry shortly`, { retryable: true, retryAfterMs: 500 }));
        this.answerAll(conn, tracked, frame);
        this.logCommand(binding, conn, id, method.name, 0, 'replayed', undefined, undefined);
      },
      (err: Error) => {
        conn.inflight--;
        this.open.delete(key);
        const e = new ContinuumError('EXECUTOR_UNAVAILABLE', `the command ledger is unavailable (${err.message}); nothing was run; retry shortly`, { retryable: true, retryAfterMs: 200 });
        this.answerAll(conn, tracked, errorFrame(id, e));
        this.drop(tracked);
      },
    );
  }

  private dispatch(conn: ClientConnection, binding: Binding, method: MethodDescriptor, id: RequestId | null, data: Buffer, params: unknown, tracked: Tracked | undefined): void {
    const tag = this.nextTag;
    this.nextTag = tag >= 0xffffffff ? 1 : tag + 1;
    const link = this.pool.send(binding.executorId, tag, binding.sessionId, data);
    if (!link) {
      const err = this.pool.unavailable(binding.executorId)!;
      if (tracked) {
        // Never dispatched, so never run: as if never sent, and a resend may run it.
        this.open.delete(tracked.key);
        this.answerAll(conn, tracked, errorFrame(id, err));
        this.drop(tracked);
      } else this.reply(conn, errorFrame(id, err));
      this.logCommand(binding, conn, id, method.name, 0, 'unavailable', err.rpcCode, link);
      return;
    }
    const now = Date.now();
    const p = params as { timeoutMs?: unknown } | undefined;
    const budget = method.name === 'shell.exec'
      ? typeof p?.timeoutMs === 'number' ? p.timeoutMs : this.shellDefaultTimeout.get(binding.environment) ?? this.config.limits.defaultTimeoutMs
      : this.config.limits.defaultTimeoutMs;
    conn.inflight++;
    this.inflight.set(tag, { conn, id, method: method.name, sessionId: binding.sessionId, environment: binding.environment, executorId: binding.executorId, start: now, deadline: now + budget + DEADLINE_GRACE_MS, tracked });
    this.touched.add(binding.sessionId);
    if (tracked) {
      tracked.dispatchedAt = now;
      this.unstarted.push(tracked);
    }
  }

  private recordStarts(): void {
    const due = this.unstarted;
    this.unstarted = [];
    for (const t of due) if (t.answer === undefined) void this.ledger!.record({ op: 'start', s: t.sessionId, r: t.requestId, at: t.dispatchedAt! });
  }

  private drop(tracked: Tracked): void {
    this.dropping.add(tracked.key);
    void this.ledger!.record({ op: 'drop', s: tracked.sessionId, r: tracked.requestId }).then(() => this.dropping.delete(tracked.key));
  }

  /** Sends `frame` to the requester and to every resend waiting on the same id (same id, same bytes). */
  private answerAll(conn: ClientConnection, tracked: Tracked, frame: string | Buffer): void {
    this.replyRaw(conn, frame);
    for (const w of tracked.waiters) this.replyRaw(w.conn, frame);
    tracked.waiters = [];
  }

  /** Records a final state; the key stays open (answered from memory) until the ledger has it. */
  private finish(tracked: Tracked, op: Parameters<LedgerWriter['record']>[0]): void {
    void this.ledger!.record(op).then(() => {
      if (this.open.get(tracked.key) === tracked) this.open.delete(tracked.key);
    });
  }

  onExecutorFrame(link: ExecutorLink, frame: Frame): void {
    if (frame.kind === FrameKind.Notify) {
      const entry = this.inflight.get(frame.tag);
      if (entry && entry.conn.ws.readyState !== CLOSED) entry.conn.ws.send(frame.payload, { binary: false });
      return;
    }
    if (frame.kind !== FrameKind.Response) return;
    const entry = this.inflight.get(frame.tag);
    link.inflight.delete(frame.tag);
    if (!entry) return;
    this.inflight.delete(frame.tag);
    entry.conn.inflight--;
    const isError = frame.payload[0] === ResponseFlags.Error;
    const body = frame.payload.subarray(1);
    const conn = entry.conn;
    if (conn.ws.readyState !== CLOSED) {
      // An executor's chunk often holds many answers for one connection: send them together.
      conn.cork.hold();
      conn.ws.send(body, { binary: false });
    }
    const tracked = entry.tracked;
    if (tracked) {
      for (const w of tracked.waiters) this.replyRaw(w.conn, body);
      tracked.waiters = [];
      tracked.answer = body;
      const at = Date.now();
      this.finish(tracked, finishOf({ s: tracked.sessionId, r: tracked.requestId, at, started: entry.start }, entry.method, entry.id, isError, body, this.outputCap.get(entry.environment) ?? 65_536));
    }
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

  onExecutorLost(link: ExecutorLink, tags: number[], error: ContinuumError): void {
    const lost = new ContinuumError('EXECUTOR_UNAVAILABLE', error.message, { ...error.data, ledger: 'lost' });
    for (const tag of tags) {
      const entry = this.inflight.get(tag);
      if (entry?.tracked) this.dyingOn(link, entry);
      this.fail(tag, entry?.tracked ? lost : error, 'unavailable', link);
    }
  }

  /**
   * Its executor died under a ledgered command: the command is lost. The reason (signal,
   * the supervisor's kill) comes with the supervisor's next status, a moment after the link drops.
   */
  private dyingOn(link: ExecutorLink, entry: Inflight): void {
    const id = link.status.id;
    let batch = this.dying.get(id);
    if (!batch) {
      const pid = link.servedPid;
      let done!: () => void;
      const settled = new Promise<void>((r) => (done = r));
      const timer = setTimeout(() => this.settleDying(id, { kind: 'link', signal: null, exitCode: null, detail: `the link to executor ${id} (pid ${pid}) dropped while it ran` }), DYING_WAIT_MS);
      batch = { pid, entries: [], timer, settled, done };
      this.dying.set(id, batch);
    }
    batch.entries.push(entry);
  }

  /** The supervisor's view of the executors: says why a dead one died. */
  onStatuses(statuses: ExecutorStatus[]): void {
    for (const s of statuses) {
      const batch = this.dying.get(s.id);
      if (batch && s.lastExit && s.lastExit.pid === batch.pid) this.settleDying(s.id, lostReasonOf(s.lastExit, `executor ${s.id}`));
    }
  }

  private settleDying(executorId: string, reason: LostReason): void {
    const batch = this.dying.get(executorId);
    if (!batch) return;
    this.dying.delete(executorId);
    clearTimeout(batch.timer);
    batch.done();
    const at = Date.now();
    for (const entry of batch.entries) {
      const tracked = entry.tracked!;
      const frame = errorFrame(entry.id, lostError({ requestId: tracked.requestId, method: entry.method, lostReason: reason }));
      for (const w of tracked.waiters) this.replyRaw(w.conn, frame);
      tracked.waiters = [];
      tracked.answer = frame;
      this.finish(tracked, { op: 'finish', s: tracked.sessionId, r: tracked.requestId, state: 'lost', at, started: entry.start, lost: reason });
    }
  }

  onExecutorUp(link: ExecutorLink, previousPid: number | null): void {
    if (previousPid === null || previousPid === link.status.pid) return;
    const executor = { id: link.status.id, pid: link.status.pid };
    for (const conn of this.boundTo.get(link.status.id) ?? []) {
      if (conn.ws.readyState === CLOSED || !conn.binding) continue;
      this.reply(conn, notificationFrame('session.executorRestarted', { sessionId: conn.binding.sessionId, executor }));
    }
  }

  onClose(conn: ClientConnection): void {
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
    entry.conn.inflight--;
    this.reply(entry.conn, errorFrame(entry.id, error));
    // A lost command is recorded once its reason is known (dyingOn); a timed-out one now.
    const tracked = entry.tracked;
    if (tracked && outcome === 'timeout') {
      const frame = errorFrame(entry.id, error);
      for (const w of tracked.waiters) this.replyRaw(w.conn, frame);
      tracked.waiters = [];
      tracked.answer = frame;
      this.finish(tracked, { op: 'finish', s: tracked.sessionId, r: tracked.requestId, state: 'failed', at: Date.now(), started: entry.start, error: error.toRpc() });
    }
    this.logCommand(entry, entry.conn, entry.id, entry.method, Date.now() - entry.start, outcome, error.rpcCode, link);
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
      this.sessionEvent(binding, 'session closed', { event: 'session.closed', requestId: id, remote: conn.remote, tokenId: conn.tokenId });
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

  private replyRaw(conn: ClientConnection, frame: string | Buffer): void {
    if (conn.ws.readyState !== CLOSED) conn.ws.send(frame, { binary: false });
  }

  /** command.status / command.list: the session daemon's ledger, once what this edge knows has landed. */
  private serveLedgerQuery(conn: ClientConnection, binding: Binding, method: MethodDescriptor, id: RequestId | null, params: unknown): void {
    const task = async (): Promise<unknown> => {
      if (!this.ledger) throw new ContinuumError('METHOD_NOT_FOUND', `${method.name} is not served: the command ledger is turned off in this server's config`);
      // A command whose executor just died is recorded as lost within DYING_WAIT_MS: answer after that.
      await this.dying.get(binding.executorId)?.settled;
      // What this edge already answered is in the ledger before the ledger is read.
      await this.ledger.barrier();
      if (method.name === commandStatus.name) {
        const { requestId } = parseParams<{ requestId: string }>(method, params);
        const entry = await this.ledger.get(binding.sessionId, requestId);
        if (!entry) throw new ContinuumError('COMMAND_NOT_FOUND', `no request ${requestId} in the ledger of session ${binding.sessionId}: never accepted, or removed (session closed, retention)`);
        return entry;
      }
      const p = parseParams<{ since?: number; limit?: number } | undefined>(method, params);
      return this.ledger.list(binding.sessionId, p?.since ?? 0, p?.limit ?? 1_000);
    };
    task().then(
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
    audit(entry.environment, { time: Date.now(), env: entry.environment, tokenId: conn.tokenId, remote: conn.remote, sessionId: entry.sessionId, event: 'command', method, requestId: id, outcome, code: code ?? null, durationMs });
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
