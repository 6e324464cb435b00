// The dashboard's live feed: JSON-RPC 2.0 over the WebSocket at /dashboard/feed, between
// the page (web/) and the renderer daemon. The page imports these types; the daemon checks
// the page's requests with these schemas.
import { z } from 'zod';
import type { ProcessRow, ProcessTable } from './control.js';
import { logLevelSchema } from './methods/log.js';
import type { processInfo } from './methods/process.js';
import type { ResultOf } from './method.js';
import { sessionIdSchema } from './method.js';

export const FEED_PATH = '/dashboard/feed';

export type { ProcessRow, ProcessTable };
export type ProcessInfo = ResultOf<typeof processInfo>;

/** [epoch ms, CPU %, RSS bytes]: one point of a process's chart. */
export type Sample = [number, number, number];

/** An environment as configured (its executors report what really runs in `dashboard.processInfo`). */
export interface EnvironmentSummary {
  name: string;
  replicas: number;
  commands: string[];
  sandbox: Record<string, unknown>;
}

/** A state change of a supervised child, as the supervisor pushed it. */
export interface ProcessEvent {
  time: number;
  id: string;
  environment: string;
  state: string;
  pid: number | null;
  restarts: number;
  reason: string | null;
}

export interface SessionRow {
  sessionId: string;
  environment: string;
  label: string | null;
  executorId: string;
  executorPid: number | null;
  createdAt: number;
  lastActiveAt: number;
  /** Commands routed to the session (counted by the edge, a few seconds behind). */
  commands: number;
}

/** One line of a log file: its record, or the raw text if it was not JSON. */
export interface LogLine {
  seq: number;
  record: Record<string, unknown>;
}

export interface CommandEntry {
  time: number;
  method: string;
  outcome: string;
  durationMs: number | null;
  code: number | null;
  requestId: string | number | null;
}

export interface ArtifactEntry {
  name: string;
  bytes: number;
  mtimeMs: number;
  /** Where the page fetches it (same origin, cookie-authenticated). */
  url: string;
}

export interface SessionDetail {
  session: SessionRow;
  /** The most recent first, from the environment's log. */
  commands: CommandEntry[];
  artifacts: ArtifactEntry[];
}

/** Server → page notifications, by method. */
export interface FeedNotifications {
  'dashboard.hello': { environments: EnvironmentSummary[]; chartWindowMs: number };
  'dashboard.processes': { at: number; table: ProcessTable; samples: Record<string, Sample> };
  'dashboard.history': { history: Record<string, Sample[]> };
  'dashboard.processInfo': { executors: Record<string, ProcessInfo | null> };
  'dashboard.events': { events: ProcessEvent[] };
  'dashboard.sessions': { sessions: SessionRow[]; totals: Record<string, number> };
  'logs.lines': { environment: string; lines: LogLine[]; reset: boolean; dropped: number };
}

export const logFilterSchema = z
  .object({
    environment: z.string().min(1).max(64),
    sessionId: sessionIdSchema.optional(),
    level: logLevelSchema.optional(),
    text: z.string().max(256).optional(),
  })
  .strict();
export type LogFilter = z.infer<typeof logFilterSchema>;

/** Page → server requests: params schema, and the result type. */
export const feedRequests = {
  'logs.follow': logFilterSchema,
  'logs.stop': z.object({}).strict().optional(),
  'sessions.detail': z.object({ sessionId: sessionIdSchema }).strict(),
} as const;

export interface FeedResults {
  'logs.follow': { ok: true };
  'logs.stop': { ok: true };
  'sessions.detail': SessionDetail;
}
