// A diagnostic client that talks to an executor's Unix socket directly, with the frames
// the edge would send: what the executor costs on its own, without the edge.
import { performance } from 'node:perf_hooks';
import { FrameKind, requestLead } from '../src/bus/frame-codec.js';
import { connectFrameSocket, type FrameSocket } from '../src/bus/frame-socket.js';

export class ExecutorDirect {
  private waiting: ((at: number, payload: Buffer) => void) | undefined;
  private id = 1;

  private constructor(private readonly socket: FrameSocket, private readonly lead: Buffer) {
    socket.onFrame((frame) => {
      if (frame.kind !== FrameKind.Response) return;
      const w = this.waiting;
      this.waiting = undefined;
      w?.(performance.now(), frame.payload);
    });
  }

  static async open(socketPath: string, sessionId: string): Promise<ExecutorDirect> {
    return new ExecutorDirect(await connectFrameSocket(socketPath, 2_000), requestLead(sessionId));
  }

  /** One system.ping, the answer parsed as a client would; bounded by a 5 s timer. */
  ping(): Promise<{ ms: number; error: boolean }> {
    return new Promise((resolve) => {
      const t0 = performance.now();
      const timer = setTimeout(() => {
        this.waiting = undefined;
        resolve({ ms: 5_000, error: true });
      }, 5_000);
      this.waiting = (t1, payload) => {
        clearTimeout(timer);
        JSON.parse(payload.subarray(1).toString('utf8'));
        resolve({ ms: t1 - t0, error: payload[0] !== 0 });
      };
      const id = this.id++;
      this.socket.send(FrameKind.Request, id, `{"jsonrpc":"2.0","id":${id},"method":"system.ping"}`, this.lead);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
