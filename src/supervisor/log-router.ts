// The supervisor owns every log file: it reads each child's stdout (NDJSON records) and
// stderr (raw text, e.g. a crash's stack trace) and appends them to the right file.
// Daemons are trusted to route their lines (`<env>\t{json}`); an executor's lines always go
// to its own environment's log, with `env` and `pid` stamped here so it can't forge them.
import fs from 'node:fs';
import path from 'node:path';
import { RotatingFile, type LogLoss, type RotationPolicy } from '../logging/rotating-file.js';
import { SERVER_LOG } from '../config/paths.js';
import { AUDIT_PREFIX, LOG_AND_AUDIT_PREFIX } from '../logging/audit-line.js';
import type { AuditTrail } from './audit-trail.js';

const MAX_LINE = 64 * 1024;

export class LogRouter {
  private readonly files = new Map<string, RotatingFile>();
  /** Where `audit:<env>` lines of trusted daemons go. */
  audit: AuditTrail | undefined;

  constructor(private readonly dir: string, private readonly policy: RotationPolicy, private readonly targets: Set<string>) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
    this.targets.add(SERVER_LOG);
  }

  file(target: string): RotatingFile {
    const name = this.targets.has(target) ? target : SERVER_LOG;
    let f = this.files.get(name);
    if (!f) {
      f = new RotatingFile(path.join(this.dir, `${name}.log`), this.policy, (loss) => this.reportLoss(name, loss));
      this.files.set(name, f);
    }
    return f;
  }

  write(target: string, record: Record<string, unknown>): void {
    this.file(target).write(JSON.stringify({ time: Date.now(), level: 30, pid: process.pid, ...record }));
  }

  /** A line from a daemon: optionally `<target>\t` then a JSON record. */
  trustedLine(line: string, fallbackPid: number, component: string): void {
    if (!line) return;
    const tab = line.indexOf('\t');
    if (tab > 0 && tab < 48 && line.charCodeAt(tab + 1) === 123 /* { */) {
      const target = line.slice(0, tab);
      const record = line.slice(tab + 1);
      if (target.startsWith(AUDIT_PREFIX)) this.audit?.append(target.slice(AUDIT_PREFIX.length), record);
      else if (target.startsWith(LOG_AND_AUDIT_PREFIX)) {
        const env = target.slice(LOG_AND_AUDIT_PREFIX.length);
        this.file(env).write(record);
        this.audit?.append(env, record);
      } else this.file(target).write(record);
    } else if (line.charCodeAt(0) === 123) {
      this.file(SERVER_LOG).write(line);
    } else {
      this.write(SERVER_LOG, { msg: line.slice(0, MAX_LINE), pid: fallbackPid, component, raw: true });
    }
  }

  /** A line from an executor: parsed, bounded and re-stamped. */
  executorLine(env: string, pid: number, executorId: string, line: string): void {
    if (!line) return;
    let record: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(line.length > MAX_LINE ? '!' : line);
      record = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { msg: String(parsed) };
    } catch {
      record = { msg: line.slice(0, MAX_LINE), raw: true };
    }
    const level = typeof record.level === 'number' && [10, 20, 30, 40, 50, 60].includes(record.level) ? record.level : 30;
    const time = typeof record.time === 'number' ? record.time : Date.now();
    this.file(env).write(JSON.stringify({ ...record, time, level, msg: String(record.msg ?? ''), env, pid, executorId }));
  }

  /** The gap is written where it happened and in server.log, once the file takes writes again. */
  private reportLoss(name: string, loss: LogLoss): void {
    const total = this.files.get(name)?.lostLines ?? loss.lines;
    const record = { level: 40, msg: `${loss.lines} log lines could not be written to ${name}.log (${loss.error}) and were lost`, component: 'supervisor', file: `${name}.log`, lostLines: loss.lines, lostTotal: total, error: loss.error, since: loss.since, until: loss.until };
    this.write(name, record);
    if (name !== SERVER_LOG) this.write(SERVER_LOG, record);
  }

  stderr(target: string, pid: number, child: string, text: string): void {
    this.write(target, { level: 50, msg: text.slice(0, MAX_LINE), stream: 'stderr', child, pid, ...(target === SERVER_LOG ? {} : { env: target }) });
  }

  flush(): void {
    for (const f of this.files.values()) f.flush();
  }

  close(): void {
    for (const f of this.files.values()) f.close();
  }

  lostLines(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, f] of this.files) if (f.lostLines) out[name] = f.lostLines;
    return out;
  }
}

/** Splits a byte stream into lines, keeping the partial tail for the next chunk. */
export class LineSplitter {
  private tail = '';
  /** Inside a line too long to keep: drop until its end. */
  private skipping = false;
  constructor(private readonly onLine: (line: string) => void, private readonly onOversize: (bytes: number) => void = () => {}) {}
  push(chunk: Buffer): void {
    const text = this.tail + chunk.toString('utf8');
    const lines = text.split('\n');
    this.tail = lines.pop() ?? '';
    if (this.skipping && lines.length > 0) {
      lines.shift(); // the end of the dropped line
      this.skipping = false;
    }
    if (this.tail.length > MAX_LINE) {
      // Never split a record into fragments that would be written as separate (invalid) lines.
      this.onOversize(this.tail.length);
      this.tail = '';
      this.skipping = true;
    }
    for (const line of lines) {
      if (line.length > MAX_LINE) this.onOversize(line.length);
      else this.onLine(line);
    }
  }
  end(): void {
    if (this.tail) this.onLine(this.tail);
    this.tail = '';
  }
}
