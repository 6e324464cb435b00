// The command ledger's store on a real SQLite file: its memory index must always agree with
// the table (after writes, retention, a session's close, a reopen, a failed commit), and the
// ledgers of earlier layouts, kept in sessions.db, must come over to ledger.db whole.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { adoptLedger, LedgerStore } from '../../src/daemons/session/ledger-store.js';
import { SqliteStore } from '../../src/daemons/session/sqlite-store.js';
import type { LedgerOp } from '../../src/protocol/ledger-wire.js';
import type { CommandEntry } from '../../src/protocol/methods/command.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function open(file?: string) {
  if (!file) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-store-'));
    dirs.push(dir);
    file = path.join(dir, 'ledger.db');
  }
  const store = new SqliteStore(file, 'the command ledger');
  const ledger = new LedgerStore(store);
  return { file, store, ledger };
}

const accept = (s: string, r: string, at: number, env = 'remote'): LedgerOp => ({ op: 'accept', s, r, scope: 'request', env, m: 'state.set', ex: `${env}-0`, at });
const finish = (seq: number, at: number): LedgerOp => ({ op: 'finish', seq, state: 'completed', at, started: at, result: '{"ok":true}' });
/** Accepts, answered with their seqs. */
async function accepted(ledger: LedgerStore, run: string, ops: LedgerOp[]): Promise<number[]> {
  const answers = await ledger.write(run, ops);
  for (const a of answers) assert.equal(typeof a, 'number', `not accepted afresh: ${JSON.stringify(a)}`);
  return answers as number[];
}

describe('command ledger store', () => {
  it('answers a resend with the entry it has, and a repeated accept of the same run with its seq', async () => {
    const { ledger, store } = open();
    const [seq] = await accepted(ledger, 'run-1', [accept('s1', 'a', 1_000)]);
    // The same run's accept again: its first answer was lost on the way.
    assert.deepEqual(await ledger.write('run-1', [accept('s1', 'a', 1_000)]), [seq]);
    await ledger.write('run-1', [finish(seq!, 1_005)]);
    const [again] = (await ledger.write('run-2', [accept('s1', 'a', 2_000)])) as CommandEntry[];
    assert.equal(again?.state, 'completed');
    assert.deepEqual(again?.result, { ok: true });
    assert.equal(ledger.get('s1', 'a')?.durationMs, 0);
    store.close();
  });

  it('keeps its index across a reopen: resends, lists, orphans and counts come from disk', async () => {
    const first = open();
    const [a] = await accepted(first.ledger, 'run-1', [accept('s1', 'a', 1_000), accept('s1', 'b', 1_001), accept('s2', 'c', 1_002)]);
    await first.ledger.write('run-1', [finish(a!, 1_010)]);
    first.store.close();

    const { ledger, store } = open(first.file);
    assert.deepEqual(ledger.counts(), { completed: 1, accepted: 2 });
    assert.deepEqual(ledger.list('s1', 0, 10).entries.map((e) => e.requestId), ['a', 'b']);
    const [resend] = (await ledger.write('run-2', [accept('s1', 'a', 3_000)])) as CommandEntry[];
    assert.equal(resend?.state, 'completed');
    const lost = ledger.loseOrphans('run-2', { kind: 'edge', signal: 'SIGKILL', exitCode: null, detail: 'test' });
    assert.deepEqual(lost.map((e) => e.requestId).sort(), ['b', 'c']);
    assert.equal(ledger.get('s2', 'c')?.state, 'lost');
    // A new accept after a reopen must not reuse a row of the old run.
    await ledger.write('run-2', [accept('s3', 'd', 4_000)]);
    assert.deepEqual(ledger.counts(), { completed: 1, lost: 2, accepted: 1 });
    store.close();
  });

  it('retains by count and age, oldest first, in slices, and never removes an open entry', async () => {
    const { ledger, store, file } = open();
    const ops: LedgerOp[] = [];
    for (let i = 0; i < 10; i++) ops.push(accept('s1', `r${i}`, 1_000 + i));
    const seqs = await accepted(ledger, 'run-1', ops);
    // r0 stays open; the rest finish.
    await ledger.write('run-1', seqs.slice(1).map((seq) => finish(seq, 2_000)));
    // In slices: at most `limit` per call, oldest first, the rest at the next call.
    assert.equal(ledger.retain('remote', 5, 1e9, 3_000, 3), 3);
    assert.deepEqual(ledger.list('s1', 0, 100).entries.map((e) => e.requestId), ['r0', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9']);
    assert.equal(ledger.retain('remote', 5, 1e9, 3_000, 3), 1);
    assert.deepEqual(ledger.list('s1', 0, 100).entries.map((e) => e.requestId), ['r0', 'r5', 'r6', 'r7', 'r8', 'r9']);
    // Age: everything accepted before 1_008 goes, but not the open r0.
    assert.equal(ledger.retain('remote', 100, 1_000, 2_008), 3);
    assert.deepEqual(ledger.list('s1', 0, 100).entries.map((e) => e.requestId), ['r0', 'r8', 'r9']);
    assert.equal(ledger.retain('other-env', 0, 0), 0);
    store.close();
    // What retention removed is gone from the table too.
    const { ledger: reopened, store: s2 } = open(file);
    assert.deepEqual(reopened.list('s1', 0, 100).entries.map((e) => e.requestId), ['r0', 'r8', 'r9']);
    s2.close();
  });

  it("drops a never-dispatched entry of its own run only, and a session's close removes its entries", async () => {
    const { ledger, store } = open();
    await ledger.write('run-1', [accept('s1', 'a', 1), accept('s1', 'b', 2), accept('s2', 'c', 3)]);
    await ledger.write('run-2', [{ op: 'drop', s: 's1', r: 'a' }]);
    assert.ok(ledger.get('s1', 'a'), 'another run may not drop it');
    await ledger.write('run-1', [{ op: 'drop', s: 's1', r: 'a' }]);
    assert.equal(ledger.get('s1', 'a'), undefined);
    // Dropped: the same id may be accepted afresh.
    await accepted(ledger, 'run-1', [accept('s1', 'a', 4)]);
    ledger.deleteSession('s1');
    assert.deepEqual(ledger.list('s1', 0, 10).entries, []);
    assert.equal(ledger.get('s2', 'c')?.state, 'accepted');
    store.close();
  });

  it('reads its index back when a commit fails, so a write that did not land is not remembered', async () => {
    const { ledger, store } = open();
    await accepted(ledger, 'run-1', [accept('s1', 'a', 1)]);
    // A bad op after a good one fails the whole tick's transaction: neither is kept.
    const bad = { op: 'accept', s: 's1', r: 'b', scope: 'request', env: 'remote', m: 'state.set', ex: 'remote-0', at: null } as unknown as LedgerOp;
    await assert.rejects(ledger.write('run-1', [accept('s1', 'x', 2), bad]));
    assert.equal(ledger.get('s1', 'x'), undefined);
    await accepted(ledger, 'run-1', [accept('s1', 'x', 3)]);
    assert.deepEqual(ledger.counts(), { accepted: 2 });
    store.close();
  });

  it('takes over the ledger of an earlier layout from sessions.db, once, even after a crash midway', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-store-'));
    dirs.push(dir);
    const sessions = path.join(dir, 'sessions.db');
    // The first layout: table `ledger`, keyed by session and request id, in the session store's file.
    const db = new Database(sessions);
    db.exec(`CREATE TABLE ledger (
      session_id TEXT NOT NULL, request_id TEXT NOT NULL, scope TEXT NOT NULL, environment TEXT NOT NULL,
      method TEXT NOT NULL, state TEXT NOT NULL, edge_run TEXT NOT NULL, executor_id TEXT,
      accepted_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER,
      exit TEXT, error TEXT, lost TEXT, result TEXT, cut INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (session_id, request_id)) WITHOUT ROWID`);
    db.prepare("INSERT INTO ledger VALUES ('s1', 'old', 'request', 'remote', 'shell.exec', 'completed', 'run-0', 'remote-0', 10, 11, 20, '{\"exitCode\":0,\"signal\":null,\"timedOut\":false}', NULL, NULL, '{\"stdout\":\"hi\"}', 0)").run();
    db.prepare("INSERT INTO ledger VALUES ('s1', 'older', 'request', 'remote', 'state.set', 'completed', 'run-0', 'remote-0', 5, 5, 6, NULL, NULL, NULL, '{\"ok\":true}', 0)").run();
    db.exec('CREATE TABLE kv (session_id TEXT, key TEXT, value TEXT)');
    db.close();

    const file = path.join(dir, 'ledger.db');
    const first = new SqliteStore(file, 'the command ledger');
    assert.equal(adoptLedger(first.db, sessions), 2);
    // A crash after the copy and before the drop: the next start finds the rows again and skips them.
    const sdb = new Database(sessions);
    sdb.exec('CREATE TABLE command_ledger (seq INTEGER PRIMARY KEY, session_id TEXT NOT NULL, request_id TEXT NOT NULL, scope TEXT NOT NULL, environment TEXT NOT NULL, method TEXT NOT NULL, state TEXT NOT NULL, edge_run TEXT NOT NULL, executor_id TEXT, accepted_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, exit TEXT, error TEXT, lost TEXT, result TEXT, cut INTEGER NOT NULL DEFAULT 0)');
    sdb.exec(`ATTACH DATABASE '${file}' AS l;
      INSERT INTO command_ledger SELECT e.seq, e.session_id, e.request_id, c.scope, c.environment, c.method, e.state, c.edge_run, c.executor_id,
        e.accepted_at, e.started_at, e.finished_at, e.exit, e.error, e.lost, e.result, e.cut FROM l.ledger_entries e JOIN l.ledger_contexts c ON c.id = e.context;
      DETACH DATABASE l`);
    sdb.close();
    assert.equal(adoptLedger(first.db, sessions), 0, 'rows already there are not copied twice');
    assert.equal(adoptLedger(first.db, sessions), 0);
    first.close();

    const { ledger, store } = open(file);
    const entry = ledger.get('s1', 'old');
    assert.equal(entry?.state, 'completed');
    assert.deepEqual(entry?.exit, { exitCode: 0, signal: null, timedOut: false });
    assert.equal(entry?.durationMs, 9);
    await ledger.write('run-1', [accept('s1', 'new', 30)]);
    // Acceptance order survives the move: the first layout's rows in accepted_at order, then new ones.
    assert.deepEqual(ledger.list('s1', 0, 10).entries.map((e) => e.requestId), ['older', 'old', 'new']);
    store.close();
    const left = new Database(sessions, { readonly: true });
    assert.deepEqual(left.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all(), ['kv'], 'only the session tables stay in sessions.db');
    left.close();
  });

  it("takes over the last layout's one-table ledger in ledger.db, splitting out what its rows share", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-store-'));
    dirs.push(dir);
    const file = path.join(dir, 'ledger.db');
    const db = new Database(file);
    db.exec('CREATE TABLE command_ledger (seq INTEGER PRIMARY KEY, session_id TEXT NOT NULL, request_id TEXT NOT NULL, scope TEXT NOT NULL, environment TEXT NOT NULL, method TEXT NOT NULL, state TEXT NOT NULL, edge_run TEXT NOT NULL, executor_id TEXT, accepted_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, exit TEXT, error TEXT, lost TEXT, result TEXT, cut INTEGER NOT NULL DEFAULT 0)');
    const row = db.prepare('INSERT INTO command_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, 0)');
    row.run(7, 's1', 'a', 'request', 'remote', 'state.set', 'completed', 'run-0', 'remote-0', 10, 10, 12, '{"ok":true}');
    row.run(8, 's1', '#x.1', 'connection', 'remote', 'state.set', 'accepted', 'run-0', 'remote-0', 11, null, null, null);
    row.run(9, 's2', 'b', 'request', 'agent', 'shell.exec', 'started', 'run-0', 'agent-0', 12, 13, null, null);
    db.close();

    const sql = new SqliteStore(file, 'the command ledger');
    assert.equal(adoptLedger(sql.db, path.join(dir, 'sessions.db')), 3);
    const ledger = new LedgerStore(sql);
    assert.deepEqual(ledger.counts(), { completed: 1, accepted: 1, started: 1 });
    const a = ledger.get('s1', 'a')!;
    assert.deepEqual([a.environment, a.method, a.executorId, a.idScope, a.result, a.durationMs], ['remote', 'state.set', 'remote-0', 'request', { ok: true }, 2]);
    assert.equal(ledger.get('s1', '#x.1')?.idScope, 'connection');
    assert.equal(ledger.get('s2', 'b')?.environment, 'agent');
    // New entries follow the old ones; open ones of the old run are its orphans.
    const [seq] = await accepted(ledger, 'run-1', [accept('s1', 'c', 20)]);
    assert.equal(seq, 10);
    assert.deepEqual(ledger.loseOrphans('run-1', { kind: 'edge', signal: null, exitCode: null, detail: 'test' }).map((e) => e.requestId).sort(), ['#x.1', 'b']);
    assert.deepEqual(sql.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all(), ['ledger_contexts', 'ledger_entries']);
    sql.close();
  });

  it("retains one environment's entries only, in ranges that skip the rows that stay", async () => {
    const { ledger, store, file } = open();
    // remote and agent interleaved; some of remote's stay open.
    const ops: LedgerOp[] = [];
    for (let i = 0; i < 40; i++) ops.push(accept('s1', `r${i}`, 1_000 + i, i % 3 === 0 ? 'agent' : 'remote'));
    const seqs = await accepted(ledger, 'run-1', ops);
    await ledger.write('run-1', seqs.filter((_, i) => i % 7 !== 1).map((seq) => finish(seq, 2_000)));
    const remote = (id: string) => ops.some((o) => o.op === 'accept' && o.r === id && o.env === 'remote');
    assert.equal(ledger.retain('remote', 0, 1e9, 3_000), 40 - 14 - 4);
    const left = ledger.list('s1', 0, 100).entries.map((e) => e.requestId);
    const expected = ops.flatMap((o, i) => (o.op === 'accept' && (!remote(o.r) || i % 7 === 1) ? [o.r] : []));
    assert.deepEqual(left, expected);
    store.close();
    // The table agrees.
    const { ledger: reopened, store: s2 } = open(file);
    assert.deepEqual(reopened.list('s1', 0, 100).entries.map((e) => e.requestId), expected);
    s2.close();
  });
});
