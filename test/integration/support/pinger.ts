// Pings in a loop while children of the tree are killed or stopped, so a test can tell
// whether anyone else noticed.
import type { ContinuumClient } from '../../../src/client/index.js';
import { ContinuumError } from '../../../src/protocol/errors.js';

/** Pings in a loop until stopped, counting answers and keeping every error. */
export class Pinger {
  static readonly live = new Set<Pinger>();
  count = 0;
  readonly errors: unknown[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(readonly client: ContinuumClient, readonly environment: string) {
    Pinger.live.add(this);
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      try {
        const r = (await this.client.request('system.ping', {}, { timeoutMs: 5_000 })) as { environment: string };
        if (r.environment !== this.environment) throw new Error(`ping answered by ${r.environment}, expected ${this.environment}`);
        this.count++;
      } catch (err) {
        this.errors.push(err);
        if (err instanceof ContinuumError && err.code === 'CONTINUUM_CLIENT_CLOSED') break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    Pinger.live.delete(this);
    await this.done;
  }

  /** Stops every pinger still running (a test that failed half-way). */
  static stopAll(): Promise<void[]> {
    return Promise.all([...Pinger.live].map((p) => p.stop()));
  }
}
