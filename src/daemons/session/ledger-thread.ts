// The session daemon's main thread's handle on its ledger thread (ledger-worker.ts).
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../logging/child-log.js';
import type { FromLedgerThread, LedgerThreadData, ToLedgerThread } from './ledger-worker.js';

/** Within the daemon's own shutdown budget (child-spec.ts: 2 s). */
const STOP_WAIT_MS = 1_000;

export class LedgerThread {
  private stopping = false;
  /** Its first word: open and listening, and how many entries it took over from sessions.db. */
  ready!: Promise<Extract<FromLedgerThread, { kind: 'ready' }>>;

  private constructor(private readonly worker: Worker, log: Logger) {
    // The ledger is half of what this daemon keeps: without it the edge can run no command
    // that changes anything. Its failure ends the daemon, and the supervisor restarts both.
    worker.on('error', (err) => {
      log.error('ledger thread failed; the session daemon stops so that the supervisor restarts it', { error: err.stack ?? err.message });
      process.exit(1);
    });
    worker.on('exit', (code) => {
      if (this.stopping) return;
      log.error('ledger thread exited; the session daemon stops so that the supervisor restarts it', { code });
      process.exit(1);
    });
  }

  /** Starts the thread; `ready` resolves once it has its database open and listens for the edge. */
  static start(data: LedgerThreadData, log: Logger): LedgerThread {
    const worker = new Worker(new URL('./ledger-worker.js', import.meta.url), { workerData: data });
    const thread = new LedgerThread(worker, log);
    thread.ready = (once(worker, 'message') as Promise<[FromLedgerThread]>).then(([m]) => {
      if (m.kind !== 'ready') throw new Error(`the ledger thread said ${m.kind} before it was ready`);
      return m;
    });
    return thread;
  }

  /** The session's entries go with it. */
  sessionEnded(sessionId: string): void {
    this.post({ kind: 'session-ended', sessionId });
  }

  /** Closes its socket and database; ends it if it takes longer than STOP_WAIT_MS. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.post({ kind: 'stop' });
    const timer = setTimeout(() => void this.worker.terminate(), STOP_WAIT_MS);
    await Promise.race([once(this.worker, 'message'), once(this.worker, 'exit')]).catch(() => undefined);
    clearTimeout(timer);
    await this.worker.terminate();
  }

  private post(m: ToLedgerThread): void {
    this.worker.postMessage(m);
  }
}
