// Bounded waits for what follows a crash: an SDK event, any promise, or a call that fails
// with a retryable -32003 while a daemon or executor restarts.
import type { ContinuumClient } from '../../../src/client/index.js';
import { ContinuumError } from '../../../src/protocol/errors.js';

export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export function nextEvent<T>(client: ContinuumClient, event: 'executorRestarted' | 'disconnected' | 'reconnected'): Promise<T> {
  return new Promise((resolve) => client.once(event, (arg: unknown) => resolve(arg as T)));
}

function isRetryableUnavailable(err: unknown): err is ContinuumError {
  return err instanceof ContinuumError && err.rpcCode === -32003 && err.data?.retryable === true;
}

/** Retries `fn` while it fails with a retryable -32003 (a daemon or executor restarting). */
export async function retrying<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isRetryableUnavailable(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, Math.min(500, Number(err.data?.retryAfterMs ?? 100))));
    }
  }
}
