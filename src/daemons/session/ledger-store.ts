// The command ledger: one row per request the edge accepted, in a database of its own
// (`state/ledger.db`, WAL), kept by the session daemon's ledger thread (ledger-worker.ts). The
// edge's `ledger.write` calls are committed in that thread's transaction of the tick and
// acknowledged once it is on disk (group commit): an acknowledged state change survives a
// kill -9, and a power cut.
//
// Rows are keyed by `seq`, the order of acceptance, and the table has no other index: a
// tick's inserts land on the last page or two, a finish updates a row that is still there,
// and retention deletes from the front. Lookups by (session, request id) go through an index
// kept in memory, rebuilt from the table at every open. (Keyed by session and request id, as
// it first was, each insert and delete dirtied a page of its own, and the writes of the ledger
// cost several times the commands they recorded; see ARCHITECTURE-NOTES, "Command ledger".)
import fs from 'node:fs';
import type Database from 'better-sqlite3';
import type { LedgerOp } from '../../protocol/ledger-wire.js';
import type { CommandEntry, LostReason } from '../../protocol/methods/command.js';
import type { SqliteStore } from './sqlite-store.js';

interface Row {
  seq: number;
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

type State = CommandEntry['state'];

/** What the memory index knows of a row: enough to decide every write without reading it. */
interface Slot {
  seq: number;
  sessionId: string;
  requestId: string;
  environment: string;
  method: string;
  edgeRun: string;
  acceptedAt: number;
  state: State;
  /** Removed (dropped, retained away, its session closed): skipped where it still sits in a queue. */
  gone: boolean;
}

const FINAL = new Set<State>(['completed', 'failed', 'lost']);

export function toEntry(r: Row): CommandEntry {
  return {
    requestId: r.request_id,
    idScope: r.scope === 'connection' ? 'connection' : 'request',
    sessionId: r.session_id,
    environment: r.environment,
    method: r.method,
    state: r.state as State,
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

const COLUMNS = 'session_id TEXT NOT NULL, request_id TEXT NOT NULL, scope TEXT NOT NULL, environment TEXT NOT NULL, method TEXT NOT NULL, state TEXT NOT NULL, edge_run TEXT NOT NULL, executor_id TEXT, accepted_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, exit TEXT, error TEXT, lost TEXT, result TEXT, cut INTEGER NOT NULL DEFAULT 0';
const NAMES = 'session_id, request_id, scope, environment, method, state, edge_run, executor_id, accepted_at, started_at, finished_at, exit, error, lost, result, cut';

const TABLE = `CREATE TABLE IF NOT EXISTS command_ledger (seq INTEGER PRIMARY KEY, ${COLUMNS})`;

/**
 * Moves the ledger of a store made before the ledger had a file of its own out of the
 * session store's database (`sessions`, a path) into `db`; returns the rows moved. Each step
 * is a transaction of one file, so a crash midway leaves a state the next start finishes:
 * the first layout (table `ledger`, keyed by session and request id) becomes `command_ledger`
 * in place, then its rows are copied by `seq` (a second copy skips them) and the table dropped.
 */
export function adoptLedger(db: Database.Database, sessions: string): number {
  db.exec(TABLE);
  if (!fs.existsSync(sessions)) return 0;
  db.prepare('ATTACH DATABASE ? AS old').run(sessions);
  try {
    const has = (name: string) => db.prepare<[string], { n: number }>("SELECT COUNT(*) AS n FROM old.sqlite_master WHERE type = 'table' AND name = ?").get(name)!.n > 0;
    if (has('ledger')) {
      db.transaction(() => {
        db.exec(`CREATE TABLE IF NOT EXISTS old.command_ledger (seq INTEGER PRIMARY KEY, ${COLUMNS})`);
        db.exec(`INSERT INTO old.command_ledger (${NAMES}) SELECT ${NAMES} FROM old.ledger ORDER BY accepted_at, request_id`);
        db.exec('DROP TABLE old.ledger');
      })();
    }
    if (!has('command_ledger')) return 0;
    const moved = db.prepare(`INSERT OR IGNORE INTO main.command_ledger (seq, ${NAMES}) SELECT seq, ${NAMES} FROM old.command_ledger`).run().changes;
    db.exec('DROP TABLE old.command_ledger');
    return moved;
  } finally {
    db.exec('DETACH DATABASE old');
  }
}

/** Creates the table if needed and prepares its statements. */
function prepare(db: Database.Database) {
  db.exec(TABLE);
  return {
    byRow: db.prepare<[number], Row>('SELECT * FROM command_ledger WHERE seq = ?'),
    index: db.prepare<[], Row>('SELECT seq, session_id, request_id, environment, method, edge_run, accepted_at, state FROM command_ledger ORDER BY seq'),
    insert: db.prepare("INSERT INTO command_ledger (seq, session_id, request_id, scope, environment, method, state, edge_run, executor_id, accepted_at) VALUES (?, ?, ?, ?, ?, ?, 'accepted', ?, ?, ?)"),
    start: db.prepare("UPDATE command_ledger SET state = 'started', started_at = ? WHERE seq = ?"),
    finish: db.prepare('UPDATE command_ledger SET state = ?, started_at = COALESCE(started_at, ?), finished_at = ?, exit = ?, error = ?, lost = ?, result = ?, cut = ? WHERE seq = ?'),
    remove: db.prepare('DELETE FROM command_ledger WHERE seq = ?'),
    retire: db.prepare("DELETE FROM command_ledger WHERE seq BETWEEN ? AND ? AND environment = ? AND state IN ('completed', 'failed', 'lost')"),
  };
}

/** The rows of one environment in acceptance order: retention takes from the front. */
class Queue {
  private items: Slot[] = [];
  private head = 0;
  /** Final entries in it (the count limit counts only those). */
  finished = 0;

  push(s: Slot): void {
    this.items.push(s);
  }

  /** Front to back, skipping removed ones; `visit` returns false to stop. */
  walk(visit: (s: Slot) => boolean): void {
    for (let i = this.head; i < this.items.length; i++) {
      const s = this.items[i]!;
      if (s.gone) continue;
      if (!visit(s)) break;
    }
    // Drop the removed run at the front, and now and then compact what it left.
    while (this.head < this.items.length && this.items[this.head]!.gone) this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head).filter((s) => !s.gone);
      this.head = 0;
    }
  }
}

export class LedgerStore {
  private stmt!: ReturnType<typeof prepare>;
  /** Session → request id → its row: no key string made per op. */
  private readonly bySession = new Map<string, Map<string, Slot>>();
  private readonly byEnvironment = new Map<string, Queue>();
  private lastSeq = 0;

  /** On `sql`'s database, now and again each time it is reopened (after a read-only spell). */
  constructor(private readonly sql: SqliteStore) {
    sql.onOpen((db) => {
      this.stmt = prepare(db);
      this.load();
    });
    // The memory index ran ahead of a transaction that did not land: read it back from disk.
    sql.onRollback(() => this.load());
  }

  get(sessionId: string, requestId: string): CommandEntry | undefined {
    const slot = this.bySession.get(sessionId)?.get(requestId);
    const row = slot && this.stmt.byRow.get(slot.seq);
    return row ? toEntry(row) : undefined;
  }

  list(sessionId: string, since: number, limit: number): { entries: CommandEntry[]; more: boolean } {
    const slots = [...(this.bySession.get(sessionId)?.values() ?? [])]
      .filter((s) => s.acceptedAt >= since)
      .sort((a, b) => a.acceptedAt - b.acceptedAt || (a.requestId < b.requestId ? -1 : a.requestId > b.requestId ? 1 : 0));
    const entries = slots.slice(0, limit).map((s) => toEntry(this.stmt.byRow.get(s.seq)!));
    return { entries, more: slots.length > limit };
  }

  /** Group-committed with every other write of this tick; resolves once durable. */
  write(edgeRun: string, ops: LedgerOp[]): Promise<WriteAnswer> {
    return this.sql.commit(() => ops.map((op) => this.apply(edgeRun, op)));
  }

  /**
   * Entries left open by an edge that is gone (a new edge run said hello): nobody will
   * record their answers, so they are lost, with why the edge ended.
   */
  loseOrphans(currentRun: string, reason: LostReason): { sessionId: string; requestId: string; environment: string; method: string }[] {
    const now = Date.now();
    const orphans = [...this.slots()].filter((s) => !FINAL.has(s.state) && s.edgeRun !== currentRun);
    if (orphans.length === 0) return [];
    const lost = JSON.stringify(reason);
    this.guarded(() => {
      for (const s of orphans) this.stmt.finish.run('lost', now, now, null, null, lost, null, 0, s.seq);
    });
    for (const s of orphans) this.settle(s, 'lost');
    return orphans.map((s) => ({ sessionId: s.sessionId, requestId: s.requestId, environment: s.environment, method: s.method }));
  }

  deleteSession(sessionId: string): void {
    const slots = this.bySession.get(sessionId);
    if (!slots) return;
    this.guarded(() => {
      for (const s of slots.values()) this.stmt.remove.run(s.seq);
    });
    for (const s of [...slots.values()]) this.forget(s);
  }

  /**
   * Age and count limits of one environment; only finished entries ever go, oldest first.
   * At most `limit` go per call; returns how many went.
   */
  retain(environment: string, maxEntries: number, maxAgeMs: number, now = Date.now(), limit = Infinity): number {
    const queue = this.byEnvironment.get(environment);
    if (!queue) return 0;
    const cutoff = now - maxAgeMs;
    const doomed: Slot[] = [];
    let over = queue.finished - maxEntries;
    queue.walk((s) => {
      const old = s.acceptedAt < cutoff;
      if ((!old && over <= 0) || doomed.length >= limit) return false;
      if (FINAL.has(s.state)) {
        doomed.push(s);
        over--;
      }
      return true;
    });
    if (doomed.length === 0) return 0;
    // Every final row of this environment from the first doomed to the last is doomed (the walk
    // takes them in order and keeps only open ones): one ranged delete, not one per row.
    this.guarded(() => this.stmt.retire.run(doomed[0]!.seq, doomed.at(-1)!.seq, environment));
    for (const s of doomed) this.forget(s);
    return doomed.length;
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.slots()) out[s.state] = (out[s.state] ?? 0) + 1;
    return out;
  }

  private apply(edgeRun: string, op: LedgerOp): CommandEntry | null {
    const slot = this.bySession.get(op.s)?.get(op.r);
    switch (op.op) {
      case 'accept': {
        if (slot) {
          // The same edge run sending an accept again: its earlier try landed but the answer was lost.
          if (slot.state === 'accepted' && slot.edgeRun === edgeRun) return null;
          // Connection-scoped ids are unique by construction; a client's string id may be a resend.
          return toEntry(this.stmt.byRow.get(slot.seq)!);
        }
        const seq = ++this.lastSeq;
        this.stmt.insert.run(seq, op.s, op.r, op.scope, op.env, op.m, edgeRun, op.ex, op.at);
        this.remember({ seq, sessionId: op.s, requestId: op.r, environment: op.env, method: op.m, edgeRun, acceptedAt: op.at, state: 'accepted', gone: false });
        return null;
      }
      case 'start':
        if (slot?.state === 'accepted') {
          this.stmt.start.run(op.at, slot.seq);
          slot.state = 'started';
        }
        return null;
      case 'finish':
        if (slot && !FINAL.has(slot.state)) {
          this.stmt.finish.run(
            op.state,
            op.started ?? op.at,
            op.at,
            op.exit ? JSON.stringify(op.exit) : null,
            op.error ? JSON.stringify(op.error) : null,
            op.lost ? JSON.stringify(op.lost) : null,
            op.result ?? null,
            op.cut ? 1 : 0,
            slot.seq,
          );
          this.settle(slot, op.state);
        }
        return null;
      case 'drop':
        if (slot?.state === 'accepted' && slot.edgeRun === edgeRun) {
          this.stmt.remove.run(slot.seq);
          this.forget(slot);
        }
        return null;
    }
  }

  /** Reads the memory index back from the table (at open, and after a commit that failed). */
  private load(): void {
    this.bySession.clear();
    this.byEnvironment.clear();
    this.lastSeq = 0;
    for (const r of this.stmt.index.iterate()) {
      this.remember({ seq: r.seq, sessionId: r.session_id, requestId: r.request_id, environment: r.environment, method: r.method, edgeRun: r.edge_run, acceptedAt: r.accepted_at, state: r.state as State, gone: false });
      this.lastSeq = r.seq;
    }
  }

  private *slots(): Iterable<Slot> {
    for (const m of this.bySession.values()) yield* m.values();
  }

  private remember(s: Slot): void {
    let slots = this.bySession.get(s.sessionId);
    if (!slots) this.bySession.set(s.sessionId, (slots = new Map()));
    slots.set(s.requestId, s);
    let queue = this.byEnvironment.get(s.environment);
    if (!queue) this.byEnvironment.set(s.environment, (queue = new Queue()));
    queue.push(s);
    if (FINAL.has(s.state)) queue.finished++;
  }

  private settle(s: Slot, state: State): void {
    if (!FINAL.has(s.state) && FINAL.has(state)) this.byEnvironment.get(s.environment)!.finished++;
    s.state = state;
  }

  private forget(s: Slot): void {
    s.gone = true;
    const slots = this.bySession.get(s.sessionId);
    slots?.delete(s.requestId);
    if (slots?.size === 0) this.bySession.delete(s.sessionId);
    if (FINAL.has(s.state)) this.byEnvironment.get(s.environment)!.finished--;
  }

  /** A write outside the per-tick commit, in its own transaction; on failure the index is read back. */
  private guarded(write: () => void): void {
    try {
      this.sql.transact(write);
    } catch (err) {
      this.load();
      throw err;
    }
  }
}

