// A stream socket that carries frames. The only place (with frame-server) that knows
// about `node:net`; everything above sees frames.
import net from 'node:net';
import { ContinuumError } from '../protocol/errors.js';
import { encodeFrame, FrameDecoder, type Frame, type FrameKind } from './frame-codec.js';
import { TickCork } from './tick-cork.js';

export type FrameHandler = (frame: Frame) => void;

export class FrameSocket {
  private readonly decoder = new FrameDecoder();
  private readonly cork: TickCork;
  private frameHandler: FrameHandler = () => {};
  private readonly closeHandlers: ((err: Error | undefined) => void)[] = [];
  private closeError: Error | undefined;
  private isClosed = false;
  private readonly closedPromise: Promise<Error | undefined>;

  constructor(private readonly socket: net.Socket) {
    this.cork = new TickCork(socket);
    socket.setNoDelay(true);
    let resolveClosed!: (err: Error | undefined) => void;
    this.closedPromise = new Promise((r) => (resolveClosed = r));
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk, this.frameHandler);
      } catch (err) {
        this.destroy(err as Error);
      }
    });
    socket.on('error', (err) => {
      this.closeError ??= err;
    });
    socket.on('close', () => {
      this.isClosed = true;
      resolveClosed(this.closeError);
      for (const h of this.closeHandlers) {
        try {
          h(this.closeError);
        } catch {
          // A throwing close listener must not stop the others from running.
        }
      }
    });
  }

  get open(): boolean {
    return !this.isClosed && !this.socket.destroyed;
  }

  onFrame(handler: FrameHandler): void {
    this.frameHandler = handler;
  }

  onClose(handler: (err: Error | undefined) => void): void {
    if (this.isClosed) handler(this.closeError);
    else this.closeHandlers.push(handler);
  }

  /** Resolves (never rejects) when the socket is gone, with the error that ended it if any. */
  closed(): Promise<Error | undefined> {
    return this.closedPromise;
  }

  /** Queues a frame; frames written in one tick go out in one syscall. Returns false once closed. */
  send(kind: FrameKind, tag: number, payload: Buffer | string, lead?: Buffer): boolean {
    if (!this.open) return false;
    this.cork.hold();
    // Write errors are ignored here: the 'close' event reports them to whoever waits.
    this.socket.write(encodeFrame(kind, tag, payload, lead));
    return true;
  }

  /** Called each time the bytes queued in user space have all gone to the kernel. */
  onDrain(handler: () => void): void {
    this.socket.on('drain', handler);
  }

  /** Bytes queued in user space and not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  end(): void {
    this.socket.end();
  }

  destroy(err?: Error): void {
    this.closeError ??= err;
    this.socket.destroy();
  }
}

export function connectFrameSocket(path: string, timeoutMs = 2_000): Promise<FrameSocket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ContinuumError('CONNECT_FAILED', `timed out connecting to ${path}`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new FrameSocket(socket));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new ContinuumError('CONNECT_FAILED', `cannot connect to ${path}: ${err.code ?? err.message}`, undefined, { cause: err }));
    });
  });
}

export interface FrameServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Unix socket paths are limited to 107 bytes by the kernel. */
export const MAX_SOCKET_PATH = 107;

export async function listenFrameSockets(path: string, onConnection: (socket: FrameSocket) => void): Promise<FrameServer> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new ContinuumError('INTERNAL', `socket path ${path} is longer than ${MAX_SOCKET_PATH} bytes; choose a shorter --home`);
  }
  const { rmSync } = await import('node:fs');
  rmSync(path, { force: true });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    onConnection(new FrameSocket(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
