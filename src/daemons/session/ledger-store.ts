// The command ledger: one row per request the edge accepted, keyed by (session, request id),
// in the session store's database (WAL, synchronous=FULL). The edge's `ledger.write` calls
// are committed in the store's transaction of that tick, with the session writes, and
// acknowledged after it (group commit): an acknowledged state change survives a kill -9.
import type Database from 'better-sqlite3';
import type { LedgerOp } from '../../protocol/internal.js';
import type { CommandEntry, LostReason } from '../../protocol/methods/command.js';

interface Row {
  session_id: string;
  request_id: string;
  scope: string;
  environment: string;
  method: string;
  state: string;
  edge_run: string;
  executor_id: string | null;
  accepted_at: number;
  started_at: number | null;
  finished_at: number | null;
  exit: string | null;
  error: string | null;
  lost: string | null;
  result: string | null;
  cut: number;
}

export function toEntry(r: Row): CommandEntry {
  return {
    requestId: r.request_id,
    idScope: r.scope === 'connection' ? 'connection' : 'request',
    sessionId: r.session_id,
    environment: r.environment,
    method: r.method,
    state: r.state as CommandEntry['state'],
    executorId: r.executor_id,
    acceptedAt: r.accepted_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: r.finished_at === null ? null : r.finished_at - (r.started_at ?? r.accepted_at),
    exit: r.exit ? (JSON.parse(r.exit) as CommandEntry['exit']) : null,
    error: r.error ? (JSON.parse(r.error) as CommandEntry['error']) : null,
    lostReason: r.lost ? (JSON.parse(r.lost) as LostReason) : null,
    result: r.result === null ? null : (JSON.parse(r.result) as unknown),
    resultCut: r.cut === 1,
  };
}

/** Per op: null for a new accepted entry (or any other op), else the entry that already exists. */
export type WriteAnswer = (CommandEntry | null)[];

/** Creates the ledger table if needed and prepares its statements on `db`. */
function prepare(db: Database.Database) {
  db.exec(`
    CREATE TABLE IF NOT EXISTS ledger (
      session_id TEXT NOT NULL, request_id TEXT NOT NULL, scope TEXT NOT NULL, environment TEXT NOT NULL,
      method TEXT NOT NULL, state TEXT NOT NULL, edge_run TEXT NOT NULL, executor_id TEXT,
      accepted_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER,
      exit TEXT, error TEXT, lost TEXT, result TEXT, cut INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (session_id, request_id)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS ledger_env_time ON ledger(environment, accepted_at);
  `);
  return {
    get: db.prepare<[string, string], Row>('SELECT * FROM ledger WHERE session_id = ? AND request_id = ?'),
    insert: db.prepare('INSERT OR IGNORE INTO ledger (session_id, request_id, scope, environment, method, state, edge_run, executor_id, accepted_at) VALUES (?, ?, ?, ?, ?, \'accepted\', ?, ?, ?)'),
    start: db.prepare("UPDATE ledger SET state = 'started', started_at = ? WHERE session_id = ? AND request_id = ? AND state = 'accepted'"),
    finish: db.prepare(
      "UPDATE ledger SET state = ?, started_at = COALESCE(started_at, ?), finished_at = ?, exit = ?, error = ?, lost = ?, result = ?, cut = ? WHERE session_id = ? AND request_id = ? AND state IN ('accepted', 'started')",
    ),
    drop: db.prepare("DELETE FROM ledger WHERE session_id = ? AND request_id = ? AND state = 'accepted' AND edge_run = ?"),
    orphans: db.prepare<[string], Row>("SELECT * FROM ledger WHERE state IN ('accepted', 'started') AND edge_run != ?"),
    list: db.prepare<[string, number, number], Row>('SELECT * FROM ledger WHERE session_id = ? AND accepted_at >= ? ORDER BY accepted_at, request_id LIMIT ?'),
    deleteSession: db.prepare('DELETE FROM ledger WHERE session_id = ?'),
    expire: db.prepare("DELETE FROM ledger WHERE environment = ? AND accepted_at < ? AND state IN ('completed', 'failed', 'lost')"),
    count: db.prepare<[string], { n: number }>("SELECT COUNT(*) AS n FROM ledger WHERE environment = ? AND state IN ('completed', 'failed', 'lost')"),
    trim: db.prepare(
      "DELETE FROM ledger WHERE (session_id, request_id) IN (SELECT session_id, request_id FROM ledger WHERE environment = ? AND state IN ('completed', 'failed', 'lost') ORDER BY accepted_at LIMIT ?)",
    ),
    counts: db.prepare<[], { state: string; n: number }>('SELECT state, COUNT(*) AS n FROM ledger GROUP BY state'),
  };
}

export class LedgerStore {
  private db!: Database.Database;
  private stmt!: ReturnType<typeof prepare>;

  /** `onOpen` gives the session store's database, now and again each time the store reopens it. */
  constructor(
    onOpen: (hook: (db: Database.Database) => void) => void,
    private readonly commit: <T>(write: () => T) => Promise<T>,
  ) {
    onOpen((db) => {
      this.db = db;
      this.stmt = prepare(db);
    });
  }

  get(sessionId: string, requestId: string): CommandEntry | undefined {
    const row = this.stmt.get.get(sessionId, requestId);
    return row ? toEntry(row) : undefined;
  }

  list(sessionId: string, since: number, limit: number): { entries: CommandEntry[]; more: boolean } {
    const rows = this.stmt.list.all(sessionId, since, limit + 1);
    return { entries: rows.slice(0, limit).map(toEntry), more: rows.length > limit };
  }

  /** Group-committed with every other write of this tick; resolves once durable. */
  write(edgeRun: string, ops: LedgerOp[]): Promise<WriteAnswer> {
    return this.commit(() => ops.map((op) => this.apply(edgeRun, op)));
  }

  /**
   * Entries left open by an edge that is gone (a new edge run said hello): nobody will
   * record their answers, so they are lost, with why the edge ended.
   */
  loseOrphans(currentRun: string, reason: LostReason): { sessionId: string; requestId: string; environment: string; method: string }[] {
    const now = Date.now();
    return this.db.transaction(() => {
      const rows = this.stmt.orphans.all(currentRun);
      for (const r of rows) {
        this.stmt.finish.run('lost', now, now, null, null, JSON.stringify(reason), null, 0, r.session_id, r.request_id);
      }
      return rows.map((r) => ({ sessionId: r.session_id, requestId: r.request_id, environment: r.environment, method: r.method }));
    })();
  }

  deleteSession(sessionId: string): void {
    this.stmt.deleteSession.run(sessionId);
  }

  /** Age and count limits of one environment; only finished entries ever go. */
  retain(environment: string, maxEntries: number, maxAgeMs: number, now = Date.now()): number {
    return this.db.transaction(() => {
      let removed = this.stmt.expire.run(environment, now - maxAgeMs).changes;
      const over = this.stmt.count.get(environment)!.n - maxEntries;
      if (over > 0) removed += this.stmt.trim.run(environment, over).changes;
      return removed;
    })();
  }

  counts(): Record<string, number> {
    return Object.fromEntries(this.stmt.counts.all().map((r) => [r.state, r.n]));
  }

  private apply(edgeRun: string, op: LedgerOp): CommandEntry | null {
    switch (op.op) {
      case 'accept': {
        // Connection-scoped ids are unique by construction; a client's string id may be a resend.
        if (this.stmt.insert.run(op.s, op.r, op.scope, op.env, op.m, edgeRun, op.ex, op.at).changes === 1) return null;
        const existing = this.stmt.get.get(op.s, op.r)!;
        // The same edge run sending an accept again: its earlier try landed but the answer was lost.
        if (existing.state === 'accepted' && existing.edge_run === edgeRun) return null;
        return toEntry(existing);
      }
      case 'start':
        this.stmt.start.run(op.at, op.s, op.r);
        return null;
      case 'finish':
        this.stmt.finish.run(
          op.state,
          op.started ?? op.at,
          op.at,
          op.exit ? JSON.stringify(op.exit) : null,
          op.error ? JSON.stringify(op.error) : null,
          op.lost ? JSON.stringify(op.lost) : null,
          op.result ?? null,
          op.cut ? 1 : 0,
          op.s,
          op.r,
        );
        return null;
      case 'drop':
        this.stmt.drop.run(op.s, op.r, edgeRun);
        return null;
    }
  }
}
