// Crash isolation in the default tree (DESIGN.md, rules of the tree 3 and 4): kill -9 of any
// executor or daemon; it comes back, its sessions keep their state, the rest never notices,
// nothing hangs. The crash-loop breaker and heartbeats are in crash-isolation-*.test.ts.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';
import type { ContinuumClient } from '../../src/client/index.js';
import { ContinuumError } from '../../src/protocol/errors.js';
import { RawClient } from '../helpers/raw-client.js';
import { isAlive, startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';
import { Pinger } from './support/pinger.js';
import { cmdline, kill9, waitForCommand } from './support/processes.js';
import { nextEvent, retrying, within } from './support/waits.js';

const ENVIRONMENTS = ['browser', 'server', 'remote', 'agent', 'persona'] as const;
/** No test here should take long; a hang fails instead of blocking the run. */
const LIMIT = { timeout: 60_000 };

afterEach(async () => {
  await Pinger.stopAll();
});

describe('crashes in the default tree', () => {
  let tree: Tree;
  const clients = new Map<string, ContinuumClient>();
  /** Per environment: the value stored in its session and the shell cwd it left. */
  const saved = new Map<string, { value: unknown; cwd: string }>();

  before(async () => {
    tree = await startTree();
    for (const env of ENVIRONMENTS) {
      const client = await tree.client(env);
      clients.set(env, client);
      const value = { env, nonce: randomUUID() };
      await client.state.set('who', value);
      const r = await client.exec('mkdir -p deep/er && cd deep/er');
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.cwd, /\/deep\/er$/);
      saved.set(env, { value, cwd: r.cwd });
    }
  });
  after(async () => {
    for (const c of clients.values()) await c.close();
    await stopTree(tree);
  });

  for (const victim of ENVIRONMENTS) {
    test(`kill -9 of the ${victim} executor: the others keep serving, it comes back with its sessions`, LIMIT, async (t) => {
      const id = `${victim}-0`;
      const before_ = await tree.row(id);
      assert.equal(before_.state, 'running');
      const client = clients.get(victim)!;
      const sessionId = client.session.sessionId;
      const restarted = nextEvent<{ sessionId: string; executor: { id: string; pid: number } }>(client, 'executorRestarted');

      const pingers = ENVIRONMENTS.filter((e) => e !== victim).map((e) => new Pinger(clients.get(e)!, e));
      await waitFor(() => pingers.every((p) => p.count > 0), 5_000, 'every other environment to answer pings');
      const countsAtKill = pingers.map((p) => p.count);

      kill9(before_.pid);
      const row = await tree.waitRunning(id, before_.pid);
      const event = await within(restarted, 10_000, 'the executorRestarted event');
      // Keep pinging a little past the restart, then look.
      const countsAtRestart = pingers.map((p) => p.count);
      await waitFor(() => pingers.every((p, i) => p.count > countsAtRestart[i]!), 5_000, 'pings after the restart');
      await Promise.all(pingers.map((p) => p.stop()));

      t.diagnostic(`pings while ${victim} restarted: ${pingers.map((p, i) => `${p.environment}=${countsAtRestart[i]! - countsAtKill[i]!}`).join(' ')}`);
      for (const [i, p] of pingers.entries()) {
        assert.deepEqual(p.errors, [], `${p.environment} got errors while ${victim} was down`);
        assert.ok(countsAtRestart[i]! > countsAtKill[i]!, `${p.environment} answered no ping while ${victim} was restarting`);
      }
      assert.ok(!isAlive(before_.pid!), 'the killed executor is still alive');
      assert.equal(row.name, `continuum-${victim}-executor`);
      assert.notEqual(row.pid, before_.pid);
      assert.equal(row.restarts, before_.restarts + 1);
      assert.equal(cmdline(row.pid!), `continuum-${victim}-executor`);

      assert.equal(event.sessionId, sessionId);
      assert.equal(event.executor.id, id);
      assert.equal(event.executor.pid, row.pid);

      // The session rebinds to the new process with its state and shell cwd.
      const ping = await client.ping();
      assert.equal(ping.executor.pid, row.pid);
      assert.deepEqual(await client.state.get('who'), saved.get(victim)!.value);
      const pwd = await client.exec('pwd');
      assert.equal(pwd.stdout, `${saved.get(victim)!.cwd}\n`);
      const info = await client.info();
      assert.equal(info.sessionId, sessionId);
      assert.equal(info.executor.pid, row.pid);
      // Nothing else restarted.
      for (const other of (await tree.ps()).filter((r) => r.id !== id)) assert.equal(other.state, 'running', `${other.id} is ${other.state}`);
    });
  }

  test('a request in flight on an executor that is kill -9d gets a retryable -32003 at once', LIMIT, async (t) => {
    const raw = await RawClient.open(tree.url, tree.token('remote'));
    try {
      const bound = await raw.call('session.connect', { environment: 'remote' });
      assert.equal(bound.error, undefined);
      const execPid = (await tree.row('remote-0')).pid!;
      const pending = raw.call('shell.exec', { command: 'sleep 30' }, 10_000);
      const sleepPid = await waitForCommand(execPid, 'sleep 30');

      const t0 = Date.now();
      kill9(execPid);
      const res = await pending; // rejects (fails the test) if no answer within 10 s
      const elapsed = Date.now() - t0;
      t.diagnostic(`answered ${elapsed} ms after the kill: ${JSON.stringify(res.error)}`);
      assert.ok(res.error, `expected an error, got ${JSON.stringify(res)}`);
      assert.equal(res.error.code, -32003);
      assert.equal(res.error.data?.retryable, true);
      assert.equal(typeof res.error.data?.retryAfterMs, 'number');
      assert.ok(elapsed < 10_000, `the error took ${elapsed} ms`);
      // The command's process does not outlive its executor.
      await waitFor(() => !isAlive(sleepPid), 5_000, 'the sleep to be killed with its executor');

      // The session comes back on the new executor.
      const row = await tree.waitRunning('remote-0', execPid);
      await raw.wait((m) => m.method === 'session.executorRestarted', 10_000);
      const ping = await raw.call('system.ping');
      assert.equal(ping.error, undefined, JSON.stringify(ping.error));
      assert.equal((ping.result as { executor: { pid: number } }).executor.pid, row.pid);
    } finally {
      raw.close();
    }
  });

  test('kill -9 of the session daemon: restarted, sessions and state intact, clients keep working', LIMIT, async () => {
    const client = clients.get('remote')!;
    const sessionId = client.session.sessionId;
    await client.state.set('before-sd', 'kept');
    const before_ = await tree.row('session-daemon');
    const executorsBefore = (await tree.ps()).filter((r) => r.environment !== null).map((r) => [r.id, r.pid]);
    // A session already bound keeps being served while the daemon is down.
    const pinger = new Pinger(clients.get('agent')!, 'agent');
    await waitFor(() => pinger.count > 0, 5_000, 'agent pings');

    kill9(before_.pid);
    const row = await tree.waitRunning('session-daemon', before_.pid);
    await pinger.stop();
    assert.deepEqual(pinger.errors, [], 'a bound session got errors while the session daemon restarted');
    assert.notEqual(row.pid, before_.pid);
    assert.equal(row.restarts, before_.restarts + 1);
    assert.equal(cmdline(row.pid!), 'continuum-session-daemon');

    assert.deepEqual(await retrying(() => client.state.set('after-sd', 42)), { ok: true });
    assert.equal(await retrying(() => client.state.get('before-sd')), 'kept');
    assert.equal(await retrying(() => client.state.get('after-sd')), 42);
    assert.deepEqual(await retrying(() => client.state.get('who')), saved.get('remote')!.value);
    assert.equal((await retrying(() => client.exec('pwd'))).stdout, `${saved.get('remote')!.cwd}\n`);

    // The session directory survived: a new connection joins the same session, with its state.
    const again = await retrying(() => tree.client('remote', { sessionId, mode: 'join', reconnect: false }));
    try {
      assert.equal(again.session.action, 'joined');
      assert.equal(again.session.sessionId, sessionId);
      assert.equal(await again.state.get('after-sd'), 42);
    } finally {
      await again.close();
    }
    // Every other session too.
    for (const env of ENVIRONMENTS) {
      const c = await retrying(() => tree.client(env, { sessionId: clients.get(env)!.session.sessionId, mode: 'join', reconnect: false }));
      try {
        assert.deepEqual(await c.state.get('who'), saved.get(env)!.value);
      } finally {
        await c.close();
      }
    }
    // No executor was restarted for it.
    assert.deepEqual((await tree.ps()).filter((r) => r.environment !== null).map((r) => [r.id, r.pid]), executorsBefore);
  });

  test('after a session daemon restart, session.close still deletes the session state', LIMIT, async () => {
    const sessionId = `sd-close-${randomUUID().slice(0, 8)}`;
    const first = await tree.client('persona', { sessionId, mode: 'new', reconnect: false });
    try {
      await first.state.set('k', 'old');
      assert.equal((await first.exec('cd /tmp')).cwd, '/tmp');
    } finally {
      await first.close();
    }
    const daemon = await tree.row('session-daemon');
    kill9(daemon.pid);
    await tree.waitRunning('session-daemon', daemon.pid);

    const closer = await retrying(() => tree.client('persona', { sessionId, mode: 'join', reconnect: false }));
    try {
      assert.deepEqual(await retrying(() => closer.closeSession()), { ok: true });
    } finally {
      await closer.close();
    }
    // The id is free again; a session made with it starts empty, in its own workspace.
    const fresh = await retrying(() => tree.client('persona', { sessionId, mode: 'new', reconnect: false }));
    try {
      assert.equal(fresh.session.action, 'created');
      assert.equal(await fresh.state.get('k'), null, 'the closed session\'s state came back in a new session with its id');
      assert.deepEqual(await fresh.state.list(), []);
      const pwd = await fresh.exec('pwd');
      assert.notEqual(pwd.stdout, '/tmp\n', 'the closed session\'s shell cwd came back in a new session with its id');
    } finally {
      await fresh.closeSession().catch(() => undefined);
      await fresh.close();
    }
  });

  test('kill -9 of the websocket daemon: SDK clients get disconnected, then reconnected to the same session', LIMIT, async (t) => {
    const client = clients.get('agent')!;
    const sessionId = client.session.sessionId;
    await client.state.set('before-edge', { ok: 'yes' });
    const before_ = await tree.row('websocket-daemon');
    const agentPid = (await tree.row('agent-0')).pid!;
    const executorsBefore = (await tree.ps()).filter((r) => r.environment !== null).map((r) => [r.id, r.pid]);

    // A second client of its own session has a request pending when the edge dies.
    const other = await tree.client('agent');
    try {
      const pending = other.exec('sleep 20').then(
        () => new Error('sleep 20 finished instead of failing'),
        (e: Error) => e,
      );
      await waitForCommand(agentPid, 'sleep 20');
      const disconnected = nextEvent<ContinuumError>(client, 'disconnected');
      const reconnected = nextEvent<{ sessionId: string; action: string; environment: string }>(client, 'reconnected');

      const t0 = Date.now();
      kill9(before_.pid);
      const err = await within(pending, 10_000, 'the pending request to fail');
      const elapsed = Date.now() - t0;
      t.diagnostic(`pending request failed ${elapsed} ms after the kill`);
      assert.ok(err instanceof ContinuumError, String(err));
      // Settled from the ledger after the SDK reconnected: lost, because the edge died under it.
      assert.equal(err.code, 'CONTINUUM_COMMAND_LOST', err.message);
      assert.ok(elapsed < 10_000, `the pending request took ${elapsed} ms to fail`);

      const lost = await within(disconnected, 10_000, 'the disconnected event');
      assert.equal(lost.code, 'CONTINUUM_CONNECTION_LOST');
      const back = await within(reconnected, 20_000, 'the reconnected event');
      assert.equal(back.sessionId, sessionId);
      assert.equal(back.environment, 'agent');
      assert.equal(back.action, 'joined');
      assert.equal(client.session.sessionId, sessionId);
      assert.ok(client.connected);

      assert.deepEqual(await client.state.get('before-edge'), { ok: 'yes' });
      assert.deepEqual(await client.state.get('who'), saved.get('agent')!.value);
      assert.equal((await client.exec('pwd')).stdout, `${saved.get('agent')!.cwd}\n`);

      const row = await tree.waitRunning('websocket-daemon', before_.pid);
      assert.notEqual(row.pid, before_.pid);
      assert.equal(row.restarts, before_.restarts + 1);
      assert.equal(cmdline(row.pid!), 'continuum-websocket-daemon');
      assert.deepEqual((await tree.ps()).filter((r) => r.environment !== null).map((r) => [r.id, r.pid]), executorsBefore);
    } finally {
      await other.close();
    }
  });
});
