// The log record: one JSON object per line, with pino's field names and numeric levels
// (so `pino-pretty` reads our files), plus Continuum's own fields.
import type { LogLevelName } from '../protocol/methods/log.js';

export const levelNumbers: Record<LogLevelName, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
export const levelNames = new Map<number, LogLevelName>(Object.entries(levelNumbers).map(([k, v]) => [v, k as LogLevelName]));

export interface LogRecord {
  time: number;
  level: number;
  msg: string;
  pid?: number;
  env?: string;
  sessionId?: string;
  requestId?: string | number | null;
  method?: string;
  durationMs?: number;
  outcome?: string;
  [key: string]: unknown;
}

export function makeRecord(level: LogLevelName, msg: string, fields?: Record<string, unknown>): LogRecord {
  return { time: Date.now(), level: levelNumbers[level], msg, ...fields };
}
