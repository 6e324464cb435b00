// Fault injection, session store (issue 4):
// - kill -9 of the session daemon in the middle of a burst of state.set: every write that
//   was acknowledged is on disk afterwards (acknowledged means durable);
// - the store's disk full (a small tmpfs as <home>): writes fail with -32007 (disk-full,
//   retryable), reads keep working, nothing crashes, and writes work again by themselves
//   once space returns;
// - the store read-only when the session daemon (re)starts: the same, with reason read-only.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { RawClient, type RpcMessage } from '../helpers/raw-client.js';
import { skipWithoutMounts, TestDisk } from '../helpers/tmpfs.js';
import { startTree, stopTree, tempHome, waitFor, type Tree } from '../helpers/tree.js';
import { kill9 } from './support/processes.js';

const LIMIT = { timeout: 120_000 };

async function bound(tree: Tree, environment: string, sessionId: string, opened: RawClient[]): Promise<RawClient> {
  const r = await RawClient.open(tree.url, tree.token(environment));
  opened.push(r);
  const m = await r.call('session.connect', { environment, sessionId });
  assert.equal(m.error, undefined, `session.connect ${sessionId}: ${JSON.stringify(m.error)}`);
  return r;
}

function ok(m: RpcMessage, what: string): unknown {
  assert.equal(m.error, undefined, `${what}: ${JSON.stringify(m.error)}`);
  return m.result;
}

/** Retries while the answer is a retryable error of `codes` (a daemon restarting; with -32007, a disk not yet back). */
async function until(call: () => Promise<RpcMessage>, codes: number[] = [-32003], timeoutMs = 15_000): Promise<RpcMessage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await call();
    if (!m.error || !codes.includes(m.error.code) || m.error.data?.retryable !== true || Date.now() > deadline) return m;
    await new Promise((r) => setTimeout(r, Math.min(500, Number(m.error!.data?.retryAfterMs ?? 100))));
  }
}

function storageError(m: RpcMessage, reason: string, what: string): void {
  assert.equal(m.jsonrpc, '2.0');
  assert.equal(m.error?.code, -32007, `${what}: expected -32007, got ${JSON.stringify(m.error ?? m.result)}`);
  assert.equal(m.error.data?.reason, reason, what);
  assert.equal(m.error.data?.retryable, true, what);
  assert.match(m.error.message, /retry/);
}

const pidsOf = async (tree: Tree) => (await tree.ps()).filter((r) => r.id !== 'supervisor').map((r) => `${r.id}:${r.pid}:${r.restarts}`);

describe('faults: kill -9 of the session daemon during a burst of state.set', () => {
  let tree: Tree;
  const opened: RawClient[] = [];
  before(async () => {
    tree = await startTree();
  });
  after(async () => {
    for (const r of opened) r.close();
    await stopTree(tree);
  });

  test('every acknowledged write is on disk after the restart', LIMIT, async () => {
    const sessions = [['server', 'burst-s'], ['remote', 'burst-r'], ['agent', 'burst-a'], ['persona', 'burst-p']] as const;
    const clients = await Promise.all(sessions.map(([env, id]) => bound(tree, env, id, opened)));
    const PER_CLIENT = 400;
    const PIPELINE = 16;
    const KILL_AFTER = 300;
    const acked = sessions.map(() => new Set<number>());
    const errors = new Map<string, number>();
    let ackedTotal = 0;
    let killedPid: number | undefined;
    let killedAt = 0;
    let firstAckAfterKill = 0;

    const killDaemon = async () => {
      const row = await tree.row('session-daemon');
      killedPid = row.pid!;
      killedAt = Date.now();
      kill9(killedPid);
    };
    let killing: Promise<void> | undefined;

    await Promise.all(clients.map(async (c, ci) => {
      for (let start = 0; start < PER_CLIENT; start += PIPELINE) {
        const batch = Array.from({ length: Math.min(PIPELINE, PER_CLIENT - start) }, (_, j) => start + j);
        const answers = await Promise.all(batch.map((i) => c.call('state.set', { key: `w${i}`, value: i }, 30_000)));
        answers.forEach((m, j) => {
          if (m.error) {
            const k = `${m.error.code}${m.error.data?.retryable ? ' retryable' : ''}`;
            errors.set(k, (errors.get(k) ?? 0) + 1);
            assert.ok([-32003, -32004].includes(m.error.code), `state.set failed with ${JSON.stringify(m.error)}`);
            return;
          }
          assert.deepEqual(m.result, { ok: true });
          acked[ci]!.add(batch[j]!);
          ackedTotal++;
          if (killedAt && !firstAckAfterKill) firstAckAfterKill = Date.now();
        });
        if (ackedTotal >= KILL_AFTER && !killing) killing = killDaemon();
      }
    }));
    await killing;
    assert.ok(killedPid, 'the burst ended before the kill');
    const restarted = await tree.waitRunning('session-daemon', killedPid, 15_000);
    const attempted = sessions.length * PER_CLIENT;
    const ackedCount = acked.reduce((n, s) => n + s.size, 0);
    assert.ok(ackedCount > KILL_AFTER, 'no write was acknowledged after the restart');

    // 1. On disk: read the database file itself, beside the running daemon.
    const db = new Database(path.join(tree.home, 'state', 'sessions.db'), { readonly: true, fileMustExist: true });
    const missing: string[] = [];
    try {
      const get = db.prepare<[string, string], { value: string }>('SELECT value FROM kv WHERE session_id = ? AND key = ?');
      sessions.forEach(([, id], ci) => {
        for (const i of acked[ci]!) {
          const row = get.get(id, `w${i}`);
          if (!row || JSON.parse(row.value) !== i) missing.push(`${id}/w${i}`);
        }
      });
    } finally {
      db.close();
    }
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} acknowledged writes are missing from sessions.db`);

    // 2. Through the API, from executors that must load the sessions from the store again.
    for (const env of ['server-0', 'remote-0', 'agent-0', 'persona-0']) {
      const row = await tree.row(env);
      kill9(row.pid);
      await tree.waitRunning(env, row.pid);
    }
    for (const [ci, c] of clients.entries()) {
      const keys = (ok(await until(() => c.call('state.list')), 'state.list') as { keys: string[] }).keys;
      const have = new Set(keys);
      const lost = [...acked[ci]!].filter((i) => !have.has(`w${i}`));
      assert.deepEqual(lost.slice(0, 20), [], `${sessions[ci]![1]}: ${lost.length} acknowledged keys missing after the executor reloaded the session`);
      const sample = [...acked[ci]!].slice(-5);
      for (const i of sample) assert.deepEqual(ok(await c.call('state.get', { key: `w${i}` }), 'state.get'), { value: i });
    }
    console.log(`# store kill -9: ${attempted} state.set sent over ${sessions.length} connections (${PIPELINE} in flight each); session daemon pid ${killedPid} killed after ${KILL_AFTER}+ acks, back as pid ${restarted.pid}; first ack after the kill ${firstAckAfterKill ? firstAckAfterKill - killedAt : '-'} ms; acknowledged ${ackedCount}, errors ${JSON.stringify(Object.fromEntries(errors))}; acknowledged but missing: ${missing.length}`);
  });
});

describe('faults: the store disk full (tmpfs as <home>)', skipWithoutMounts(), () => {
  let tree: Tree;
  let disk: TestDisk;
  const opened: RawClient[] = [];
  before(async () => {
    const home = tempHome();
    disk = new TestDisk(home, 16 * 1024 * 1024).mount();
    tree = await startTree({ home });
  });
  after(async () => {
    for (const r of opened) r.close();
    await stopTree(tree);
    disk.unmount();
  });

  test('writes fail with -32007 disk-full, reads work, nothing crashes, and it recovers when space returns', LIMIT, async () => {
    const c = await bound(tree, 'remote', 'full', opened);
    ok(await c.call('state.set', { key: 'kept', value: { v: 1 } }), 'state.set before');
    ok(await c.call('fs.write', { path: 'kept.txt', content: 'kept' }), 'fs.write before');
    const pidsBefore = await pidsOf(tree);
    const filled = disk.fill();

    const big = 'x'.repeat(512 * 1024);
    storageError(await c.call('state.set', { key: 'big', value: big }), 'disk-full', 'state.set');
    storageError(await c.call('state.delete', { key: 'kept' }), 'disk-full', 'state.delete');
    storageError(await c.call('fs.write', { path: 'big.txt', content: big }), 'disk-full', 'fs.write');
    const other = await RawClient.open(tree.url, tree.token('remote'));
    opened.push(other);
    storageError(await other.call('session.connect', { environment: 'remote', sessionId: 'born-on-a-full-disk' }), 'disk-full', 'session.connect (new)');
    const small = await Promise.all(Array.from({ length: 20 }, (_, i) => c.call('state.set', { key: `s${i}`, value: i })));
    for (const m of small) if (m.error) storageError(m, 'disk-full', 'small state.set');
    const smallFailed = small.filter((m) => m.error).length;

    // Reads, from the cache and from the store, and a join on a new connection.
    assert.deepEqual(ok(await c.call('state.get', { key: 'kept' }), 'state.get'), { value: { v: 1 } });
    assert.deepEqual(ok(await c.call('state.get', { key: 'big' }), 'state.get big'), { value: null });
    assert.equal((ok(await c.call('fs.read', { path: 'kept.txt' }), 'fs.read') as { content: string }).content, 'kept');
    // shell.exec changes things, so the command ledger records it before it runs: on the full
    // disk it is refused (-32007, not run) unless its entry fits in pages SQLite already has.
    const exec = await c.call('shell.exec', { command: 'echo ran >> exec-ran.txt; cat kept.txt' });
    if (exec.error) {
      storageError(exec, 'disk-full', 'shell.exec (its ledger entry)');
      assert.equal(fs.existsSync(path.join(tree.home, 'workspaces', 'remote', 'full', 'exec-ran.txt')), false, 'a refused shell.exec must not have run');
    } else {
      assert.equal((exec.result as { stdout: string }).stdout, 'kept');
    }
    ok(await other.call('session.join', { sessionId: 'full' }), 'session.join of an existing session');
    assert.deepEqual(ok(await other.call('state.get', { key: 'kept' }), 'state.get on the joined connection'), { value: { v: 1 } });
    const remote0 = await tree.row('remote-0');
    kill9(remote0.pid);
    await tree.waitRunning('remote-0', remote0.pid);
    assert.deepEqual(ok(await until(() => c.call('state.get', { key: 'kept' })), 'state.get after the executor reloaded'), { value: { v: 1 } });
    assert.deepEqual((await pidsOf(tree)).filter((p) => !p.startsWith('remote-0:')), pidsBefore.filter((p) => !p.startsWith('remote-0:')), 'a process crashed on the full disk');

    // Space returns: writes work again, with no restart and no operator.
    disk.free();
    const recoveredAt = Date.now();
    ok(await until(() => c.call('state.set', { key: 'big', value: big }), [-32003, -32007]), 'state.set after space returned');
    const recoveryMs = Date.now() - recoveredAt;
    ok(await c.call('fs.write', { path: 'big.txt', content: big }), 'fs.write after space returned');
    ok(await other.call('session.connect', { environment: 'remote', sessionId: 'born-after' }), 'session.connect after space returned');
    const r0 = await tree.row('remote-0');
    kill9(r0.pid);
    await tree.waitRunning('remote-0', r0.pid);
    assert.equal((ok(await until(() => c.call('state.get', { key: 'big' })), 'state.get') as { value: string }).value.length, big.length);
    assert.deepEqual((await pidsOf(tree)).filter((p) => !p.startsWith('remote-0:')), pidsBefore.filter((p) => !p.startsWith('remote-0:')));
    console.log(`# store disk full: tmpfs 16 MiB as <home>, filler ${filled} bytes; every write refused with -32007 disk-full (${smallFailed}/20 small state.set refused; any others fit in pages SQLite already had); reads and join ok, shell.exec ${exec.error ? 'refused by the ledger' : 'ran'}; recovered ${recoveryMs} ms after space returned; no crash`);
  });
});

describe('faults: the store read-only when the session daemon restarts', skipWithoutMounts(), () => {
  let tree: Tree;
  let disk: TestDisk;
  const opened: RawClient[] = [];
  before(async () => {
    tree = await startTree();
    disk = new TestDisk(path.join(tree.home, 'state'), 0);
  });
  after(async () => {
    for (const r of opened) r.close();
    await stopTree(tree);
    disk.unmount();
  });

  test('writes fail with -32007 read-only, reads work, and it recovers when the disk is writable again', LIMIT, async () => {
    const c = await bound(tree, 'server', 'ro', opened);
    ok(await c.call('state.set', { key: 'kept', value: 'yes' }), 'state.set before');
    const daemon = await tree.row('session-daemon');
    disk.readOnly();
    kill9(daemon.pid);
    const back = await tree.waitRunning('session-daemon', daemon.pid, 15_000);

    const first = await until(() => c.call('state.set', { key: 'new', value: 1 }));
    storageError(first, 'read-only', 'state.set');
    // The executor reloads the session from the read-only store.
    const server0 = await tree.row('server-0');
    kill9(server0.pid);
    await tree.waitRunning('server-0', server0.pid);
    assert.deepEqual(ok(await until(() => c.call('state.get', { key: 'kept' })), 'state.get'), { value: 'yes' });
    const other = await RawClient.open(tree.url, tree.token('server'));
    opened.push(other);
    ok(await other.call('session.join', { sessionId: 'ro' }), 'session.join');
    storageError(await other.call('session.connect', { environment: 'server', sessionId: 'ro-new' }), 'read-only', 'session.connect (new)');
    storageError(await c.call('state.set', { key: 'new', value: 2 }), 'read-only', 'state.set again');
    assert.equal((await tree.row('session-daemon')).pid, back.pid, 'the session daemon crashed on a read-only store');

    disk.writable();
    const at = Date.now();
    ok(await until(() => c.call('state.set', { key: 'new', value: 3 }), [-32003, -32007]), 'state.set once writable');
    const recoveryMs = Date.now() - at;
    ok(await other.call('session.connect', { environment: 'server', sessionId: 'ro-new' }), 'session.connect once writable');
    const again = await tree.row('server-0');
    kill9(again.pid);
    await tree.waitRunning('server-0', again.pid);
    assert.deepEqual(ok(await until(() => c.call('state.get', { key: 'new' })), 'state.get'), { value: 3 });
    assert.equal((await tree.row('session-daemon')).pid, back.pid, 'the session daemon was restarted to recover');
    console.log(`# store read-only: session daemon restarted on a read-only <home>/state; writes -32007 read-only, reads and join ok; writable again -> first write ok after ${recoveryMs} ms, same daemon pid ${back.pid}`);
  });
});
