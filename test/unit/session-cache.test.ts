import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionCache } from '../../src/executor/session-context.js';
import { ContinuumError } from '../../src/protocol/errors.js';
import type { LoadedSession } from '../../src/protocol/internal.js';

/** A session daemon that keeps sessions in a map and counts loads. */
class FakeDaemon {
  loads = 0;
  down = false;
  readonly sessions = new Map<string, LoadedSession>();
  add(id: string, createdAt: number, kv: Record<string, unknown> = {}): void {
    this.sessions.set(id, {
      session: { sessionId: id, environment: 'remote', label: null, createdAt, lastActiveAt: createdAt, executorId: 'remote-0' },
      workspace: `/ws/${id}`,
      kv,
      shell: { cwd: null, env: null },
    });
  }
  async call<T>(method: string, params: unknown): Promise<T> {
    assert.equal(method, 'session.load');
    this.loads++;
    if (this.down) throw new ContinuumError('EXECUTOR_UNAVAILABLE', 'down', { retryable: true });
    const s = this.sessions.get((params as { sessionId: string }).sessionId);
    if (!s) throw new ContinuumError('SESSION_NOT_FOUND', 'gone');
    return structuredClone(s) as T;
  }
}

describe('executor session cache', () => {
  it('loads once, then serves from memory', async () => {
    const daemon = new FakeDaemon();
    daemon.add('a', 1, { k: 1 });
    const cache = new SessionCache(daemon);
    const first = await cache.get('a');
    const second = cache.get('a');
    assert.equal(second, first, 'a cached session is returned synchronously');
    assert.equal(daemon.loads, 1);
  });

  it('after the daemon link drops, revalidates: same incarnation keeps the context, a re-created id gets a fresh one', async () => {
    const daemon = new FakeDaemon();
    daemon.add('a', 1, { k: 'old' });
    daemon.add('b', 1);
    const cache = new SessionCache(daemon);
    const a = await cache.get('a');
    const b = await cache.get('b');
    daemon.add('a', 2, { k: 'new' }); // closed and created again while we weren't listening
    daemon.add('b', 1, { k: 'written-through' });
    cache.markAllStale();
    const a2 = await cache.get('a');
    assert.notEqual(a2, a);
    assert.equal(a.evicted, true, 'the old incarnation is evicted (its commands killed)');
    assert.equal(a2.kv.get('k'), 'new');
    const b2 = await cache.get('b');
    assert.equal(b2, b, 'same incarnation: same context, so its command queue is kept');
    assert.equal(b2.kv.get('k'), 'written-through');
  });

  it('a stale session that is gone from the daemon is evicted; while the daemon is down the stale copy is served', async () => {
    const daemon = new FakeDaemon();
    daemon.add('a', 1);
    daemon.add('b', 1);
    const cache = new SessionCache(daemon);
    const a = await cache.get('a');
    const b = await cache.get('b');
    cache.markAllStale();
    daemon.sessions.delete('a');
    await assert.rejects(Promise.resolve(cache.get('a')), (e: ContinuumError) => e.code === 'CONTINUUM_SESSION_NOT_FOUND');
    assert.equal(a.evicted, true);
    daemon.down = true;
    assert.equal(await cache.get('b'), b);
    assert.equal(b.stale, true, 'still to be revalidated once the daemon is back');
  });

  it('drops idle sessions beyond its bound, never busy ones', async () => {
    const daemon = new FakeDaemon();
    const cache = new SessionCache(daemon);
    for (let i = 0; i < 2_100; i++) daemon.add(`s${i}`, 1);
    const busy = await cache.get('s0');
    let release!: () => void;
    const blocked = busy.enqueue(() => new Promise<void>((r) => (release = r)));
    for (let i = 1; i < 2_100; i++) await cache.get(`s${i}`);
    const loads = daemon.loads;
    assert.equal(cache.get('s0'), busy, 'the busy session stayed cached');
    assert.equal(daemon.loads, loads);
    await cache.get('s1');
    assert.equal(daemon.loads, loads + 1, 'an idle old session was dropped and reloads');
    release();
    await blocked;
  });

  it('drops idle sessions, oldest first, once their state holds more than its byte budget', async () => {
    const daemon = new FakeDaemon();
    for (const id of ['a', 'b', 'c', 'd']) daemon.add(id, 1, { big: 'x'.repeat(400) });
    const cache = new SessionCache(daemon, undefined, 1_300);
    for (const id of ['a', 'b']) await cache.get(id);
    assert.equal(daemon.loads, 2);
    // A state write counts too: 'a' grows, then loading 'c' puts the cache over its budget.
    const a = await cache.get('a');
    a.setKv('more', 'y'.repeat(300));
    assert.ok(a.bytes > 700);
    await cache.get('c');
    // 'b' was the least recently used: it went; 'a' and 'c' are still served from memory.
    await cache.get('a');
    await cache.get('c');
    assert.equal(daemon.loads, 3);
    await cache.get('b');
    assert.equal(daemon.loads, 4, "'b' was loaded again");
    a.deleteKv('more');
    a.deleteKv('big');
    assert.equal(a.bytes, 0);
  });
});
