// The TypeScript SDK: a typed JSON-RPC client over WebSocket that reconnects with jittered
// backoff and rejoins its session by itself. Requests pending when the connection breaks
// are settled from the server's command ledger: after the rejoin each is sent again with
// the same id, and the ledger answers with the recorded result, waits on the running
// command, reports it lost, or (never received) runs it. Requests made while it is
// reconnecting wait for it, within their deadline.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { ContinuumError, isContinuumError } from '../protocol/errors.js';
import { lostError } from '../protocol/ledger.js';
import type { RpcFailure, RpcNotification, RpcSuccess } from '../protocol/jsonrpc.js';
import type { ParamsOf, ResultOf } from '../protocol/method.js';
import * as m from '../protocol/methods/index.js';
import { backoffDelay } from './backoff.js';

export interface ReconnectOptions {
  initialMs?: number;
  maxMs?: number;
  /** Give up after this many failed attempts in a row (default: never). */
  maxAttempts?: number;
}

export interface ConnectOptions {
  url: string;
  token: string;
  /** Environment of the session; not needed when joining by sessionId. */
  environment?: string;
  sessionId?: string;
  mode?: m.SessionMode;
  label?: string;
  reconnect?: boolean | ReconnectOptions;
  /** Deadline of a request unless the call sets its own (default 60 s). */
  requestTimeoutMs?: number;
  /** Extra headers for the upgrade (e.g. Origin in tests). */
  headers?: Record<string, string>;
}

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  onNotification?: (method: string, params: unknown) => void;
}

export interface ExecOptions extends Omit<ParamsOf<typeof m.shellExec>, 'command' | 'stream'> {
  /** Called with output as it arrives (turns streaming on). */
  onOutput?: (stream: 'stdout' | 'stderr', data: string) => void;
  signal?: AbortSignal;
}

interface Pending {
  method: string;
  /** The request as sent: sent again, same id, after a reconnect. */
  frame: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  onNotification: ((method: string, params: unknown) => void) | undefined;
  cleanup: () => void;
}

export interface ClientEvents {
  executorRestarted: [{ sessionId: string; executor: { id: string; pid: number } }];
  disconnected: [ContinuumError];
  reconnecting: [{ attempt: number; delayMs: number }];
  reconnected: [m.SessionBindResult];
  error: [ContinuumError];
  closed: [];
}

const OPEN = 1;
/** The server bounds every shell.exec (environments' maxTimeoutMs ≤ 24 h); this is a backstop. */
const SHELL_CLIENT_DEADLINE_MS = 24 * 3600_000 + 60_000;

/**
 * A browser call with its own `timeoutMs` is answered -32004 by the daemon; the client waits
 * longer (a first call also starts Chromium), so that it doesn't give up first.
 */
function browserDeadline(options: { timeoutMs?: number | undefined }): RequestOptions | undefined {
  return options.timeoutMs === undefined ? undefined : { timeoutMs: options.timeoutMs + 30_000 };
}

export class ContinuumClient extends EventEmitter<ClientEvents> {
  private ws: WebSocket | undefined;
  private readonly pending = new Map<string, Pending>();
  private closedByUser = false;
  /** Settles when a reconnect loop ends; requests made meanwhile wait on it. */
  private ready: Promise<void> = Promise.resolve();
  private reconnecting = false;
  /** Aborted by close(): wakes whatever waits for a reconnect. */
  private readonly closing = new AbortController();
  private session_: m.SessionBindResult | undefined;

  private constructor(private readonly opts: ConnectOptions) {
    super();
  }

  static async connect(opts: ConnectOptions): Promise<ContinuumClient> {
    if (!opts.environment && !opts.sessionId) throw new ContinuumError('CONNECT_FAILED', 'connect() needs an environment, a sessionId, or both');
    const client = new ContinuumClient(opts);
    await client.open();
    try {
      client.session_ = await client.bind(opts.mode ?? 'auto');
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  /** The session this client is bound to. */
  get session(): m.SessionBindResult {
    return this.session_!;
  }

  get connected(): boolean {
    return this.ws?.readyState === OPEN;
  }

  // --- commands -----------------------------------------------------------------------
  ping() {
    return this.call(m.systemPing, {});
  }
  commands() {
    return this.call(m.systemCommands, {});
  }
  info() {
    return this.call(m.sessionInfo, {});
  }
  processInfo() {
    return this.call(m.processInfo, {});
  }
  log(level: m.LogLevelName, message: string, data?: Record<string, unknown>) {
    return this.call(m.logWrite, data ? { level, message, data } : { level, message });
  }
  exec(command: string, options: ExecOptions = {}) {
    const { onOutput, signal, ...rest } = options;
    const params = { ...rest, command, ...(onOutput ? { stream: true } : {}) };
    // Without timeoutMs the server applies the environment's default and answers -32004
    // itself, so the client must not give up first.
    const clientTimeout = rest.timeoutMs !== undefined ? rest.timeoutMs + 10_000 : this.opts.requestTimeoutMs ?? SHELL_CLIENT_DEADLINE_MS;
    return this.call(m.shellExec, params, {
      timeoutMs: clientTimeout,
      ...(signal ? { signal } : {}),
      onNotification: (method, p) => {
        if (method === 'shell.output' && onOutput) {
          const out = p as m.ShellOutput;
          onOutput(out.stream, out.data);
        }
      },
    });
  }
  readonly state = {
    get: (key: string) => this.call(m.stateGet, { key }).then((r) => r.value),
    set: (key: string, value: unknown) => this.call(m.stateSet, { key, value }),
    delete: (key: string) => this.call(m.stateDelete, { key }),
    list: () => this.call(m.stateList, {}).then((r) => r.keys),
  };
  readonly fs = {
    read: (path: string, encoding?: 'utf8' | 'base64') => this.call(m.fsRead, encoding ? { path, encoding } : { path }),
    write: (path: string, content: string, encoding?: 'utf8' | 'base64') => this.call(m.fsWrite, encoding ? { path, content, encoding } : { path, content }),
    list: (path?: string) => this.call(m.fsList, path ? { path } : {}),
    stat: (path: string) => this.call(m.fsStat, { path }),
    delete: (path: string) => this.call(m.fsDelete, { path }),
  };
  readonly render = {
    /** Markdown, or a Mustache template with data, to sanitised HTML (the renderer daemon). */
    html: (source: { markdown: string } | { template: string; data?: Record<string, unknown> }) => this.call(m.renderHtml, source).then((r) => r.html),
  };
  /** Headless Chromium of the browser daemon: one isolated context (cookies, storage) per session. */
  readonly browser = {
    navigate: (url: string, options: Omit<ParamsOf<typeof m.browserNavigate>, 'url'> = {}) => this.call(m.browserNavigate, { ...options, url }, browserDeadline(options)),
    /** The PNG is saved under <home>/artifacts/<sessionId>/; its path and size come back. */
    screenshot: (options: NonNullable<ParamsOf<typeof m.browserScreenshot>> = {}) => this.call(m.browserScreenshot, options, browserDeadline(options)),
    evaluate: (expression: string, options: { timeoutMs?: number } = {}) => this.call(m.browserEvaluate, { ...options, expression }, browserDeadline(options)).then((r) => r.value),
    click: (selector: string, options: Omit<ParamsOf<typeof m.browserClick>, 'selector'> = {}) => this.call(m.browserClick, { ...options, selector }, browserDeadline(options)),
    type: (selector: string, text: string, options: { clear?: boolean; timeoutMs?: number } = {}) => this.call(m.browserType, { ...options, selector, text }, browserDeadline(options)),
    text: (selector?: string, options: { timeoutMs?: number } = {}) => this.call(m.browserText, selector ? { ...options, selector } : options, browserDeadline(options)).then((r) => r.text),
  };
  /** Ends the session for good (state and workspace deleted). */
  closeSession() {
    return this.call(m.sessionClose, {});
  }

  /** Calls a method by its descriptor, typed end to end. */
  call<D extends m.MethodDescriptorLike>(method: D, params: ParamsOf<D>, options?: RequestOptions): Promise<ResultOf<D>> {
    return this.request(method.name, params, options) as Promise<ResultOf<D>>;
  }

  /** Calls any method by name (for methods this SDK version doesn't know). */
  async request(method: string, params?: unknown, options: RequestOptions = {}): Promise<unknown> {
    if (this.closedByUser) throw new ContinuumError('CLIENT_CLOSED', 'this client was closed; connect() again');
    const timeoutMs = options.timeoutMs ?? this.opts.requestTimeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    if (this.reconnecting) await this.waitReconnected(timeoutMs, options.signal);
    return this.send(method, params, Math.max(1, deadline - Date.now()), options);
  }

  /** Closes the connection (the session lives on, for a later join). */
  async close(): Promise<void> {
    if (this.closedByUser) return;
    this.closedByUser = true;
    this.closing.abort();
    this.rejectAll(new ContinuumError('CLIENT_CLOSED', 'the client was closed while this request was pending'));
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close(1000);
        setTimeout(resolve, 1_000).unref();
      });
    }
    this.emit('closed');
  }

  // --- plumbing -----------------------------------------------------------------------
  private send(method: string, params: unknown, timeoutMs: number, options: RequestOptions): Promise<unknown> {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) {
      return Promise.reject(new ContinuumError('CONNECTION_LOST', 'not connected; the client is reconnecting', { retryable: true }));
    }
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      const onAbort = () => settle(new ContinuumError('CLIENT_TIMEOUT', `${method} was aborted`, { reason: String(options.signal?.reason ?? 'aborted') }));
      const settle = (err: Error) => {
        const p = this.pending.get(id);
        if (!p) return;
        this.pending.delete(id);
        p.cleanup();
        reject(err);
      };
      if (options.signal?.aborted) return onAbort();
      const timer = setTimeout(() => settle(new ContinuumError('CLIENT_TIMEOUT', `${method} got no answer within ${timeoutMs} ms`, { retryable: true })), timeoutMs);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const frame = JSON.stringify({ jsonrpc: '2.0', id, method, params: params ?? {} });
      this.pending.set(id, {
        method,
        frame,
        resolve,
        reject,
        timer,
        onNotification: options.onNotification,
        cleanup: () => {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
        },
      });
      ws.send(frame);
    });
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.opts.url, { headers: { authorization: `Bearer ${this.opts.token}`, ...this.opts.headers }, perMessageDeflate: false });
      let opened = false;
      ws.on('unexpected-response', (_req, res) => {
        const err = new ContinuumError(res.statusCode === 401 ? 'UNAUTHORIZED' : 'CONNECT_FAILED', `the server refused the connection: HTTP ${res.statusCode} ${res.statusMessage ?? ''}`.trim(), { status: res.statusCode });
        res.resume();
        ws.terminate();
        reject(err);
      });
      ws.once('open', () => {
        opened = true;
        this.ws = ws;
        resolve();
      });
      ws.on('message', (data: Buffer) => this.onMessage(data));
      ws.once('error', (err) => {
        if (!opened) reject(new ContinuumError('CONNECT_FAILED', `cannot connect to ${this.opts.url}: ${err.message}`, { retryable: true }, { cause: err }));
      });
      ws.once('close', (code, reason) => {
        if (opened) this.onClose(ws, code, reason.toString());
      });
    });
  }

  private async bind(mode: m.SessionMode): Promise<m.SessionBindResult> {
    const { environment, sessionId, label } = this.opts;
    if (!environment) return this.call(m.sessionJoin, { sessionId: sessionId! });
    const params: ParamsOf<typeof m.sessionConnect> = { environment, mode };
    if (sessionId) params.sessionId = sessionId;
    if (label) params.label = label;
    return this.call(m.sessionConnect, params);
  }

  private onMessage(data: Buffer): void {
    let msg: RpcSuccess | RpcFailure | RpcNotification;
    try {
      msg = JSON.parse(data.toString('utf8')) as typeof msg;
    } catch {
      return;
    }
    if ('method' in msg) {
      const params = msg.params as { requestId?: string; sessionId?: string; executor?: { id: string; pid: number } };
      if (msg.method === 'session.executorRestarted' && params.sessionId && params.executor) {
        this.emit('executorRestarted', { sessionId: params.sessionId, executor: params.executor });
        if (this.session_) this.session_ = { ...this.session_, executor: params.executor };
      } else if (params?.requestId) {
        this.pending.get(params.requestId)?.onNotification?.(msg.method, msg.params);
      }
      return;
    }
    if (typeof msg.id !== 'string') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    p.cleanup();
    if (!('error' in msg)) p.resolve(msg.result);
    else if (msg.error.data?.ledger === 'lost') this.settleLost(msg.id, p, ContinuumError.fromRpc(msg.error));
    else p.reject(ContinuumError.fromRpc(msg.error));
  }

  /** Its executor died under it: the ledger says it is lost, and why (signal, limit…). */
  private settleLost(requestId: string, p: Pending, fallback: ContinuumError): void {
    this.send(m.commandStatus.name, { requestId }, 10_000, {}).then(
      (entry) => {
        const e = entry as m.CommandEntry;
        p.reject(e.state === 'lost' ? lostError(e) : fallback);
      },
      () => p.reject(fallback),
    );
  }

  private rejectAll(err: ContinuumError, which: (p: Pending) => boolean = () => true): void {
    for (const [id, p] of this.pending) {
      if (!which(p)) continue;
      this.pending.delete(id);
      p.cleanup();
      p.reject(err);
    }
  }

  /** After a rejoin: every request still pending is sent again, and the ledger settles it. */
  private resendPending(): void {
    for (const p of this.pending.values()) this.ws?.send(p.frame);
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    // Only the current socket's close matters: one the reconnect loop gave up on is not news.
    if (ws !== this.ws) return;
    this.ws = undefined;
    const err = new ContinuumError('CONNECTION_LOST', `the connection closed (code ${code}${reason ? `: ${reason}` : ''}) with this request pending; it may or may not have run`, { retryable: true, closeCode: code });
    const reconnect = this.opts.reconnect ?? true;
    const resuming = !this.closedByUser && reconnect !== false && this.session_ !== undefined;
    // Session calls are not in the ledger; everything else waits for the rejoin (within its deadline).
    this.rejectAll(err, (p) => !resuming || p.method.startsWith('session.'));
    // A socket the reconnect loop opened failed: the loop sees it and tries again.
    if (this.closedByUser || this.reconnecting) return;
    this.emit('disconnected', err);
    if (!resuming) {
      this.end();
      return;
    }
    this.reconnecting = true;
    this.ready = this.reconnectLoop(reconnect === true ? {} : reconnect).finally(() => (this.reconnecting = false));
    this.ready.catch(() => undefined);
  }

  private async reconnectLoop(settings: ReconnectOptions): Promise<void> {
    const initial = settings.initialMs ?? 100;
    const max = settings.maxMs ?? 5_000;
    let pace = 0;
    for (let attempt = 0; settings.maxAttempts === undefined || attempt < settings.maxAttempts; attempt++) {
      const delayMs = backoffDelay(pace++, initial, max);
      this.emit('reconnecting', { attempt: attempt + 1, delayMs });
      await this.sleep(delayMs);
      if (this.closedByUser) throw new ContinuumError('CLIENT_CLOSED', 'the client was closed while reconnecting');
      try {
        await this.open();
        // Rejoin the same session: the server keeps its state. (Sent directly: ordinary
        // requests wait on this very loop.)
        const params = { environment: this.session_!.environment, sessionId: this.session_!.sessionId, mode: 'join' };
        this.session_ = (await this.send(m.sessionConnect.name, params, 10_000, {})) as m.SessionBindResult;
        this.resendPending();
        this.emit('reconnected', this.session_);
        return;
      } catch (err) {
        const failed = this.ws;
        this.ws = undefined;
        failed?.terminate();
        if (this.closedByUser) throw new ContinuumError('CLIENT_CLOSED', 'the client was closed while reconnecting');
        const e = err as ContinuumError;
        if (isContinuumError(e, 'SESSION_NOT_FOUND') || isContinuumError(e, 'UNAUTHORIZED')) {
          this.end(e);
          throw e;
        }
        // A failed environment waits for an operator: keep trying, but at the slowest pace.
        if ((err as ContinuumError).data?.retryable === false) pace = Math.max(pace, 30);
      }
    }
    const e = new ContinuumError('CONNECTION_LOST', `gave up reconnecting after ${settings.maxAttempts} attempts`, { retryable: false });
    this.end(e);
    throw e;
  }

  /** The client is done for good: `closed`, then `error` if there is a reason and a listener. */
  private end(reason?: ContinuumError): void {
    this.closedByUser = true;
    this.closing.abort();
    this.rejectAll(reason ?? new ContinuumError('CONNECTION_LOST', 'the connection closed with this request pending, and the client does not reconnect; it may or may not have run', { retryable: true }));
    this.emit('closed');
    if (reason && this.listenerCount('error') > 0) this.emit('error', reason);
  }

  /** Sleeps, but wakes at once when the client is closed. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.closing.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.closing.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Waits for the reconnect loop, within a deadline, an abort signal and close(). */
  private waitReconnected(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.closing.signal.removeEventListener('abort', onClose);
      };
      const settle = (err?: Error) => {
        cleanup();
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => settle(new ContinuumError('CLIENT_TIMEOUT', 'the request was aborted', { reason: String(signal?.reason ?? 'aborted') }));
      const onClose = () => settle(new ContinuumError('CLIENT_CLOSED', 'the client was closed while this request waited for a reconnect'));
      const timer = setTimeout(() => settle(new ContinuumError('CLIENT_TIMEOUT', `not reconnected within ${timeoutMs} ms`, { retryable: true })), timeoutMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.closing.signal.addEventListener('abort', onClose, { once: true });
      this.ready.then(() => settle(), (err: Error) => settle(err));
    });
  }
}

export function connect(opts: ConnectOptions): Promise<ContinuumClient> {
  return ContinuumClient.connect(opts);
}
