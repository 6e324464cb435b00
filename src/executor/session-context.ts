// An executor's in-memory view of one session: its key-value state and shell state (both
// written through to the session daemon), its workspace, and the queue that keeps its
// commands in the order they were sent.
import type { SessionDaemonClient } from '../bus/session-client.js';
import type { LoadedSession, ShellState } from '../protocol/internal.js';

export class SessionContext {
  readonly kv: Map<string, unknown>;
  shell: ShellState;
  readonly workspace: string;
  private tail: Promise<unknown> = Promise.resolve();
  /** Kills the process groups of commands still running, when the session ends. */
  readonly running = new Set<() => void>();
  evicted = false;

  constructor(readonly sessionId: string, loaded: LoadedSession) {
    this.kv = new Map(Object.entries(loaded.kv));
    this.shell = loaded.shell;
    this.workspace = loaded.workspace;
  }

  /** Runs `task` after every command queued before it. */
  enqueue<T>(task: () => Promise<T> | T): Promise<T> {
    const run = this.tail.then(task, task);
    this.tail = run.catch(() => undefined);
    return run;
  }

  evict(): void {
    this.evicted = true;
    for (const kill of this.running) kill();
    this.running.clear();
  }
}

export class SessionCache {
  private readonly sessions = new Map<string, SessionContext>();
  private readonly loading = new Map<string, Promise<SessionContext>>();

  constructor(private readonly daemon: SessionDaemonClient) {}

  get(sessionId: string): SessionContext | Promise<SessionContext> {
    const cached = this.sessions.get(sessionId);
    if (cached) return cached;
    let p = this.loading.get(sessionId);
    if (!p) {
      p = this.daemon
        .call<LoadedSession>('session.load', { sessionId })
        .then((loaded) => {
          const ctx = new SessionContext(sessionId, loaded);
          this.sessions.set(sessionId, ctx);
          return ctx;
        })
        .finally(() => this.loading.delete(sessionId));
      this.loading.set(sessionId, p);
    }
    return p;
  }

  evict(sessionId: string): void {
    this.sessions.get(sessionId)?.evict();
    this.sessions.delete(sessionId);
  }

  killAll(): void {
    for (const s of this.sessions.values()) s.evict();
  }
}
