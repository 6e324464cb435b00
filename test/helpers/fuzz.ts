// A seeded frame fuzzer for the WebSocket edge. Each generated frame carries what the edge
// must do with it (the oracle): answer with a known id (as many times as that id was sent),
// answer with id null, answer nothing (a valid notification), or, for randomly mutated
// bytes, answer at most once with whatever id survived. The same seed gives the same frames.

/** sfc32: a small, fast, well-mixed PRNG; enough for reproducible test input. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Printable text, with some quotes, backslashes, controls and non-ASCII. */
  text(max: number): string {
    const n = this.int(0, max);
    let s = '';
    for (let i = 0; i < n; i++) {
      const r = this.next();
      s += r < 0.8 ? String.fromCharCode(this.int(32, 126)) : r < 0.9 ? this.pick(['"', '\\', '\n', '\t', '\u0000', '\u007f']) : String.fromCodePoint(this.pick([0xe9, 0x4e2d, 0x1f600, 0xfffd, 0x2028]));
    }
    return s;
  }
}

/**
 * - `id`: a response with exactly this id (once per frame sent with it);
 * - `null`: a response with id null;
 * - `none`: no response (a valid notification);
 * - `maybe`: mutated bytes; at most one response, with any id.
 */
export type Expect = { kind: 'id'; id: string | number } | { kind: 'null' } | { kind: 'none' } | { kind: 'maybe' };

export interface FuzzFrame {
  data: Buffer | string;
  binary: boolean;
  expect: Expect;
  category: string;
}

const SAFE_COMMANDS = ['true', 'echo fuzz', 'printf %s x', 'pwd', 'cd sub 2>/dev/null || mkdir -p sub', 'export FUZZ=1', 'exit 3', 'cat /dev/null'];
const PATHS = ['a.txt', 'sub/b.txt', '', '.', '..', '../../etc/passwd', '/etc/passwd', 'sub/../a.txt', 'nul\u0000l', 'x'.repeat(300)];
const ENVIRONMENTS = ['server', 'remote', 'agent', 'persona', 'browser', 'nope', '', 'SERVER'];

function wrongValue(rng: Rng): unknown {
  return rng.pick<unknown>([null, true, false, 0, -1, 1.5, 1e308, '', 'x', [], [1, 2], {}, { a: { b: [] } }, 'NaN']);
}

export class FrameFuzzer {
  private seq = 0;
  /** Ids already sent on this connection, for duplicates. */
  private readonly sent: (string | number)[] = [];

  constructor(private readonly rng: Rng, private readonly tag: string) {}

  private id(): string | number {
    const n = this.seq++;
    const id = this.rng.chance(0.3) ? n * 1000 + this.rng.int(0, 999) : `${this.tag}-${n}`;
    this.sent.push(id);
    return id;
  }

  private validParams(method: string): unknown {
    const r = this.rng;
    switch (method) {
      case 'state.get':
      case 'state.delete':
        return { key: `k${r.int(0, 20)}` };
      case 'state.set':
        return { key: `k${r.int(0, 20)}`, value: r.pick<unknown>([r.text(40), r.int(0, 1e6), null, { nested: [r.text(10), true] }]) };
      case 'fs.read':
      case 'fs.stat':
      case 'fs.delete':
        return { path: r.pick(PATHS) };
      case 'fs.write':
        return { path: r.pick(PATHS), content: r.text(200) };
      case 'fs.list':
        return r.chance(0.5) ? {} : { path: r.pick(PATHS) };
      case 'log.write':
        return { level: r.pick(['info', 'warn', 'error', 'debug', 'loud']), message: r.text(100) };
      case 'shell.exec':
        return { command: r.pick(SAFE_COMMANDS), timeoutMs: r.pick([undefined, 5_000, 0, -1]), stream: r.chance(0.3) };
      case 'session.connect':
        return { environment: r.pick(ENVIRONMENTS), sessionId: r.pick([undefined, `fz-${r.int(0, 5)}`, '../x', '', 'a b', 'x'.repeat(200)]), mode: r.pick([undefined, 'auto', 'new', 'join', 'fork', 'bogus']) };
      case 'session.join':
        return { sessionId: r.pick([`fz-${r.int(0, 5)}`, 'nope', '']) };
      default:
        return r.chance(0.8) ? undefined : {};
    }
  }

  private method(): string {
    const r = this.rng;
    // Weighted towards cheap ones; shell.exec and session.* are rare.
    const x = r.next();
    if (x < 0.02) return r.pick(['shell.exec']);
    if (x < 0.03) return r.pick(['session.connect', 'session.join', 'session.info']);
    if (x < 0.05) return r.pick(['browser.navigate', 'render.html', 'nope', 'system', '.', 'system.ping.x', '__proto__', 'constructor']);
    return r.pick(['system.ping', 'system.ping', 'state.get', 'state.set', 'state.list', 'state.delete', 'fs.read', 'fs.write', 'fs.list', 'fs.stat', 'log.write', 'process.info', 'system.commands']);
  }

  private request(id: string | number, method: string, params: unknown): string {
    // The id goes first, so that frames the edge can't parse still show it (see sniffId).
    return JSON.stringify({ id, jsonrpc: '2.0', method, ...(params === undefined ? {} : { params }) });
  }

  private valid(): FuzzFrame {
    const id = this.id();
    const method = this.method();
    return { data: this.request(id, method, this.validParams(method)), binary: false, expect: { kind: 'id', id }, category: 'valid' };
  }

  private wrongTypes(): FuzzFrame {
    const r = this.rng;
    const id = this.id();
    const variant = r.int(0, 6);
    const base: Record<string, unknown> = { id, jsonrpc: '2.0', method: this.method() };
    switch (variant) {
      case 0:
        base.jsonrpc = r.pick<unknown>(['1.0', 2, null, '2.0 ', undefined]);
        break;
      case 1:
        base.method = r.pick<unknown>([1, null, '', [], {}, true]);
        break;
      case 2:
        base.params = r.pick<unknown>(['x', 1, true, null]);
        break;
      case 3:
        base.params = { key: wrongValue(r), value: wrongValue(r), path: wrongValue(r), command: wrongValue(r), level: wrongValue(r), extra: wrongValue(r) };
        break;
      case 4: {
        // An id the edge must refuse (wrong type, too long, not finite): answered with id null.
        const bad = r.pick(['{}', '[]', 'true', JSON.stringify('i'.repeat(300)), '1e400']);
        return { data: JSON.stringify({ ...base, id: 0 }).replace('"id":0', `"id":${bad}`), binary: false, expect: { kind: 'null' }, category: 'wrong-types' };
      }
      case 5:
        return { data: JSON.stringify([{ ...base }]), binary: false, expect: { kind: 'null' }, category: 'wrong-types' };
      default:
        return { data: r.pick(['"just a string"', '42', 'null', 'true', '[]']), binary: false, expect: { kind: 'null' }, category: 'wrong-types' };
    }
    return { data: JSON.stringify(base), binary: false, expect: { kind: 'id', id }, category: 'wrong-types' };
  }

  private deep(): FuzzFrame {
    const id = this.id();
    const depth = this.rng.pick([100, 1_000, 10_000, 100_000, 500_000]);
    const open = this.rng.chance(0.5) ? '[' : '{"a":';
    const close = open === '[' ? ']' : '}';
    const value = open.repeat(depth) + (open === '[' ? '' : '1') + close.repeat(depth);
    const method = this.rng.pick(['state.set', 'system.ping', 'log.write', 'fs.write']);
    const params = method === 'state.set' ? `{"key":"deep","value":${value}}` : method === 'log.write' ? `{"level":"info","message":"deep","data":${value}}` : `{"x":${value}}`;
    return { data: `{"id":${JSON.stringify(id)},"jsonrpc":"2.0","method":"${method}","params":${params}}`, binary: false, expect: { kind: 'id', id }, category: 'deep' };
  }

  private huge(): FuzzFrame {
    const id = this.id();
    const size = this.rng.pick([64 * 1024, 1024 * 1024, 3 * 1024 * 1024, 5 * 1024 * 1024]);
    const s = 'h'.repeat(size);
    const variant = this.rng.int(0, 2);
    const data = variant === 0 ? this.request(id, 'state.set', { key: 'huge', value: s }) : variant === 1 ? this.request(id, s.slice(0, 256 * 1024), undefined) : this.request(id, 'fs.write', { path: 'huge.txt', content: s });
    return { data, binary: false, expect: { kind: 'id', id }, category: 'huge' };
  }

  private invalidUtf8(): FuzzFrame {
    const id = this.id();
    const text = this.request(id, 'state.set', { key: 'utf8', value: `AAAA${this.rng.text(20)}` });
    const at = text.indexOf('AAAA');
    const bad = this.rng.pick([[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0x80]]);
    const bytes = Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(bad), Buffer.from(text.slice(at))]);
    return { data: bytes, binary: false, expect: { kind: 'id', id }, category: 'invalid-utf8' };
  }

  private binary(): FuzzFrame {
    if (this.rng.chance(0.5)) {
      // Binary frames are not read, so even one that holds an id is answered with id null.
      return { data: Buffer.from(this.request(this.id(), 'system.ping', undefined)), binary: true, expect: { kind: 'null' }, category: 'binary' };
    }
    const bytes = Buffer.alloc(this.rng.int(0, 2048));
    for (let i = 0; i < bytes.length; i++) bytes[i] = this.rng.int(0, 255);
    return { data: bytes, binary: true, expect: { kind: 'null' }, category: 'binary' };
  }

  private duplicate(): FuzzFrame {
    if (this.sent.length === 0) return this.valid();
    const id = this.rng.pick(this.sent);
    const method = this.rng.pick(['system.ping', 'state.get', 'state.list', 'fs.list']);
    return { data: this.request(id, method, this.validParams(method)), binary: false, expect: { kind: 'id', id }, category: 'duplicate-id' };
  }

  private garbage(): FuzzFrame {
    const r = this.rng;
    const v = r.int(0, 3);
    const data = v === 0 ? `#${r.text(100)}` : v === 1 ? `{"id":1,"jsonrpc":"2.0","method":"system.ping"`.slice(0, r.int(1, 40)) : v === 2 ? '' : `{${r.text(50)}`;
    // '{' + random text is almost never JSON, and a truncated prefix never is.
    if (v === 3) {
      try {
        JSON.parse(data);
        return this.garbage();
      } catch {
        // Not JSON: a parse error, as intended.
      }
    }
    return { data, binary: false, expect: { kind: 'null' }, category: 'garbage' };
  }

  private notification(): FuzzFrame {
    return { data: JSON.stringify({ jsonrpc: '2.0', method: this.method(), params: {} }), binary: false, expect: { kind: 'none' }, category: 'notification' };
  }

  private mutated(): FuzzFrame {
    const r = this.rng;
    // Not of the form of real ids, so that no mutation of it can pass for one.
    const id = `~${this.seq++}`;
    const method = this.method();
    const bytes = Buffer.from(this.request(id, method, this.validParams(method)));
    const out = [...bytes];
    for (let i = r.int(1, 4); i > 0; i--) {
      const at = r.int(0, Math.max(0, out.length - 1));
      const op = r.int(0, 3);
      if (op === 0) out[at] = r.int(0, 255);
      else if (op === 1) out.splice(at, 0, r.int(0, 255));
      else if (op === 2) out.splice(at, 1);
      else out.splice(at, 0, ...out.slice(at, at + r.int(1, 16)));
    }
    return { data: Buffer.from(out), binary: false, expect: { kind: 'maybe' }, category: 'mutated' };
  }

  /** One frame, of a category drawn by weight. */
  next(): FuzzFrame {
    const x = this.rng.next();
    if (x < 0.4) return this.valid();
    if (x < 0.57) return this.wrongTypes();
    if (x < 0.59) return this.deep();
    if (x < 0.5903) return this.huge();
    if (x < 0.63) return this.invalidUtf8();
    if (x < 0.67) return this.binary();
    if (x < 0.72) return this.duplicate();
    if (x < 0.78) return this.garbage();
    if (x < 0.8) return this.notification();
    return this.mutated();
  }

  /** A flood: many pings at once. */
  flood(n: number): FuzzFrame[] {
    return Array.from({ length: n }, () => {
      const id = this.id();
      return { data: this.request(id, 'system.ping', undefined), binary: false, expect: { kind: 'id', id }, category: 'flood' };
    });
  }
}

/** Why `m` is not a valid JSON-RPC 2.0 response or server notification, or undefined. */
export function invalidResponse(m: unknown): string | undefined {
  if (!m || typeof m !== 'object' || Array.isArray(m)) return 'not an object';
  const o = m as Record<string, unknown>;
  if (o.jsonrpc !== '2.0') return 'jsonrpc is not "2.0"';
  if ('method' in o) return typeof o.method === 'string' && !('id' in o) ? undefined : 'bad notification';
  if (!('id' in o)) return 'no id';
  if (!(o.id === null || typeof o.id === 'string' || typeof o.id === 'number')) return 'bad id type';
  const hasResult = 'result' in o;
  const hasError = 'error' in o;
  if (hasResult === hasError) return 'must have exactly one of result and error';
  if (hasError) {
    const e = o.error as Record<string, unknown> | null;
    if (!e || typeof e !== 'object' || !Number.isInteger(e.code) || typeof e.message !== 'string' || e.message.length === 0) return 'bad error object';
  }
  return undefined;
}
