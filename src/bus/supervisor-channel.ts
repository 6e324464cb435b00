// A child's side of its link to the supervisor: the boot record, the IPC channel
// (ready, heartbeats, queries) and dying with the supervisor.
import type { ChildBoot, ChildMessage, SupervisorMessage } from '../protocol/internal.js';
import { flushLogs } from '../logging/child-log.js';

let hostPid = process.pid;

/** Our pid as the host (and `ps`) sees it; differs from process.pid inside a pid namespace. */
export function ownHostPid(): number {
  return hostPid;
}

export function readBoot(): ChildBoot {
  // Sent by the supervisor once it has found a confined child's host pid, maybe before activation.
  process.on('message', (m: SupervisorMessage) => {
    if (m?.t === 'identity' && Number.isInteger(m.pid)) hostPid = m.pid;
  });
  const raw = process.env.CONTINUUM_CHILD;
  if (!raw || !process.send) {
    process.stderr.write('this program is started by the Continuum supervisor (`continuum start`), not by hand\n');
    process.exit(2);
  }
  const boot = JSON.parse(raw) as ChildBoot;
  delete process.env.CONTINUUM_CHILD;
  process.title = boot.name;
  return boot;
}

/**
 * A standby child has booted and loaded its code; it tells the supervisor so and waits to
 * be activated, at which point it starts serving as the child it was booted as.
 */
export function awaitActivation(boot: ChildBoot): Promise<ChildBoot> {
  if (!boot.standby) return Promise.resolve(boot);
  return new Promise((resolve) => {
    const onMessage = (m: SupervisorMessage) => {
      if (m.t !== 'activate') return;
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      resolve({ ...boot, standby: false });
    };
    const onDisconnect = () => process.exit(0);
    process.on('message', onMessage);
    process.on('disconnect', onDisconnect);
    process.send?.({ t: 'standby' } satisfies ChildMessage);
  });
}

type QueryHandler = (q: string) => unknown;

export class SupervisorChannel {
  private queryHandler: QueryHandler = () => null;
  private messageHandler: (m: SupervisorMessage) => void = () => {};

  constructor(onShutdown: () => Promise<void> | void) {
    process.on('message', (m: SupervisorMessage) => {
      if (m.t === 'ping') this.send({ t: 'pong', seq: m.seq });
      else if (m.t === 'query') {
        Promise.resolve()
          .then(() => this.queryHandler(m.q))
          .then((data) => this.send({ t: 'reply', seq: m.seq, data }), () => this.send({ t: 'reply', seq: m.seq, data: null }));
      } else this.messageHandler(m);
    });
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      Promise.resolve(onShutdown())
        .catch(() => undefined)
        .finally(() => {
          flushLogs();
          process.exit(0);
        });
    };
    // No supervisor, no reason to live: an orphaned child would hold sockets and ports.
    process.on('disconnect', stop);
    process.on('SIGTERM', stop);
    process.on('SIGINT', () => {
      // Ctrl-C reaches the whole foreground process group; the supervisor drives the shutdown.
    });
  }

  send(message: ChildMessage): void {
    if (process.connected) process.send?.(message);
  }

  ready(port?: number): void {
    this.send(port === undefined ? { t: 'ready' } : { t: 'ready', port });
  }

  onQuery(handler: QueryHandler): void {
    this.queryHandler = handler;
  }

  onMessage(handler: (m: SupervisorMessage) => void): void {
    this.messageHandler = handler;
  }
}
