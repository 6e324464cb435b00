// Messages between Continuum's own processes (never on the public wire).
import { z } from 'zod';
import type { Config } from '../config/schema.js';

export type ChildRole = 'session-daemon' | 'websocket-daemon' | 'renderer-daemon' | 'browser-daemon' | 'egress-proxy' | 'executor';

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
  /**
   * An executor whose environment has a network allowlist: the egress proxy's Unix socket,
   * as this executor sees it (the sandbox may bind it at another path).
   */
  egressSocket?: string;
  /** How this child's previous process ended (the edge: why its in-flight commands were lost). */
  previousExit?: ExitRecord;
  /** Only the edge: signs the dashboard's session cookies (new each run of the supervisor). */
  dashboardKey?: string;
  /** Set for a confined executor: what its sandbox is, as seen from the inside. */
  sandbox?: SandboxBoot;
  /** Executors: what of the environment's sandbox profile this host can't enforce. */
  sandboxWarnings?: string[];
  /** Session daemon: the uid/gid that owns each confined environment's workspaces. */
  workspaceOwners?: Record<string, { uid: number; gid: number }>;
}

/** One step of building a sandbox root; `dest` defaults to the same path as `src`. */
export type MountOp =
  | { op: 'ro-bind' | 'bind' | 'dev-bind'; src: string; dest?: string }
  | { op: 'symlink'; target: string; dest: string }
  | { op: 'tmpfs' | 'proc' | 'dev'; dest: string; perms?: string }
  | { op: 'file'; src: string; dest: string };

export interface SandboxBoot {
  mechanism: 'bubblewrap' | 'unshare';
  uid: number;
  gid: number;
  /** Where bwrap is, to give each session's shell its own nested sandbox (null: the util-linux fallback, none). */
  bwrap: string | null;
  /** The read-only system part of a shell's root. */
  shellMounts: MountOp[];
  /** The shells' seccomp program (a path inside the sandbox), when seccomp is enforced. */
  shellSeccomp: string | null;
  seccomp: boolean;
  /** The executor's own cgroup directories, bound read-only inside (controller → path). */
  cgroup: { version: 1 | 2; dirs: Record<string, string> } | null;
  limits: { memory?: number; cpu?: number; pids?: number };
  network: 'none' | 'host' | 'allow';
  /** Host paths that must not be visible inside (attestation checks each). */
  hidden: string[];
  /** What of the profile is not enforced on this host. */
  warnings: string[];
  strict: boolean;
}

export const attestationSchema = z.object({
  ok: z.boolean(),
  at: z.number(),
  checks: z.array(z.object({ name: z.string().max(64), ok: z.boolean(), detail: z.string().max(512) })).max(64),
});
export type Attestation = z.infer<typeof attestationSchema>;

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
  /** The last exit of this executor (null before any). */
  lastExit: z.object({ pid: z.number().int(), code: z.number().int().nullable(), signal: z.string().nullable(), killedFor: z.string().nullable(), oom: z.string().optional() }).nullable(),
});
export type ExecutorStatus = z.infer<typeof executorStatusSchema>;

/** Supervisor → child, over the IPC channel. */
export type SupervisorMessage =
  | { t: 'ping'; seq: number }
  | { t: 'activate' }
  /** A confined executor's host pid (inside its pid namespace it can't see it). */
  | { t: 'identity'; pid: number }
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
  z.object({ t: z.literal('attest'), result: attestationSchema }),
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

/**
 * The session daemon tells observers (the browser daemon, which keeps a browser context per
 * session) that a session ended, as event `session.ended`; they check with `session.lookup`
 * ({ sessionIds } → this) after their link was down, when events may have been lost.
 */
export interface SessionEnded {
  sessionId: string;
  environment: string;
  createdAt: number;
}
export type SessionLookupResult = Record<string, { environment: string; createdAt: number } | null>;
export const sessionLookupSchema = z.object({ sessionIds: z.array(z.string().max(128)).max(10_000) }).strict();
/** How a child last exited, as the supervisor saw it (for the ledger's `lost` reasons). */
export interface ExitRecord {
  pid: number;
  code: number | null;
  signal: string | null;
  /** Why the supervisor itself killed it (missed heartbeats, not ready in time), if it did. */
  killedFor: string | null;
  /** Set when the kernel killed it for crossing its memory limit: e.g. "memory limit (256 MiB)". */
  oom?: string;
}
