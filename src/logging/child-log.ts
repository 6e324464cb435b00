// How a child process logs: NDJSON records on stdout, read by the supervisor, which owns
// the files. A trusted daemon may prefix a line with `<env>\t` to route it to that
// environment's log; an executor's lines always go to its own environment's log.
// Lines are batched: stdout on a pipe is synchronous on Linux.
import type { LogLevelName } from '../protocol/methods/log.js';
import { makeRecord, type LogRecord } from './record.js';

let pending: string[] = [];
let timer: NodeJS.Timeout | undefined;

/**
 * Lines are written every few ms rather than in the tick that made them: a write to the
 * supervisor's pipe wakes it, and on a small machine that wake-up lands on the path of the
 * next request. A burst is written at once when it grows large.
 */
const FLUSH_DELAY_MS = 5;
const FLUSH_LINES = 256;

function flush(): void {
  if (timer) {
    clearTimeout(timer);
    timer = undefined;
  }
  if (pending.length === 0) return;
  const text = pending.join('');
  pending = [];
  try {
    process.stdout.write(text);
  } catch {
    // The supervisor is gone; the IPC 'disconnect' handler ends this process.
  }
}

process.once('exit', flush);

export function emitLine(line: string): void {
  pending.push(line);
  if (pending.length >= FLUSH_LINES) flush();
  else timer ??= setTimeout(flush, FLUSH_DELAY_MS);
}

export function emitRecord(record: LogRecord, routeTo?: string): void {
  const json = JSON.stringify(record);
  emitLine(routeTo ? `${routeTo}\t${json}\n` : `${json}\n`);
}

export function flushLogs(): void {
  flush();
}

export interface Logger {
  log(level: LogLevelName, msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

/** A logger whose records carry `bindings` (e.g. `{ component: 'session-daemon' }`). */
export function childLogger(bindings: Record<string, unknown>, routeTo?: string): Logger {
  const log = (level: LogLevelName, msg: string, fields?: Record<string, unknown>) =>
    emitRecord(makeRecord(level, msg, { pid: process.pid, ...bindings, ...fields }), routeTo);
  return {
    log,
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    debug: (m, f) => log('debug', m, f),
  };
}
