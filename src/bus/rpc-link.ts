// Internal request/response over a FrameSocket (Call/Reply/Event frames with JSON payloads):
// edge ↔ session daemon, executor ↔ session daemon, CLI ↔ supervisor.
import { ContinuumError, type ErrorData } from '../protocol/errors.js';
import { FrameKind, type Frame } from './frame-codec.js';
import type { FrameSocket } from './frame-socket.js';

type Handler = (params: unknown, link: RpcLink) => unknown;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface WireError {
  name: string;
  message: string;
  data?: ErrorData;
}

export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

export class RpcLink {
  private nextTag = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly handlers = new Map<string, Handler>();
  private eventHandler: (name: string, data: unknown) => void = () => {};
  /** Free for the owner: e.g. the executor id a session-daemon link authenticated as. */
  identity: string | undefined;

  constructor(readonly socket: FrameSocket, private readonly peerName: string) {
    socket.onFrame((frame) => this.onFrame(frame));
    socket.onClose((err) => {
      const error = new ContinuumError('CONNECTION_LOST', `link to ${peerName} closed${err ? `: ${err.message}` : ''}`, { retryable: true });
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(error);
      }
      this.pending.clear();
    });
  }

  get open(): boolean {
    return this.socket.open;
  }

  handle(method: string, handler: Handler): this {
    this.handlers.set(method, handler);
    return this;
  }

  onEvent(handler: (name: string, data: unknown) => void): this {
    this.eventHandler = handler;
    return this;
  }

  /** Every call has a deadline, even when the caller sets none. */
  call<T = unknown>(method: string, params?: unknown, timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<T> {
    if (!this.socket.open) {
      return Promise.reject(new ContinuumError('CONNECTION_LOST', `link to ${this.peerName} is closed`, { retryable: true }));
    }
    const tag = this.nextTag;
    this.nextTag = tag >= 0xffffffff ? 1 : tag + 1;
    return new Promise<T>((resolve, reject) => {
      // The error is made when it happens: an Error captures a stack, too dear for every call.
      const timer = setTimeout(() => {
        this.pending.delete(tag);
        reject(new ContinuumError('TIMEOUT', `${this.peerName} did not answer ${method} within ${timeoutMs} ms`, { retryable: true }));
      }, timeoutMs);
      this.pending.set(tag, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.send(FrameKind.Call, tag, JSON.stringify({ m: method, p: params ?? null }));
    });
  }

  emit(name: string, data?: unknown): boolean {
    return this.socket.send(FrameKind.Event, 0, JSON.stringify({ m: name, p: data ?? null }));
  }

  close(): void {
    this.socket.end();
  }

  private onFrame(frame: Frame): void {
    let body: { m?: string; p?: unknown; r?: unknown; e?: WireError };
    try {
      body = JSON.parse(frame.payload.toString()) as typeof body;
    } catch {
      this.socket.destroy(new Error(`${this.peerName} sent a frame that is not JSON`));
      return;
    }
    if (frame.kind === FrameKind.Reply) {
      const p = this.pending.get(frame.tag);
      if (!p) return;
      this.pending.delete(frame.tag);
      clearTimeout(p.timer);
      if (body.e) p.reject(new ContinuumError(body.e.name as never, body.e.message, body.e.data));
      else p.resolve(body.r);
    } else if (frame.kind === FrameKind.Call) {
      void this.answer(frame.tag, String(body.m), body.p);
    } else if (frame.kind === FrameKind.Event) {
      try {
        this.eventHandler(String(body.m), body.p);
      } catch {
        // An event listener's failure is the listener's business, not the link's.
      }
    }
  }

  private async answer(tag: number, method: string, params: unknown): Promise<void> {
    const handler = this.handlers.get(method);
    let reply: string;
    try {
      if (!handler) throw new ContinuumError('METHOD_NOT_FOUND', `${method} is not served here`);
      const result = await handler(params, this);
      reply = JSON.stringify({ r: result ?? null });
    } catch (err) {
      const e = err instanceof ContinuumError ? err : new ContinuumError('INTERNAL', (err as Error).message ?? String(err));
      const wire: WireError = { name: e.code.replace(/^CONTINUUM_/, ''), message: e.message };
      if (e.data) wire.data = e.data;
      reply = JSON.stringify({ e: wire });
    }
    this.socket.send(FrameKind.Reply, tag, reply);
  }
}
