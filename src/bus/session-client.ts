// A process's link to the session daemon: connects lazily, says hello, reconnects after
// the daemon restarts. While it is down, calls fail at once with a retryable -32003.
import { ContinuumError } from '../protocol/errors.js';
import { connectFrameSocket } from './frame-socket.js';
import { RpcLink } from './rpc-link.js';

export class SessionDaemonClient {
  private link: RpcLink | undefined;
  private connecting: Promise<RpcLink> | undefined;
  private closed = false;
  private eventHandler: (name: string, data: unknown) => void = () => {};
  private linkLostHandler: () => void = () => {};
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly hello: { role: string; id: string; proof: string; [extra: string]: unknown },
  ) {}

  onEvent(handler: (name: string, data: unknown) => void): void {
    this.eventHandler = handler;
  }

  /**
   * Called at once when the link drops. Events (such as evictions) sent while we are
   * away are lost, so whoever caches what the daemon owns must revalidate it.
   */
  onLinkLost(handler: () => void): void {
    this.linkLostHandler = handler;
  }

  async call<T>(method: string, params: unknown, timeoutMs?: number): Promise<T> {
    try {
      // Inside the try: the daemon can die while the link is being (re)made, too.
      const link = await this.get();
      return await link.call<T>(method, params, timeoutMs);
    } catch (err) {
      // The daemon died mid-call: to a client that is the daemon being unavailable.
      if (err instanceof ContinuumError && err.code === 'CONTINUUM_CONNECTION_LOST') {
        throw new ContinuumError('EXECUTOR_UNAVAILABLE', `the session daemon did not complete ${method} (${err.message}); retry shortly`, { retryable: true, retryAfterMs: 200 }, { cause: err });
      }
      // Slow is not dead: the call may still complete, so a blind retry could do it twice.
      if (err instanceof ContinuumError && err.code === 'CONTINUUM_TIMEOUT') {
        throw new ContinuumError('TIMEOUT', `the session daemon did not answer ${method} in time; it may still complete`, { retryable: false }, { cause: err });
      }
      throw err;
    }
  }

  /** Connects now, retrying for up to `waitMs` (used at start, while the daemon boots). */
  async connect(waitMs = 5_000): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        await this.get();
        return;
      } catch (err) {
        if (Date.now() >= deadline || this.closed) throw err;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.link?.close();
  }

  /** Reconnects in the background, so that events reach us again soon after a restart. */
  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.get().catch(() => this.scheduleReconnect());
    }, 50);
    this.reconnectTimer.unref();
  }

  private get(): Promise<RpcLink> {
    if (this.link?.open) return Promise.resolve(this.link);
    if (this.closed) return Promise.reject(new ContinuumError('CONNECTION_LOST', 'session daemon client is closed'));
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<RpcLink> {
    let socket;
    try {
      socket = await connectFrameSocket(this.socketPath, 1_000);
    } catch (err) {
      throw new ContinuumError('EXECUTOR_UNAVAILABLE', 'the session daemon is unavailable (restarting); retry shortly', { retryable: true, retryAfterMs: 200 }, { cause: err });
    }
    const link = new RpcLink(socket, 'session daemon');
    link.onEvent((name, data) => this.eventHandler(name, data));
    await link.call('hello', this.hello, 2_000);
    this.link = link;
    link.socket.onClose(() => {
      if (this.link !== link) return;
      this.link = undefined;
      this.linkLostHandler();
      this.scheduleReconnect();
    });
    return link;
  }
}
