// Load generation with bare `ws` clients (no SDK), so the client side costs the same
// against the raw echo server and against Continuum.
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { Samples, summarize, sleep, type LatencySummary } from './stats.js';

export interface RpcReply {
  id?: number | string | null;
  method?: string;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: Record<string, unknown> };
}

type ReplyHandler = (reply: RpcReply, receivedAt: number) => void;

export class BenchConn {
  private nextId = 1;
  private readonly pending = new Map<number, ReplyHandler>();
  notifications = 0;
  closed = false;
  /** The session this connection was bound to, when the bench bound it. */
  sessionId: string | undefined;

  /** Send string ids (`<prefix><n>`) instead of numbers: the ledger's idempotent path. */
  idPrefix: string | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const now = performance.now();
      const m = JSON.parse(data.toString('utf8')) as RpcReply;
      const n = typeof m.id === 'number' ? m.id : typeof m.id === 'string' && this.idPrefix && m.id.startsWith(this.idPrefix) ? Number(m.id.slice(this.idPrefix.length)) : undefined;
      if (n === undefined) {
        this.notifications++;
        return;
      }
      const h = this.pending.get(n);
      if (!h) return;
      this.pending.delete(n);
      h(m, now);
    });
    ws.on('close', () => {
      this.closed = true;
      const lost: RpcReply = { error: { code: -1, message: 'connection closed' } };
      for (const h of this.pending.values()) h(lost, performance.now());
      this.pending.clear();
    });
    ws.on('error', () => undefined);
  }

  static open(url: string, token?: string, timeoutMs = 10_000): Promise<BenchConn> {
    return new Promise((resolve, reject) => {
      if (!url.startsWith('ws://127.0.0.1:')) throw new Error(`the bench only targets 127.0.0.1, not ${url}`);
      const ws = new WebSocket(url, { perMessageDeflate: false, headers: token ? { authorization: `Bearer ${token}` } : {} });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`WebSocket open to ${url} timed out`));
      }, timeoutMs);
      ws.once('open', () => {
        clearTimeout(timer);
        ws.removeAllListeners('error');
        resolve(new BenchConn(ws));
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`HTTP ${res.statusCode}`));
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  get inflight(): number {
    return this.pending.size;
  }

  /** Sends a request; `onReply` gets the parsed answer and the time it arrived (performance.now()). */
  send(method: string, params: unknown, onReply: ReplyHandler): void {
    const n = this.nextId++;
    this.pending.set(n, onReply);
    const id = this.idPrefix ? JSON.stringify(`${this.idPrefix}${n}`) : String(n);
    this.ws.send(params === undefined ? `{"jsonrpc":"2.0","id":${id},"method":"${method}"}` : `{"jsonrpc":"2.0","id":${id},"method":"${method}","params":${JSON.stringify(params)}}`);
  }

  call(method: string, params?: unknown, timeoutMs = 15_000): Promise<RpcReply> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ error: { code: -2, message: `${method}: no answer in ${timeoutMs} ms` } }), timeoutMs);
      this.send(method, params, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, 2_000);
      this.ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.ws.close();
    });
  }
}

/** Opens `n` connections, at most `parallel` at a time; `prepare` runs on each once open. */
export async function openMany(n: number, open: (i: number) => Promise<BenchConn>, parallel = 50): Promise<BenchConn[]> {
  const out: BenchConn[] = new Array(n);
  let next = 0;
  const workers = Array.from({ length: Math.min(parallel, n) }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await open(i);
    }
  });
  await Promise.all(workers);
  return out;
}

export async function closeAll(conns: BenchConn[]): Promise<void> {
  await Promise.all(conns.map((c) => c.close()));
}

export interface SequentialResult extends LatencySummary {
  errors: number;
}

/** One request at a time on one connection: warm-up, then up to `count` samples or `maxMs`. */
export function sequential(conn: BenchConn, opts: { warmup: number; count: number; maxMs: number; method?: string }): Promise<SequentialResult> {
  const method = opts.method ?? 'system.ping';
  return sequentialWith(
    () =>
      new Promise((resolve) => {
        const t0 = performance.now();
        conn.send(method, undefined, (reply, t1) => resolve({ ms: t1 - t0, error: Boolean(reply.error) }));
      }),
    opts,
  );
}

/** The same, over any one-request-at-a-time function. */
export async function sequentialWith(one: () => Promise<{ ms: number; error: boolean }>, opts: { warmup: number; count: number; maxMs: number }): Promise<SequentialResult> {
  const warmDeadline = performance.now() + opts.maxMs;
  for (let i = 0; i < opts.warmup && performance.now() < warmDeadline; i++) await one();
  let errors = 0;
  const samples = new Samples(opts.count);
  const deadline = performance.now() + opts.maxMs;
  while (samples.count < opts.count && performance.now() < deadline) {
    const r = await one();
    if (r.error) errors++;
    samples.add(r.ms);
  }
  return { ...summarize(samples), errors };
}

export interface LoadResult {
  durationMs: number;
  completed: number;
  rate: number;
  latency: LatencySummary;
  errors: Record<string, number>;
}

/**
 * Closed loop: every connection keeps `depth` requests in flight; a reply sends the next.
 * Warm-up for `warmupMs`, then counts replies (and their latencies) for `measureMs`.
 * `hooks` run at the edges of the measured window (to sample CPU, say).
 */
export async function closedLoop(
  conns: BenchConn[],
  opts: { depth: number; warmupMs: number; measureMs: number; method?: string; params?: unknown },
  hooks: { onMeasureStart?: () => void; onMeasureEnd?: () => void; progress?: (msg: string) => void } = {},
): Promise<LoadResult> {
  const method = opts.method ?? 'system.ping';
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  let inflight = 0;
  let completed = 0;
  const samples = new Samples(4_000_000);
  const errors: Record<string, number> = {};

  const fire = (conn: BenchConn) => {
    if (phase === 'stop' || conn.closed) return;
    inflight++;
    const t0 = performance.now();
    conn.send(method, opts.params, (reply, t1) => {
      inflight--;
      if (phase === 'measure') {
        if (reply.error) {
          const k = String(reply.error.code);
          errors[k] = (errors[k] ?? 0) + 1;
        } else {
          completed++;
          samples.add(t1 - t0);
        }
      }
      fire(conn);
    });
  };

  for (const conn of conns) for (let i = 0; i < opts.depth; i++) fire(conn);
  await sleep(opts.warmupMs);
  hooks.onMeasureStart?.();
  phase = 'measure';
  const start = performance.now();
  const tick = setInterval(() => hooks.progress?.(`  … ${Math.round((performance.now() - start) / 1000)} s, ${completed.toLocaleString('en-US')} replies`), 1_000);
  await sleep(opts.measureMs);
  const durationMs = performance.now() - start;
  phase = 'stop';
  clearInterval(tick);
  hooks.onMeasureEnd?.();
  const doneBy = performance.now() + 10_000;
  while (inflight > 0 && performance.now() < doneBy) await sleep(10);
  return { durationMs, completed, rate: (completed * 1000) / durationMs, latency: summarize(samples), errors };
}
