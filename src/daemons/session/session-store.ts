// The session directory and session state, in SQLite (`state/sessions.db`): group-committed
// per tick and acknowledged once durable; a disk that refuses writes gives -32007 while reads
// go on, and the store recovers by itself (sqlite-store.ts).
import type Database from 'better-sqlite3';
import { ContinuumError } from '../../protocol/errors.js';
import type { OpenSessionRequest, OpenSessionResult, ShellState, StoredSession } from '../../protocol/internal.js';
import { SqliteStore } from './sqlite-store.js';

export { storageError } from './sqlite-store.js';

interface SessionRow {
  id: string;
  environment: string;
  label: string | null;
  created_at: number;
  last_active_at: number;
  executor_id: string;
}

const toSession = (r: SessionRow): StoredSession => ({
  sessionId: r.id,
  environment: r.environment,
  label: r.label,
  createdAt: r.created_at,
  lastActiveAt: r.last_active_at,
  executorId: r.executor_id,
});

function prepare(db: Database.Database) {
  return {
    get: db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id = ?'),
    insert: db.prepare('INSERT INTO sessions (id, environment, label, created_at, last_active_at, executor_id) VALUES (?, ?, ?, ?, ?, ?)'),
    rebind: db.prepare('UPDATE sessions SET executor_id = ?, last_active_at = ? WHERE id = ?'),
    touch: db.prepare('UPDATE sessions SET last_active_at = MAX(last_active_at, ?), commands = commands + ? WHERE id = ?'),
    delete: db.prepare('DELETE FROM sessions WHERE id = ?'),
    deleteKv: db.prepare('DELETE FROM kv WHERE session_id = ?'),
    deleteShell: db.prepare('DELETE FROM shell WHERE session_id = ?'),
    kvAll: db.prepare<[string], { key: string; value: string }>('SELECT key, value FROM kv WHERE session_id = ?'),
    // Writes are queued; they only land if the session still exists when they do.
    kvSet: db.prepare('INSERT INTO kv (session_id, key, value) SELECT @sid, @key, @value WHERE EXISTS (SELECT 1 FROM sessions WHERE id = @sid) ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value'),
    kvDelete: db.prepare('DELETE FROM kv WHERE session_id = ? AND key = ?'),
    kvCopy: db.prepare('INSERT INTO kv (session_id, key, value) SELECT ?, key, value FROM kv WHERE session_id = ?'),
    shellGet: db.prepare<[string], { cwd: string | null; env: string | null }>('SELECT cwd, env FROM shell WHERE session_id = ?'),
    shellSet: db.prepare('INSERT INTO shell (session_id, cwd, env) SELECT @sid, @cwd, @env WHERE EXISTS (SELECT 1 FROM sessions WHERE id = @sid) ON CONFLICT (session_id) DO UPDATE SET cwd = excluded.cwd, env = excluded.env'),
    shellCopy: db.prepare('INSERT INTO shell (session_id, cwd, env) SELECT ?, cwd, env FROM shell WHERE session_id = ?'),
    counts: db.prepare<[], { executor_id: string; n: number }>('SELECT executor_id, COUNT(*) AS n FROM sessions GROUP BY executor_id'),
    countsFor: db.prepare<[string], { executor_id: string; n: number }>('SELECT executor_id, COUNT(*) AS n FROM sessions WHERE environment = ? GROUP BY executor_id'),
    expired: db.prepare<[string, number], SessionRow>('SELECT * FROM sessions WHERE environment = ? AND last_active_at < ?'),
    byEnvironment: db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE environment = ? ORDER BY last_active_at DESC'),
    recent: db.prepare<[number], SessionRow & { commands: number }>(
      'SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY environment ORDER BY last_active_at DESC) AS n FROM sessions) WHERE n <= ? ORDER BY last_active_at DESC',
    ),
    totals: db.prepare<[], { environment: string; n: number }>('SELECT environment, COUNT(*) AS n FROM sessions GROUP BY environment'),
  };
}

export class SessionStore {
  private readonly sql: SqliteStore;
  private stmt!: ReturnType<typeof prepare>;
  /** session id → executor id, filled by executorOf; dropped wherever a binding changes. */
  private readonly owners = new Map<string, string>();

  constructor(file: string) {
    this.sql = new SqliteStore(file, 'the session store');
    this.sql.onOpen((db) => {
      db.exec(`
        CREATE TABLE IF NOT EXISTS sessions (
          id TEXT PRIMARY KEY, environment TEXT NOT NULL, label TEXT,
          created_at INTEGER NOT NULL, last_active_at INTEGER NOT NULL, executor_id TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS sessions_executor ON sessions(executor_id);
        CREATE INDEX IF NOT EXISTS sessions_environment ON sessions(environment, executor_id);
        CREATE TABLE IF NOT EXISTS kv (
          session_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (session_id, key));
        CREATE TABLE IF NOT EXISTS shell (session_id TEXT PRIMARY KEY, cwd TEXT, env TEXT);
      `);
      // Added after the first release: a store made before it gets the column here.
      const columns = db.prepare<[], { name: string }>('PRAGMA table_info(sessions)').all();
      if (!columns.some((c) => c.name === 'commands')) db.exec('ALTER TABLE sessions ADD COLUMN commands INTEGER NOT NULL DEFAULT 0');
      this.stmt = prepare(db);
      this.owners.clear();
    });
  }

  private get db(): Database.Database {
    return this.sql.db;
  }

  private writing<T>(fn: () => T): T {
    return this.sql.writing(fn);
  }

  private commit<T>(write: () => T): Promise<T> {
    return this.sql.commit(write);
  }

  /**
   * The executor a session is bound to, from memory after the first lookup: asked for every
   * state write an executor makes. Kept right by the only writers of the binding, below.
   */
  executorOf(sessionId: string): string | undefined {
    let id = this.owners.get(sessionId);
    if (id === undefined) {
      id = this.stmt.get.get(sessionId)?.executor_id;
      if (id !== undefined) this.owners.set(sessionId, id);
    }
    return id;
  }

  get(sessionId: string): StoredSession | undefined {
    const row = this.stmt.get.get(sessionId);
    return row ? toSession(row) : undefined;
  }

  list(environment: string): StoredSession[] {
    return this.stmt.byEnvironment.all(environment).map(toSession);
  }

  /**
   * connect/join/fork in one transaction. `copyWorkspace` runs inside it for forks, so a
   * failed copy leaves no half-made session behind.
   */
  open(req: OpenSessionRequest, newId: () => string, copyWorkspace: (from: StoredSession, to: StoredSession) => void): OpenSessionResult {
    const now = Date.now();
    let touch: string | undefined;
    const result = this.writing(() => this.db.transaction((): OpenSessionResult => {
      const existing = req.sessionId ? this.get(req.sessionId) : undefined;
      if (req.mode === 'fork') {
        if (!req.sessionId) throw new ContinuumError('INVALID_PARAMS', 'invalid params: mode "fork" needs the sessionId of the session to fork', { issues: [{ path: ['sessionId'], message: 'required for fork' }] });
        if (!existing) throw new ContinuumError('SESSION_NOT_FOUND', `session ${req.sessionId} not found; it may have been closed or expired`);
        this.checkEnvironment(existing, req.environment);
        const created = this.insert(newId(), req.environment, req.label ?? existing.label, req.candidates, now);
        this.stmt.kvCopy.run(created.sessionId, existing.sessionId);
        this.stmt.shellCopy.run(created.sessionId, existing.sessionId);
        copyWorkspace(existing, created);
        return { session: created, action: 'forked' };
      }
      if (existing) {
        if (req.mode === 'new') throw new ContinuumError('SESSION_EXISTS', `session ${existing.sessionId} already exists; join it or choose another id`);
        this.checkEnvironment(existing, req.environment);
        let executorId = existing.executorId;
        // A replica that no longer exists (config shrank): rebind to the least loaded one.
        if (req.replicas.length > 0 && !req.replicas.includes(executorId)) {
          executorId = this.leastLoaded(req.environment, req.candidates);
          this.stmt.rebind.run(executorId, now, existing.sessionId);
          this.owners.delete(existing.sessionId);
        } else {
          // A plain join writes nothing it needs: it still works on a full or read-only disk.
          touch = existing.sessionId;
        }
        return { session: { ...existing, executorId, lastActiveAt: now }, action: 'joined' };
      }
      if (req.mode === 'join') throw new ContinuumError('SESSION_NOT_FOUND', `session ${req.sessionId ?? '(none given)'} not found; connect with mode "auto" or "new" to create it`);
      const created = this.insert(req.sessionId ?? newId(), req.environment, req.label ?? null, req.candidates, now);
      return { session: created, action: 'created' };
    })());
    if (touch !== undefined) {
      try {
        this.touch([touch], now);
      } catch (err) {
        if (!(err instanceof ContinuumError) || err.code !== 'CONTINUUM_STORAGE_UNAVAILABLE') throw err;
      }
    }
    return result;
  }

  private checkEnvironment(session: StoredSession, environment: string): void {
    if (session.environment !== environment) {
      throw new ContinuumError('SESSION_WRONG_ENVIRONMENT', `session ${session.sessionId} belongs to environment "${session.environment}", not "${environment}"`);
    }
  }

  private insert(id: string, environment: string, label: string | null, replicas: string[], now: number): StoredSession {
    const executorId = this.leastLoaded(environment, replicas);
    // Rows a write raced in after an earlier session of this id was deleted must not leak in.
    this.stmt.deleteKv.run(id);
    this.stmt.deleteShell.run(id);
    this.stmt.insert.run(id, environment, label, now, now, executorId);
    this.owners.delete(id);
    return { sessionId: id, environment, label, createdAt: now, lastActiveAt: now, executorId };
  }

  private leastLoaded(environment: string, replicas: string[]): string {
    if (replicas.length === 0) throw new ContinuumError('EXECUTOR_UNAVAILABLE', `environment ${environment} has no executors`);
    const counts = new Map(this.stmt.countsFor.all(environment).map((r) => [r.executor_id, r.n]));
    let best = replicas[0]!;
    for (const id of replicas) if ((counts.get(id) ?? 0) < (counts.get(best) ?? 0)) best = id;
    return best;
  }

  delete(sessionId: string): void {
    this.writing(() =>
      this.db.transaction(() => {
        this.owners.delete(sessionId);
        this.stmt.delete.run(sessionId);
        this.stmt.deleteKv.run(sessionId);
        this.stmt.deleteShell.run(sessionId);
      })(),
    );
  }

  /** Marks sessions active at `at`, adding the commands the edge routed to them since the last touch. */
  touch(sessionIds: string[], at: number, commands: Record<string, number> = {}): void {
    this.writing(() =>
      this.db.transaction(() => {
        for (const id of sessionIds) {
          const n = commands[id];
          this.stmt.touch.run(at, typeof n === 'number' && n > 0 ? Math.floor(n) : 0, id);
        }
      })(),
    );
  }

  recent(perEnvironment: number): (StoredSession & { commands: number })[] {
    return this.stmt.recent.all(perEnvironment).map((r) => ({ ...toSession(r), commands: r.commands }));
  }

  /** environment → number of sessions. */
  totals(): Record<string, number> {
    return Object.fromEntries(this.stmt.totals.all().map((r) => [r.environment, r.n]));
  }

  expired(environment: string, idleMs: number, now = Date.now()): StoredSession[] {
    return this.stmt.expired.all(environment, now - idleMs).map(toSession);
  }

  counts(): Record<string, number> {
    return Object.fromEntries(this.stmt.counts.all().map((r) => [r.executor_id, r.n]));
  }

  kv(sessionId: string): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const { key, value } of this.stmt.kvAll.all(sessionId)) out[key] = JSON.parse(value);
    return out;
  }

  shell(sessionId: string): ShellState {
    const row = this.stmt.shellGet.get(sessionId);
    return { cwd: row?.cwd ?? null, env: row?.env ? (JSON.parse(row.env) as Record<string, string>) : null };
  }

  async setKv(sessionId: string, key: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value ?? null);
    await this.commit(() => this.stmt.kvSet.run({ sid: sessionId, key, value: text }));
  }

  async deleteKv(sessionId: string, key: string): Promise<void> {
    await this.commit(() => this.stmt.kvDelete.run(sessionId, key));
  }

  async setShell(sessionId: string, state: ShellState): Promise<void> {
    await this.commit(() => this.stmt.shellSet.run({ sid: sessionId, cwd: state.cwd, env: state.env ? JSON.stringify(state.env) : null }));
  }

  close(): void {
    this.sql.close();
  }
}
