// Messages between Continuum's own processes (never on the public wire).
import { z } from 'zod';
import type { Config } from '../config/schema.js';

export type ChildRole = 'session-daemon' | 'websocket-daemon' | 'renderer-daemon' | 'browser-daemon' | 'executor';

/** What a child learns at spawn, through the CONTINUUM_CHILD environment variable. */
export interface ChildBoot {
  role: ChildRole;
  name: string;
  home: string;
  config: Config;
  /** Proof of identity for the session daemon's socket: HMAC(busKey, "<role>:<id>"). */
  busProof: string;
  /** The supervisor's namespace ids, so an executor can tell which ones it shares. */
  supervisorNamespaces: Record<string, string>;
  executor?: { id: string; environment: string; replica: number };
  /** Only the session daemon gets the key itself, to verify proofs. */
  busKey?: string;
  /** A warm standby: boot, load everything, then wait for 'activate' before serving. */
  standby?: boolean;
  /** Only the edge: signs the dashboard's session cookies (new each run of the supervisor). */
  dashboardKey?: string;
}

export type ExecutorState = 'starting' | 'running' | 'restarting' | 'failed' | 'stopped';

export const executorStatusSchema = z.object({
  id: z.string(),
  environment: z.string(),
  replica: z.number().int(),
  state: z.enum(['starting', 'running', 'restarting', 'failed', 'stopped']),
  pid: z.number().int().nullable(),
  socket: z.string(),
  restarts: z.number().int(),
  retryAfterMs: z.number().int(),
  reason: z.string().nullable(),
  /** A system daemon serving a command namespace (renderer, browser), not an executor. */
  service: z.boolean().optional(),
});
export type ExecutorStatus = z.infer<typeof executorStatusSchema>;

/** Supervisor → child, over the IPC channel. */
export type SupervisorMessage =
  | { t: 'ping'; seq: number }
  | { t: 'activate' }
  | { t: 'executors'; executors: ExecutorStatus[]; services: ExecutorStatus[] }
  | { t: 'query'; seq: number; q: SupervisorQuery };

/** What the supervisor asks a child: the session daemon its counts, an executor its process.info. */
export type SupervisorQuery = 'sessionCounts' | 'processInfo';

/** Child → supervisor. Executors are not trusted: their messages are checked. */
export const childMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('ready'), port: z.number().int().optional() }),
  z.object({ t: z.literal('standby') }),
  z.object({ t: z.literal('pong'), seq: z.number() }),
  z.object({ t: z.literal('reply'), seq: z.number(), data: z.unknown() }),
  z.object({ t: z.literal('pgid'), op: z.enum(['add', 'remove']), pgid: z.number().int().positive() }),
]);
export type ChildMessage = z.infer<typeof childMessageSchema>;

/** A session as the session daemon stores it. */
export interface StoredSession {
  sessionId: string;
  environment: string;
  label: string | null;
  createdAt: number;
  lastActiveAt: number;
  executorId: string;
}

export const shellStateSchema = z
  .object({
    cwd: z.string().max(4096).nullable(),
    env: z.record(z.string().max(1024), z.string().max(128 * 1024)).nullable(),
  })
  .strict();
export type ShellState = z.infer<typeof shellStateSchema>;

/** What executors may send the session daemon; executors are not trusted. */
export const executorCallSchemas = {
  'session.load': z.object({ sessionId: z.string() }),
  'state.set': z.object({ sessionId: z.string(), key: z.string().min(1).max(512), value: z.unknown() }),
  'state.delete': z.object({ sessionId: z.string(), key: z.string().min(1).max(512) }),
  'shell.save': z.object({ sessionId: z.string(), shell: shellStateSchema }),
} as const;

/** What an executor loads when a session first reaches it. */
export interface LoadedSession {
  session: StoredSession;
  workspace: string;
  kv: Record<string, unknown>;
  shell: ShellState;
}

export interface OpenSessionRequest {
  environment: string;
  sessionId?: string;
  mode: 'auto' | 'new' | 'join' | 'fork';
  label?: string;
  /** Every executor id of the environment (a session bound elsewhere is rebound). */
  replicas: string[];
  /** Those serving now: a new or rebound session goes to the least loaded of these. */
  candidates: string[];
  /** Epoch ms after which the caller no longer waits: work finished later is undone. */
  deadline?: number;
}

export interface OpenSessionResult {
  session: StoredSession;
  action: 'created' | 'joined' | 'forked';
}
