// A JSON-RPC 2.0 client over a browser WebSocket that reconnects by itself (jittered
// backoff). The page's cookie authenticates it; the server checks the Origin. Requests
// pending when the socket drops are rejected at once, so nothing waits forever.

export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: Record<string, unknown>,
  ) {
    super(message);
  }

  get retryable(): boolean {
    return this.data?.retryable === true;
  }
}

/** Not a server error: the socket closed before the answer came. */
export const DISCONNECTED = -1;

export type SocketState = 'connecting' | 'open' | 'closed';

interface Pending {
  resolve(value: unknown): void;
  reject(err: RpcError): void;
  onNotification?: (method: string, params: Record<string, unknown>) => void;
}

export interface RpcSocketOptions {
  /** Runs after each (re)connect, before the socket counts as open (e.g. rejoin a session). */
  onOpen?: (socket: RpcSocket) => Promise<void>;
  onNotification?: (method: string, params: Record<string, unknown>) => void;
  onState?: (state: SocketState, detail?: string) => void;
}

export function wsUrl(path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

export class RpcSocket {
  private ws: WebSocket | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private attempt = 0;
  private stopped = false;
  private timer: number | undefined;
  state: SocketState = 'connecting';

  constructor(private readonly url: string, private readonly opts: RpcSocketOptions = {}) {}

  start(): this {
    this.connect();
    return this;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.close();
  }

  /** Sends a request; `onNotification` gets the notifications that carry its id (e.g. shell.output). */
  call<T>(method: string, params?: unknown, onNotification?: Pending['onNotification']): Promise<T> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new RpcError(DISCONNECTED, 'not connected; reconnecting…', { retryable: true }));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onNotification });
      ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params: params ?? {} }));
    });
  }

  private setState(state: SocketState, detail?: string): void {
    this.state = state;
    this.opts.onState?.(state, detail);
  }

  private connect(): void {
    if (this.stopped) return;
    this.setState('connecting');
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      const ready = this.opts.onOpen ? this.opts.onOpen(this) : Promise.resolve();
      ready.then(
        () => {
          this.attempt = 0;
          this.setState('open');
        },
        (err: unknown) => {
          this.setState('connecting', err instanceof Error ? err.message : String(err));
          ws.close();
        },
      );
    };
    ws.onmessage = (ev) => this.onMessage(String(ev.data));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      for (const p of this.pending.values()) p.reject(new RpcError(DISCONNECTED, 'the connection was lost before the answer came', { retryable: true }));
      this.pending.clear();
      if (this.stopped) return this.setState('closed');
      // 250 ms doubling to 5 s, with jitter, so a restart isn't met by every page at once.
      const delay = Math.min(5_000, 250 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
      this.setState('connecting', `reconnecting in ${Math.round(delay)} ms`);
      this.timer = window.setTimeout(() => this.connect(), delay);
    };
  }

  private onMessage(text: string): void {
    let msg: { id?: number | string | null; method?: string; params?: Record<string, unknown>; result?: unknown; error?: { code: number; message: string; data?: Record<string, unknown> } };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    if (msg.method !== undefined) {
      const params = msg.params ?? {};
      const owner = typeof params.requestId === 'number' ? this.pending.get(params.requestId) : undefined;
      if (owner?.onNotification) owner.onNotification(msg.method, params);
      else this.opts.onNotification?.(msg.method, params);
      return;
    }
    if (typeof msg.id !== 'number') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error) p.reject(new RpcError(msg.error.code, msg.error.message, msg.error.data));
    else p.resolve(msg.result);
  }
}
