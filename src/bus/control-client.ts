// A daemon's link to the supervisor's control socket (the one `continuum ps` uses): the
// edge consumes dashboard logins and reads the process table for /metrics there, the
// renderer reads what the dashboard shows. Connected on first use, again after a drop.
import { ContinuumError } from '../protocol/errors.js';
import { connectFrameSocket } from './frame-socket.js';
import { RpcLink } from './rpc-link.js';

export class ControlClient {
  private link: RpcLink | undefined;
  private connecting: Promise<RpcLink> | undefined;

  constructor(private readonly socketPath: string) {}

  async call<T>(method: string, params?: unknown, timeoutMs = 2_000): Promise<T> {
    return (await this.get()).call<T>(method, params, timeoutMs);
  }

  close(): void {
    this.link?.close();
    this.link = undefined;
  }

  private get(): Promise<RpcLink> {
    if (this.link?.open) return Promise.resolve(this.link);
    this.connecting ??= connectFrameSocket(this.socketPath, 1_000)
      .then((socket) => (this.link = new RpcLink(socket, 'supervisor')))
      .catch((err: unknown) => {
        throw new ContinuumError('CONNECT_FAILED', `the supervisor's control socket is unreachable: ${(err as Error).message}`, { retryable: true }, { cause: err });
      })
      .finally(() => (this.connecting = undefined));
    return this.connecting;
  }
}
