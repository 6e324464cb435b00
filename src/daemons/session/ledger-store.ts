// The command ledger: one row per request the edge accepted, in a database of its own
// (`state/ledger.db`, WAL), kept by the session daemon's ledger thread (ledger-worker.ts). The
// edge's `ledger.write` calls are committed in that thread's transaction of the tick and
// acknowledged once it is on disk (group commit): an acknowledged state change survives a
// kill -9, and a power cut.
//
// Rows are keyed by `seq`, the order of acceptance, and the table has no other index: a
// tick's inserts land on the last page or two, a finish updates a row that is still there,
// and retention deletes from the front. Lookups by (session, request id) go through an index
// kept in memory, rebuilt from the table at every open; the edge names an accepted entry by
// its seq from then on. (Keyed by session and request id, as it first was, each insert and
// delete dirtied a page of its own, and the writes of the ledger cost several times the
// commands they recorded; see ARCHITECTURE-NOTES, "Command ledger".)
//
// What every entry of an edge run shares (the run, environment, method, executor, id scope)
// is a row of `ledger_contexts`, named by each entry: an entry is its ids, times and outcome.
// Five strings less per row made each command's writes a quarter cheaper.
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

/** A row of `ledger_contexts`: what the entries of one edge run, environment and method share. */
interface Context {
  id: number;
  edgeRun: string;
  environment: string;
  method: string;
  executorId: string | null;
  scope: string;
  /** Its environment's entries, for retention. */
  queue: Queue;
}

/** What the memory index knows of a row: enough to decide every write without reading it. */
interface Slot {
  seq: number;
  sessionId: string;
  requestId: string;
  context: Context;
  acceptedAt: number;
  state: State;
  /** Removed (dropped, retained away, its session closed): skipped where it still sits in a queue. */
  gone: boolean;
}

const isFinal = (state: State): boolean => state === 'completed' || state === 'failed' || state === 'lost';

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

/**
 * Per op: for an accept, the seq of the entry (new, or this run's own from an earlier try whose
 * answer was lost) or the entry a resend found; null for any other op.
 */
export type WriteAnswer = (number | CommandEntry | null)[];

const CONTEXTS = 'CREATE TABLE IF NOT EXISTS ledger_contexts (id INTEGER PRIMARY KEY, edge_run TEXT NOT NULL, environment TEXT NOT NULL, method TEXT NOT NULL, executor_id TEXT, scope TEXT NOT NULL)';
const ENTRIES = 'CREATE TABLE IF NOT EXISTS ledger_entries (seq INTEGER PRIMARY KEY, session_id TEXT NOT NULL, request_id TEXT NOT NULL, context INTEGER NOT NULL, state TEXT NOT NULL, accepted_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, exit TEXT, error TEXT, lost TEXT, result TEXT, cut INTEGER NOT NULL DEFAULT 0)';

/** The columns of the second layout's `command_ledger` (one table, every string in each row). */
const LEGACY_COLUMNS = 'session_id TEXT NOT NULL, request_id TEXT NOT NULL, scope TEXT NOT NULL, environment TEXT NOT NULL, method TEXT NOT NULL, state TEXT NOT NULL, edge_run TEXT NOT NULL, executor_id TEXT, accepted_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, exit TEXT, error TEXT, lost TEXT, result TEXT, cut INTEGER NOT NULL DEFAULT 0';
const LEGACY_NAMES = 'session_id, request_id, scope, environment, method, state, edge_run, executor_id, accepted_at, started_at, finished_at, exit, error, lost, result, cut';

/**
 * Brings the ledgers of earlier layouts into `db` (ledger.db) as `ledger_entries`; `sessions`
 * is the session store's file, where the ledger lived before it had a file of its own. Returns
 * the rows taken over. Each step is a transaction of one file, so a crash midway leaves a
 * state the next start finishes:
 * 1. the first layout (`ledger` in sessions.db, keyed by session and request id) becomes
 *    `command_ledger` in place, in acceptance order;
 * 2. sessions.db's `command_ledger` is copied into ledger.db's by `seq` (a second copy skips
 *    what is there) and dropped;
 * 3. ledger.db's `command_ledger` is split into contexts and entries, and dropped.
 */
export function adoptLedger(db: Database.Database, sessions: string): number {
  db.exec(CONTEXTS);
  db.exec(ENTRIES);
  const has = (schema: string, name: string) => db.prepare<[string], { n: number }>(`SELECT COUNT(*) AS n FROM ${schema}.sqlite_master WHERE type = 'table' AND name = ?`).get(name)!.n > 0;
  if (fs.existsSync(sessions)) {
    db.prepare('ATTACH DATABASE ? AS old').run(sessions);
    try {
      if (has('old', 'ledger')) {
        db.transaction(() => {
          db.exec(`CREATE TABLE IF NOT EXISTS old.command_ledger (seq INTEGER PRIMARY KEY, ${LEGACY_COLUMNS})`);
          db.exec(`INSERT INTO old.command_ledger (${LEGACY_NAMES}) SELECT ${LEGACY_NAMES} FROM old.ledger ORDER BY accepted_at, request_id`);
          db.exec('DROP TABLE old.ledger');
        })();
      }
      if (has('old', 'command_ledger')) {
        db.exec(`CREATE TABLE IF NOT EXISTS main.command_ledger (seq INTEGER PRIMARY KEY, ${LEGACY_COLUMNS})`);
        db.exec(`INSERT OR IGNORE INTO main.command_ledger (seq, ${LEGACY_NAMES}) SELECT seq, ${LEGACY_NAMES} FROM old.command_ledger`);
        db.exec('DROP TABLE old.command_ledger');
      }
    } finally {
      db.exec('DETACH DATABASE old');
    }
  }
  if (!has('main', 'command_ledger')) return 0;
  return db.transaction(() => {
    db.exec(`INSERT INTO ledger_contexts (edge_run, environment, method, executor_id, scope)
      SELECT DISTINCT edge_run, environment, method, executor_id, scope FROM command_ledger`);
    const moved = db.prepare(`INSERT OR IGNORE INTO ledger_entries (seq, session_id, request_id, context, state, accepted_at, started_at, finished_at, exit, error, lost, result, cut)
      SELECT l.seq, l.session_id, l.request_id, c.id, l.state, l.accepted_at, l.started_at, l.finished_at, l.exit, l.error, l.lost, l.result, l.cut
      FROM command_ledger l JOIN ledger_contexts c ON c.edge_run = l.edge_run AND c.environment = l.environment AND c.method = l.method
        AND c.executor_id IS l.executor_id AND c.scope = l.scope`).run().changes;
    db.exec('DROP TABLE command_ledger');
    return moved;
  })();
}

/** Creates the tables if needed and prepares their statements. */
function prepare(db: Database.Database) {
  db.exec(CONTEXTS);
  db.exec(ENTRIES);
  return {
    byRow: db.prepare<[number], Row>('SELECT e.*, c.edge_run, c.environment, c.method, c.executor_id, c.scope FROM ledger_entries e JOIN ledger_contexts c ON c.id = e.context WHERE e.seq = ?'),
    index: db.prepare<[], { seq: number; session_id: string; request_id: string; context: number; accepted_at: number; state: string }>('SELECT seq, session_id, request_id, context, accepted_at, state FROM ledger_entries ORDER BY seq'),
    contexts: db.prepare<[], { id: number; edge_run: string; environment: string; method: string; executor_id: string | null; scope: string }>('SELECT * FROM ledger_contexts'),
    addContext: db.prepare('INSERT INTO ledger_contexts (edge_run, environment, method, executor_id, scope) VALUES (?, ?, ?, ?, ?)'),
    dropUnusedContexts: db.prepare('DELETE FROM ledger_contexts WHERE id NOT IN (SELECT DISTINCT context FROM ledger_entries)'),
    insert: db.prepare("INSERT INTO ledger_entries (seq, session_id, request_id, context, state, accepted_at) VALUES (?, ?, ?, ?, 'accepted', ?)"),
    start: db.prepare("UPDATE ledger_entries SET state = 'started', started_at = ? WHERE seq = ?"),
    finish: db.prepare('UPDATE ledger_entries SET state = ?, started_at = COALESCE(started_at, ?), finished_at = ?, exit = ?, error = ?, lost = ?, result = ?, cut = ? WHERE seq = ?'),
    remove: db.prepare('DELETE FROM ledger_entries WHERE seq = ?'),
    removeRange: db.prepare('DELETE FROM ledger_entries WHERE seq BETWEEN ? AND ?'),
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

const CHUNK = 1024;

/**
 * Slots by seq. Seqs are dense and rising, so they sit in arrays of CHUNK, dropped once empty:
 * one Map with a row in and a row out per command spent much of the thread's time rehashing.
 */
class SeqIndex {
  private readonly chunks = new Map<number, { slots: (Slot | undefined)[]; live: number }>();

  get(seq: number): Slot | undefined {
    return this.chunks.get(Math.floor(seq / CHUNK))?.slots[seq % CHUNK];
  }

  set(s: Slot): void {
    const key = Math.floor(s.seq / CHUNK);
    let chunk = this.chunks.get(key);
    if (!chunk) this.chunks.set(key, (chunk = { slots: new Array<Slot | undefined>(CHUNK), live: 0 }));
    if (!chunk.slots[s.seq % CHUNK]) chunk.live++;
    chunk.slots[s.seq % CHUNK] = s;
  }

  delete(seq: number): void {
    const key = Math.floor(seq / CHUNK);
    const chunk = this.chunks.get(key);
    if (!chunk?.slots[seq % CHUNK]) return;
    chunk.slots[seq % CHUNK] = undefined;
    if (--chunk.live === 0) this.chunks.delete(key);
  }

  clear(): void {
    this.chunks.clear();
  }

  *values(): Iterable<Slot> {
    for (const chunk of this.chunks.values()) for (const s of chunk.slots) if (s) yield s;
  }
}

export class LedgerStore {
  private stmt!: ReturnType<typeof prepare>;
  /** Session → request id → its row: no key string made per op. */
  private readonly bySession = new Map<string, Map<string, Slot>>();
  /** How the edge names an entry once it is accepted. */
  private readonly bySeq = new SeqIndex();
  private readonly byEnvironment = new Map<string, Queue>();
  /** Contexts by run, environment, method, executor and scope (joined by NUL). */
  private readonly contexts = new Map<string, Context>();
  /** The context of the last accept: a batch's accepts mostly share one, so most skip the map. */
  private lastContext: Context | undefined;
  private lastSeq = 0;

  /** On `sql`'s database, now and again each time it is reopened (after a read-only spell). */
  constructor(private readonly sql: SqliteStore) {
    sql.onOpen((db) => {
      this.stmt = prepare(db);
      try {
        this.stmt.dropUnusedContexts.run();
      } catch {
        // Read-only for now: the next open tidies them.
      }
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
    const orphans = [...this.bySeq.values()].filter((s) => !isFinal(s.state) && s.context.edgeRun !== currentRun);
    if (orphans.length === 0) return [];
    const lost = JSON.stringify(reason);
    this.guarded(() => {
      for (const s of orphans) this.stmt.finish.run('lost', now, now, null, null, lost, null, 0, s.seq);
    });
    for (const s of orphans) this.settle(s, 'lost');
    return orphans.map((s) => ({ sessionId: s.sessionId, requestId: s.requestId, environment: s.context.environment, method: s.context.method }));
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
      if (isFinal(s.state)) {
        doomed.push(s);
        over--;
      }
      return true;
    });
    if (doomed.length === 0) return 0;
    this.guarded(() => {
      // Ranged deletes over runs of doomed rows: a run ends where a row that stays (another
      // environment's, or an open one) sits between two doomed ones.
      let from = doomed[0]!.seq;
      let to = from;
      for (let i = 1; i < doomed.length; i++) {
        const seq = doomed[i]!.seq;
        if (this.keptBetween(to, seq)) {
          this.stmt.removeRange.run(from, to);
          from = seq;
        }
        to = seq;
      }
      this.stmt.removeRange.run(from, to);
    });
    for (const s of doomed) this.forget(s);
    return doomed.length;
  }

  /** Whether a row that stays lies between seqs `a` and `b` (a wide gap is taken to hold one). */
  private keptBetween(a: number, b: number): boolean {
    if (b - a > 64) return true;
    for (let seq = a + 1; seq < b; seq++) if (this.bySeq.get(seq)) return true;
    return false;
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.bySeq.values()) out[s.state] = (out[s.state] ?? 0) + 1;
    return out;
  }

  private apply(edgeRun: string, op: LedgerOp): number | CommandEntry | null {
    switch (op.op) {
      case 'accept': {
        const slot = this.bySession.get(op.s)?.get(op.r);
        if (slot) {
          // The same edge run sending an accept again: its earlier try landed but the answer was lost.
          if (slot.state === 'accepted' && slot.context.edgeRun === edgeRun) return slot.seq;
          // Connection-scoped ids are unique by construction; a client's string id may be a resend.
          return toEntry(this.stmt.byRow.get(slot.seq)!);
        }
        const context = this.contextOf(edgeRun, op.env, op.m, op.ex, op.scope);
        const seq = ++this.lastSeq;
        this.stmt.insert.run(seq, op.s, op.r, context.id, op.at);
        this.remember({ seq, sessionId: op.s, requestId: op.r, context, acceptedAt: op.at, state: 'accepted', gone: false });
        return seq;
      }
      case 'start': {
        const slot = this.bySeq.get(op.seq);
        if (slot?.state === 'accepted') {
          this.stmt.start.run(op.at, slot.seq);
          slot.state = 'started';
        }
        return null;
      }
      case 'finish': {
        const slot = this.bySeq.get(op.seq);
        if (slot && !isFinal(slot.state)) {
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
      }
      case 'drop': {
        const slot = this.bySession.get(op.s)?.get(op.r);
        if (slot?.state === 'accepted' && slot.context.edgeRun === edgeRun) {
          this.stmt.remove.run(slot.seq);
          this.forget(slot);
        }
        return null;
      }
    }
  }

  /** The context row of these, made (in the current transaction) if new. */
  private contextOf(edgeRun: string, environment: string, method: string, executorId: string, scope: string): Context {
    const last = this.lastContext;
    if (last && last.method === method && last.environment === environment && last.executorId === executorId && last.scope === scope && last.edgeRun === edgeRun) return last;
    const key = `${edgeRun}\0${environment}\0${method}\0${executorId}\0${scope}`;
    let context = this.contexts.get(key);
    if (!context) {
      const id = Number(this.stmt.addContext.run(edgeRun, environment, method, executorId, scope).lastInsertRowid);
      context = { id, edgeRun, environment, method, executorId, scope, queue: this.queueOf(environment) };
      this.contexts.set(key, context);
    }
    return (this.lastContext = context);
  }

  /** Reads the memory index back from the tables (at open, and after a commit that failed). */
  private load(): void {
    this.bySession.clear();
    this.bySeq.clear();
    this.byEnvironment.clear();
    this.contexts.clear();
    this.lastContext = undefined;
    this.lastSeq = 0;
    const byId = new Map<number, Context>();
    for (const c of this.stmt.contexts.iterate()) {
      const context: Context = { id: c.id, edgeRun: c.edge_run, environment: c.environment, method: c.method, executorId: c.executor_id, scope: c.scope, queue: this.queueOf(c.environment) };
      byId.set(c.id, context);
      this.contexts.set(`${c.edge_run}\0${c.environment}\0${c.method}\0${c.executor_id}\0${c.scope}`, context);
    }
    for (const r of this.stmt.index.iterate()) {
      const context = byId.get(r.context);
      if (context) this.remember({ seq: r.seq, sessionId: r.session_id, requestId: r.request_id, context, acceptedAt: r.accepted_at, state: r.state as State, gone: false });
      this.lastSeq = r.seq;
    }
  }

  private queueOf(environment: string): Queue {
    let queue = this.byEnvironment.get(environment);
    if (!queue) this.byEnvironment.set(environment, (queue = new Queue()));
    return queue;
  }

  private remember(s: Slot): void {
    let slots = this.bySession.get(s.sessionId);
    if (!slots) this.bySession.set(s.sessionId, (slots = new Map()));
    slots.set(s.requestId, s);
    this.bySeq.set(s);
    s.context.queue.push(s);
    if (isFinal(s.state)) s.context.queue.finished++;
  }

  private settle(s: Slot, state: State): void {
    if (!isFinal(s.state) && isFinal(state)) s.context.queue.finished++;
    s.state = state;
  }

  private forget(s: Slot): void {
    s.gone = true;
    this.bySeq.delete(s.seq);
    const slots = this.bySession.get(s.sessionId);
    slots?.delete(s.requestId);
    if (slots?.size === 0) this.bySession.delete(s.sessionId);
    if (isFinal(s.state)) s.context.queue.finished--;
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
