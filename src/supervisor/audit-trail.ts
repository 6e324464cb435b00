// `<home>/audit/<env>.jsonl`, written by the supervisor alone: daemons hand it records
// (`audit:<env>\t{json}` lines), and it stamps each with `seq` and the SHA-256 of the line
// before it. Appends are batched per tick; the head file follows at most every 200 ms.
import fs from 'node:fs';
import path from 'node:path';
import { GENESIS, headPath, lineHash } from '../logging/audit-chain.js';

const HEAD_EVERY_MS = 200;

class ChainFile {
  private fd: number | undefined;
  private seq = 0;
  private prev = GENESIS;
  private buffer: string[] = [];
  private headTimer: NodeJS.Timeout | undefined;
  lostRecords = 0;

  constructor(readonly file: string) {
    this.resume();
  }

  /** Continues the chain an earlier supervisor left. */
  private resume(): void {
    let text: string;
    try {
      const size = fs.statSync(this.file).size;
      const fd = fs.openSync(this.file, 'r');
      const len = Math.min(size, 1024 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      fs.closeSync(fd);
      text = buf.toString('utf8');
    } catch {
      return;
    }
    const lines = text.split('\n').filter(Boolean);
    const last = lines.at(-1);
    if (!last) return;
    if (!text.endsWith('\n')) fs.appendFileSync(this.file, '\n'); // a torn last write stays visible as a broken record
    try {
      this.seq = Number((JSON.parse(last) as { seq?: number }).seq) || 0;
    } catch {
      this.seq = 0;
    }
    this.prev = lineHash(last);
  }

  append(json: string): void {
    this.seq++;
    const line = `${json.slice(0, -1)},"seq":${this.seq},"prev":"${this.prev}"}`;
    this.prev = lineHash(line);
    this.buffer.push(`${line}\n`);
  }

  flush(): void {
    if (this.buffer.length === 0) return;
    const text = this.buffer.join('');
    const n = this.buffer.length;
    this.buffer = [];
    try {
      this.fd ??= fs.openSync(this.file, 'a', 0o600);
      fs.writeSync(this.fd, text);
    } catch {
      // A full disk must not stop commands; the gap shows as a broken chain, and the count here.
      this.lostRecords += n;
    }
    this.headTimer ??= setTimeout(() => this.writeHead(), HEAD_EVERY_MS);
  }

  writeHead(): void {
    clearTimeout(this.headTimer);
    this.headTimer = undefined;
    const head = headPath(this.file);
    try {
      fs.writeFileSync(`${head}.tmp`, JSON.stringify({ seq: this.seq, hash: this.prev }), { mode: 0o600 });
      fs.renameSync(`${head}.tmp`, head);
    } catch {
      // Next time.
    }
  }

  close(): void {
    this.flush();
    this.writeHead();
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

export class AuditTrail {
  private readonly files = new Map<string, ChainFile>();
  private scheduled = false;

  constructor(private readonly dir: string, private readonly environments: ReadonlySet<string>) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** `json` is one record from a trusted daemon; an unknown environment's record is dropped. */
  append(environment: string, json: string): void {
    if (!this.environments.has(environment) || json.charCodeAt(0) !== 123 || !json.endsWith('}')) return;
    let f = this.files.get(environment);
    if (!f) this.files.set(environment, (f = new ChainFile(path.join(this.dir, `${environment}.jsonl`))));
    f.append(json);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    for (const f of this.files.values()) f.flush();
  }

  close(): void {
    for (const f of this.files.values()) f.close();
  }
}
