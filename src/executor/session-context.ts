// An executor's in-memory view of one session: its key-value state and shell state (both
// written through to the session daemon), its workspace, and the queue that keeps its
// commands in the order they were sent.
import type { SessionDaemonClient } from '../bus/session-client.js';
import v8 from 'node:v8';
import type { LoadedSession, ShellState } from '../protocol/internal.js';

/** About how much memory a stored value holds: its JSON size, near enough for a budget. */
function sizeOf(key: string, value: unknown): number {
  if (typeof value === 'string') return key.length + value.length + 16;
  if (value === null || typeof value !== 'object') return key.length + 16;
  return key.length + (JSON.stringify(value)?.length ?? 0) + 16;
}

export class SessionContext {
  kv: Map<string, unknown>;
  /** sizeOf each key's value, and their sum: what the cache budgets. */
  private sizes = new Map<string, number>();
  bytes = 0;
  shell: ShellState;
  /** Identifies this incarnation of the session id (a closed id can be created again). */
  readonly createdAt: number;
  /** Set when the link to the session daemon dropped: evictions may have been missed. */
  stale = false;
  readonly workspace: string;
  private tail: Promise<unknown> = Promise.resolve();
  /** Kills the process groups of commands still running, when the session ends. */
  readonly running = new Set<() => void>();
  evicted = false;

  constructor(readonly sessionId: string, loaded: LoadedSession, private readonly onEvict: (sessionId: string) => void = () => {}) {
    this.kv = this.load(loaded.kv);
    this.shell = loaded.shell;
    this.workspace = loaded.workspace;
    this.createdAt = loaded.session.createdAt;
  }

  /** The shell state has not reached the daemon yet (a save failed and is being retried). */
  private shellDirty = false;
  private saveRetry: NodeJS.Timeout | undefined;

  /** Takes the daemon's copy (every acknowledged write went through, so it is the latest). */
  refresh(loaded: LoadedSession): void {
    this.kv = this.load(loaded.kv);
    if (!this.shellDirty) this.shell = loaded.shell;
    this.stale = false;
  }

  setKv(key: string, value: unknown): void {
    const size = sizeOf(key, value);
    this.bytes += size - (this.sizes.get(key) ?? 0);
    this.sizes.set(key, size);
    this.kv.set(key, value);
  }

  deleteKv(key: string): void {
    this.bytes -= this.sizes.get(key) ?? 0;
    this.sizes.delete(key);
    this.kv.delete(key);
  }

  private load(kv: Record<string, unknown>): Map<string, unknown> {
    this.sizes = new Map();
    this.bytes = 0;
    const map = new Map<string, unknown>();
    for (const [key, value] of Object.entries(kv)) {
      const size = sizeOf(key, value);
      this.sizes.set(key, size);
      this.bytes += size;
      map.set(key, value);
    }
    return map;
  }

  /** Saves the shell state; on failure keeps retrying in the background until it lands. */
  async saveShell(daemon: Pick<SessionDaemonClient, 'call'>, onError: (err: Error) => void): Promise<void> {
    clearTimeout(this.saveRetry);
    const shell = this.shell;
    try {
      await daemon.call('shell.save', { sessionId: this.sessionId, shell });
      if (this.shell === shell) this.shellDirty = false;
    } catch (err) {
      this.shellDirty = true;
      onError(err as Error);
      if ((err as { code?: string }).code === 'CONTINUUM_SESSION_NOT_FOUND' || this.evicted) return;
      this.saveRetry = setTimeout(() => void this.saveShell(daemon, () => undefined), 1_000);
      this.saveRetry.unref();
    }
  }

  /** Commands queued or running; a context with none can be dropped from the cache. */
  pending = 0;

  /** Runs `task` after every command queued before it. */
  enqueue<T>(task: () => Promise<T> | T): Promise<T> {
    this.pending++;
    const run = this.tail.then(task, task);
    this.tail = run.catch(() => undefined).finally(() => this.pending--);
    return run;
  }

  evict(): void {
    this.evicted = true;
    clearTimeout(this.saveRetry);
    for (const kill of this.running) kill();
    this.running.clear();
    this.onEvict(this.sessionId);
  }
}

/** Idle sessions beyond this many are dropped from memory (they reload on next use). */
const MAX_CACHED_SESSIONS = 2_000;
/**
 * Nor may idle sessions' state hold more than a quarter of the heap V8 may grow to: many
 * sessions with big values (a fuzzer's, or a busy agent's) would otherwise fill it.
 */
const DEFAULT_CACHE_BYTES = Math.floor(v8.getHeapStatistics().heap_size_limit / 4);

export class SessionCache {
  /** In least-recently-used order (a hit moves a session to the end). */
  private readonly sessions = new Map<string, SessionContext>();
  private readonly loading = new Map<string, Promise<SessionContext>>();

  /** `onEvict`: what else goes with a session (a sandboxed executor's per-session /tmp). */
  constructor(
    private readonly daemon: Pick<SessionDaemonClient, 'call'>,
    private readonly onEvict?: (sessionId: string) => void,
    private readonly maxBytes = DEFAULT_CACHE_BYTES,
  ) {}

  get(sessionId: string): SessionContext | Promise<SessionContext> {
    const cached = this.sessions.get(sessionId);
    if (cached && !cached.stale) {
      this.sessions.delete(sessionId);
      this.sessions.set(sessionId, cached);
      return cached;
    }
    let p = this.loading.get(sessionId);
    if (!p) {
      p = this.daemon
        .call<LoadedSession>('session.load', { sessionId })
        .then(
          (loaded) => {
            const current = this.sessions.get(sessionId);
            // Same incarnation: keep the context (and its command queue), refresh its data.
            if (current && current.createdAt === loaded.session.createdAt) {
              current.refresh(loaded);
              return current;
            }
            current?.evict();
            const ctx = new SessionContext(sessionId, loaded, this.onEvict);
            this.sessions.set(sessionId, ctx);
            this.trim();
            return ctx;
          },
          (err: unknown) => {
            // Closed or expired while we weren't listening.
            if ((err as { code?: string }).code === 'CONTINUUM_SESSION_NOT_FOUND') {
              this.evict(sessionId);
              throw err;
            }
            // The daemon is unreachable, so nobody can be closing or re-creating sessions
            // either: keep serving what we have (still marked stale) rather than go dark.
            const current = this.sessions.get(sessionId);
            if (current) return current;
            throw err;
          },
        )
        .finally(() => this.loading.delete(sessionId));
      this.loading.set(sessionId, p);
    }
    return p;
  }

  /** Drops idle sessions, least recently used first, while there are too many or they hold too much (at each load). */
  private trim(): void {
    let bytes = 0;
    for (const ctx of this.sessions.values()) bytes += ctx.bytes;
    if (this.sessions.size <= MAX_CACHED_SESSIONS && bytes <= this.maxBytes) return;
    for (const [id, ctx] of this.sessions) {
      if (this.sessions.size <= MAX_CACHED_SESSIONS * 0.9 && bytes <= this.maxBytes * 0.9) break;
      if (ctx.pending === 0 && ctx.running.size === 0) {
        this.sessions.delete(id);
        bytes -= ctx.bytes;
      }
    }
  }

  /** Every cached session is checked against the daemon again at its next use. */
  markAllStale(): void {
    for (const s of this.sessions.values()) s.stale = true;
  }

  evict(sessionId: string): void {
    this.sessions.get(sessionId)?.evict();
    this.sessions.delete(sessionId);
  }

  killAll(): void {
    for (const s of this.sessions.values()) s.evict();
  }
}
