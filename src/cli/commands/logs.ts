// `continuum logs ENV`: the environment's NDJSON log, readable, optionally followed
// across rotations and filtered by session, level and text.
import fs from 'node:fs';
import { homePaths } from '../../config/paths.js';
import { LogFollower } from '../../logging/log-follower.js';
import { levelNames, levelNumbers } from '../../logging/record.js';
import type { LogLevelName } from '../../protocol/methods/log.js';
import { CliError } from '../runtime.js';

export interface LogsOptions {
  home: string;
  follow?: boolean;
  session?: string;
  level?: LogLevelName;
  grep?: string;
  lines?: number;
  json?: boolean;
}

const SKIP = new Set(['time', 'level', 'msg', 'pid', 'env', 'sessionId', 'requestId', 'method', 'durationMs', 'outcome']);

export function formatRecord(rec: Record<string, unknown>): string {
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString().slice(11, 23) : '--:--:--.---';
  const level = (levelNames.get(Number(rec.level)) ?? 'info').toUpperCase().padEnd(5);
  const parts = [time, level];
  if (rec.sessionId) parts.push(`[${String(rec.sessionId).slice(0, 12)}]`);
  if (rec.method) parts.push(String(rec.method));
  parts.push(String(rec.msg ?? ''));
  if (rec.outcome) parts.push(`→ ${String(rec.outcome)}${rec.code !== undefined ? ` ${String(rec.code)}` : ''}`);
  if (typeof rec.durationMs === 'number') parts.push(`${rec.durationMs}ms`);
  if (rec.requestId !== undefined && rec.requestId !== null) parts.push(`id=${String(rec.requestId)}`);
  if (rec.pid) parts.push(`pid=${String(rec.pid)}`);
  const extra = Object.entries(rec).filter(([k]) => !SKIP.has(k) && k !== 'code');
  if (extra.length) parts.push(extra.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' '));
  return parts.join(' ');
}

function matcher(opts: LogsOptions): (line: string) => string | undefined {
  const minLevel = opts.level ? levelNumbers[opts.level] : 0;
  return (line) => {
    if (!line.trim()) return undefined;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return opts.session || opts.level ? undefined : line;
    }
    if (opts.session && rec.sessionId !== opts.session) return undefined;
    if (Number(rec.level ?? 30) < minLevel) return undefined;
    if (opts.grep && !line.includes(opts.grep)) return undefined;
    return opts.json ? line : formatRecord(rec);
  };
}

export async function logs(environment: string, opts: LogsOptions, write: (s: string) => void = (s) => process.stdout.write(s)): Promise<void> {
  const file = homePaths(opts.home).envLog(environment);
  if (!fs.existsSync(file) && !opts.follow) throw new CliError(`no log at ${file}; is "${environment}" an environment of this home?`);
  const match = matcher(opts);
  const follower = new LogFollower(file, (lines, initial) => {
    let out = lines.map(match).filter((l): l is string => l !== undefined);
    if (initial && opts.lines !== undefined) out = opts.lines === 0 ? [] : out.slice(-opts.lines);
    if (out.length) write(`${out.join('\n')}\n`);
  });
  follower.readInitial();
  if (!opts.follow) {
    follower.close();
    return;
  }
  follower.follow(200);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  follower.close();
}
