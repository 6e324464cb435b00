// The Logs view's live tail: one follower per environment being watched, a bounded backlog
// of its recent lines, and per-viewer filters applied here, so a filtered view finds its
// few lines in a burst without the page seeing the rest.
import fs from 'node:fs';
import type { HomePaths } from '../../config/paths.js';
import { LogFollower } from '../../logging/log-follower.js';
import { levelNumbers } from '../../logging/record.js';
import type { CommandEntry, LogFilter, LogLine } from '../../protocol/dashboard.js';

/** Lines kept per environment, and sent to a viewer when it starts or changes its filter. */
export const BACKLOG_LINES = 5_000;
export const INITIAL_LINES = 1_000;
const TAIL_BYTES = 2 * 1024 * 1024;

interface Entry {
  line: LogLine;
  lower: string;
}

export interface LogViewer {
  filter: LogFilter;
  /** Called with the lines that match, as they arrive. */
  push(lines: LogLine[], reset: boolean): void;
}

function parse(raw: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(raw);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // Not JSON (a truncated or foreign line): shown as text.
  }
  return { msg: raw, raw: true };
}

export function matches(filter: LogFilter, entry: Entry): boolean {
  const r = entry.line.record;
  if (filter.sessionId !== undefined && r.sessionId !== filter.sessionId) return false;
  if (filter.level !== undefined && Number(r.level ?? 30) < levelNumbers[filter.level]) return false;
  if (filter.text && !entry.lower.includes(filter.text.toLowerCase())) return false;
  return true;
}

class EnvironmentLog {
  readonly viewers = new Set<LogViewer>();
  private readonly backlog: Entry[] = [];
  private seq = 0;
  private readonly follower: LogFollower;

  constructor(file: string) {
    this.follower = new LogFollower(file, (lines) => this.onLines(lines));
    this.follower.readInitial({ tailBytes: TAIL_BYTES });
    this.follower.follow(250);
  }

  close(): void {
    this.follower.close();
  }

  recent(filter: LogFilter): LogLine[] {
    const out: LogLine[] = [];
    for (let i = this.backlog.length - 1; i >= 0 && out.length < INITIAL_LINES; i--) {
      if (matches(filter, this.backlog[i]!)) out.push(this.backlog[i]!.line);
    }
    return out.reverse();
  }

  private onLines(lines: string[]): void {
    const entries = lines.map((raw) => ({ line: { seq: ++this.seq, record: parse(raw) }, lower: raw.toLowerCase() }));
    this.backlog.push(...entries);
    if (this.backlog.length > BACKLOG_LINES) this.backlog.splice(0, this.backlog.length - BACKLOG_LINES);
    for (const viewer of this.viewers) {
      const hits = entries.filter((e) => matches(viewer.filter, e)).map((e) => e.line);
      if (hits.length) viewer.push(hits, false);
    }
  }
}

export class LogWatch {
  private readonly logs = new Map<string, EnvironmentLog>();

  constructor(private readonly paths: HomePaths, private readonly files: ReadonlySet<string>) {}

  /** Starts a viewer on its filter's environment; returns what stops it. */
  follow(viewer: LogViewer): () => void {
    const env = viewer.filter.environment;
    if (!this.files.has(env)) throw new Error(`no log named "${env}"; known: ${[...this.files].join(', ')}`);
    const log = this.logs.get(env) ?? new EnvironmentLog(this.paths.envLog(env));
    this.logs.set(env, log);
    log.viewers.add(viewer);
    viewer.push(log.recent(viewer.filter), true);
    return () => {
      log.viewers.delete(viewer);
      if (log.viewers.size === 0 && this.logs.get(env) === log) {
        log.close();
        this.logs.delete(env);
      }
    };
  }

  /** A session's most recent commands (newest first), from the end of its environment's log. */
  recentCommands(environment: string, sessionId: string, limit = 50): CommandEntry[] {
    if (!this.files.has(environment)) return [];
    const needle = `"sessionId":${JSON.stringify(sessionId)}`;
    const out: CommandEntry[] = [];
    const file = this.paths.envLog(environment);
    for (const f of [file, `${file}.1`]) {
      const lines = readTail(f, TAIL_BYTES).filter((l) => l.includes(needle) && l.includes('"msg":"command"'));
      for (let i = lines.length - 1; i >= 0 && out.length < limit; i--) {
        const r = parse(lines[i]!);
        if (r.sessionId !== sessionId || r.msg !== 'command') continue;
        out.push({
          time: Number(r.time) || 0,
          method: String(r.method ?? '?'),
          outcome: String(r.outcome ?? '?'),
          durationMs: typeof r.durationMs === 'number' ? r.durationMs : null,
          code: typeof r.code === 'number' ? r.code : null,
          requestId: typeof r.requestId === 'string' || typeof r.requestId === 'number' ? r.requestId : null,
        });
      }
      if (out.length >= limit) break;
    }
    return out;
  }

  close(): void {
    for (const log of this.logs.values()) log.close();
    this.logs.clear();
  }
}

/** The whole lines within `bytes` of a file's end. */
function readTail(file: string, bytes: number): string[] {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return [];
  }
  try {
    const size = fs.fstatSync(fd).size;
    const start = Math.max(0, size - bytes);
    const buf = Buffer.alloc(size - start);
    fs.readSync(fd, buf, 0, buf.length, start);
    const lines = buf.toString('utf8').split('\n');
    if (start > 0) lines.shift();
    return lines.filter(Boolean);
  } finally {
    fs.closeSync(fd);
  }
}
