// The fuzz driver, run as its own process (so its CPU doesn't count in the latency the test
// measures for other clients). Opens many connections, sends generated frames in batches,
// checks every answer against the oracle of test/helpers/fuzz.ts, and prints one JSON
// report on stdout. Usage: node fuzz-driver.js '<json options>'.
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { FrameFuzzer, invalidResponse, Rng, type FuzzFrame } from './fuzz.js';

export interface DriverOptions {
  url: string;
  /** environment → token */
  tokens: Record<string, string>;
  seed: number;
  frames: number;
  connections: number;
  /** Environments to bind connections to; a few connections stay unbound. */
  environments: string[];
}

export interface DriverReport {
  seed: number;
  framesSent: number;
  byCategory: Record<string, number>;
  responses: number;
  notifications: number;
  errorsByCode: Record<string, number>;
  /** Distinct messages of -32603 answers (internal errors deserve a look). */
  internalErrors: string[];
  problems: string[];
  durationMs: number;
}

const BATCH_TIMEOUT_MS = Number(process.env.FUZZ_BATCH_TIMEOUT_MS ?? 60_000);
const SETTLE_MS = 1_500;

const keyOf = (id: string | number) => `${typeof id}:${id}`;

class Conn {
  readonly expected = new Map<string, number>();
  readonly received = new Map<string, number>();
  /** What was sent with each id (category and the frame's start), to report a miss. */
  readonly sentWith = new Map<string, string>();
  nullExpected = 0;
  nullReceived = 0;
  loose = 0; // frames that may get one answer (mutated bytes, notifications)
  unknown = 0;
  lastMessageAt = Date.now();
  private waiter: (() => void) | undefined;
  closedWith: number | undefined;

  constructor(readonly ws: WebSocket, readonly name: string, private readonly report: DriverReport) {
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('close', (code) => {
      this.closedWith = code;
      this.waiter?.();
    });
    ws.on('error', () => undefined);
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.lastMessageAt = Date.now();
    let m: Record<string, unknown>;
    try {
      if (isBinary) throw new Error('binary');
      m = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
    } catch {
      this.problem(`${this.name}: the server sent a frame that is not JSON text: ${data.subarray(0, 100).toString()}`);
      return;
    }
    const bad = invalidResponse(m);
    if (bad) {
      this.problem(`${this.name}: invalid JSON-RPC (${bad}): ${data.subarray(0, 200).toString()}`);
      return;
    }
    if ('method' in m) {
      this.report.notifications++;
      return;
    }
    this.report.responses++;
    const err = m.error as { code: number; message: string } | undefined;
    if (err) this.report.errorsByCode[err.code] = (this.report.errorsByCode[err.code] ?? 0) + 1;
    if (err?.code === -32603 && this.report.internalErrors.length < 20) {
      const msg = err.message.slice(0, 160);
      if (!this.report.internalErrors.includes(msg)) this.report.internalErrors.push(msg);
    }
    const id = m.id as string | number | null;
    if (id === null) this.nullReceived++;
    else {
      const k = keyOf(id);
      if (this.expected.has(k)) this.received.set(k, (this.received.get(k) ?? 0) + 1);
      else this.unknown++;
    }
    this.waiter?.();
  }

  private problem(p: string): void {
    if (this.report.problems.length < 50) this.report.problems.push(p);
  }

  expect(frame: FuzzFrame): void {
    const e = frame.expect;
    if (e.kind === 'id') {
      this.expected.set(keyOf(e.id), (this.expected.get(keyOf(e.id)) ?? 0) + 1);
      this.sentWith.set(keyOf(e.id), `${frame.category}${frame.binary ? ' (binary)' : ''}: ${frame.data.slice(0, 120).toString()}`);
    }
    else if (e.kind === 'null') this.nullExpected++;
    else this.loose++;
  }

  /** Waits until every id of `ids` has all its answers and the null answers have come. */
  async settle(ids: string[]): Promise<void> {
    const done = () => this.closedWith !== undefined || (ids.every((k) => (this.received.get(k) ?? 0) >= this.expected.get(k)!) && this.nullReceived >= this.nullExpected);
    if (done()) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        const missing = ids.filter((k) => (this.received.get(k) ?? 0) < this.expected.get(k)!);
        this.problem(`${this.name}: no answer within ${BATCH_TIMEOUT_MS} ms for ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}; null answers ${this.nullReceived}/${this.nullExpected}`);
        resolve();
      }, BATCH_TIMEOUT_MS);
      this.waiter = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.waiter = undefined;
        resolve();
      };
    });
  }

  /** The final accounting, once nothing more arrives. */
  check(): void {
    if (this.closedWith !== undefined) this.problem(`${this.name}: the server closed the connection with ${this.closedWith}`);
    let wrong = 0;
    for (const [k, n] of this.expected) {
      const got = this.received.get(k) ?? 0;
      if (got !== n && wrong++ < 5) this.problem(`${this.name}: id ${k} was sent ${n} times and answered ${got} times; last sent as ${this.sentWith.get(k)}`);
    }
    if (this.nullReceived < this.nullExpected) this.problem(`${this.name}: ${this.nullExpected} frames needed an answer with id null, ${this.nullReceived} came`);
    const extra = this.unknown + this.nullReceived - this.nullExpected;
    if (extra > this.loose) this.problem(`${this.name}: ${extra} answers beyond what was sent (only ${this.loose} frames could have had one)`);
  }
}

function open(url: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, maxPayload: 256 * 1024 * 1024, perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function bind(ws: WebSocket, environment: string, sessionId: string): Promise<void> {
  const answered = new Promise<void>((resolve, reject) => {
    ws.once('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as { error?: unknown };
      if (m.error) reject(new Error(`session.connect: ${JSON.stringify(m.error)}`));
      else resolve();
    });
  });
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'bind', method: 'session.connect', params: { environment, sessionId } }));
  await answered;
}

export async function runFuzz(o: DriverOptions): Promise<DriverReport> {
  const report: DriverReport = { seed: o.seed, framesSent: 0, byCategory: {}, responses: 0, notifications: 0, errorsByCode: {}, internalErrors: [], problems: [], durationMs: 0 };
  const started = Date.now();
  const conns: { conn: Conn; fuzzer: FrameFuzzer; rng: Rng; quota: number }[] = [];
  for (let i = 0; i < o.connections; i++) {
    const environment = o.environments[i % o.environments.length]!;
    const ws = await open(o.url, o.tokens[environment]!);
    // Two connections stay unbound: their commands must get -32012.
    if (i >= 2) await bind(ws, environment, `fuzz-${i}`);
    const rng = new Rng((o.seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    conns.push({ conn: new Conn(ws, `conn ${i} (${i >= 2 ? environment : 'unbound'})`, report), fuzzer: new FrameFuzzer(rng, `c${i}`), rng, quota: Math.floor(o.frames / o.connections) + (i < o.frames % o.connections ? 1 : 0) });
  }
  await Promise.all(
    conns.map(async ({ conn, fuzzer, rng, quota }) => {
      let sent = 0;
      while (sent < quota && conn.closedWith === undefined) {
        const n = Math.min(quota - sent, rng.chance(0.003) ? rng.int(100, 400) : rng.int(1, 32));
        const batch = n >= 100 ? fuzzer.flood(n) : Array.from({ length: n }, () => fuzzer.next());
        const ids: string[] = [];
        for (const f of batch) {
          conn.expect(f);
          if (f.expect.kind === 'id') ids.push(keyOf(f.expect.id));
          report.byCategory[f.category] = (report.byCategory[f.category] ?? 0) + 1;
          conn.ws.send(f.data, { binary: f.binary });
        }
        sent += batch.length;
        report.framesSent += batch.length;
        await conn.settle(ids);
      }
    }),
  );
  // Answers to mutated frames may still be on their way: wait until all is quiet.
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && conns.some(({ conn }) => Date.now() - conn.lastMessageAt < SETTLE_MS)) await new Promise((r) => setTimeout(r, 100));
  for (const { conn } of conns) {
    conn.check();
    conn.ws.close();
  }
  report.durationMs = Date.now() - started;
  return report;
}

// Run as a program (not when imported).
if (process.argv[1] && process.argv[2] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await runFuzz(JSON.parse(process.argv[2]!) as DriverOptions);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}
