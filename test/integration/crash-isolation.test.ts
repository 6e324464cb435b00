// Crash isolation (DESIGN.md, rules of the tree 3 and 4): any child may die at any moment;
// it comes back, its sessions keep their state, the rest never notices, nothing hangs.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { after, afterEach, before, describe, test } from 'node:test';
import type { ContinuumClient } from '../../src/client/index.js';
import { ContinuumError } from '../../src/protocol/errors.js';
import { RawClient } from '../helpers/raw-client.js';
import { cli, isAlive, startTree, stopTree, waitFor, type PsRow, type Tree } from '../helpers/tree.js';

const ENVIRONMENTS = ['browser', 'server', 'remote', 'agent', 'persona'] as const;
/** No test here should take long; a hang fails instead of blocking the run. */
const LIMIT = { timeout: 60_000 };

afterEach(async () => {
  await Pinger.stopAll();
});

// --- helpers of this file -------------------------------------------------------------

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Every live descendant of `root`, from /proc. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // Gone while we looked.
    }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    for (const c of children.get(stack.pop()!) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out.filter(isAlive);
}

/** Waits for a process running `command` under the executor `executorPid`. */
function waitForCommand(executorPid: number, command: string): Promise<number> {
  return waitFor(() => descendants(executorPid).find((p) => cmdline(p) === command), 10_000, `"${command}" to run under pid ${executorPid}`);
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function nextEvent<T>(client: ContinuumClient, event: 'executorRestarted' | 'disconnected' | 'reconnected'): Promise<T> {
  return new Promise((resolve) => client.once(event, (arg: unknown) => resolve(arg as T)));
}

function isRetryableUnavailable(err: unknown): err is ContinuumError {
  return err instanceof ContinuumError && err.rpcCode === -32003 && err.data?.retryable === true;
}

/** Retries `fn` while it fails with a retryable -32003 (a daemon or executor restarting). */
async function retrying<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isRetryableUnavailable(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, Math.min(500, Number(err.data?.retryAfterMs ?? 100))));
    }
  }
}

/** Pings in a loop until stopped, counting answers and keeping every error. */
class Pinger {
  static readonly live = new Set<Pinger>();
  count = 0;
  readonly errors: unknown[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(readonly client: ContinuumClient, readonly environment: string) {
    Pinger.live.add(this);
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      try {
        const r = (await this.client.request('system.ping', {}, { timeoutMs: 5_000 })) as { environment: string };
        if (r.environment !== this.environment) throw new Error(`ping answered by ${r.environment}, expected ${this.environment}`);
        this.count++;
      } catch (err) {
        this.errors.push(err);
        if (err instanceof ContinuumError && err.code === 'CONTINUUM_CLIENT_CLOSED') break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    Pinger.live.delete(this);
    await this.done;
  }

  /** Stops every pinger still running (a test that failed half-way). */
  static stopAll(): Promise<void[]> {
    return Promise.all([...Pinger.live].map((p) => p.stop()));
  }
}

function kill9(pid: number | null): void {
  assert.ok(pid !== null, 'no pid to kill');
  process.kill(pid, 'SIGKILL');
}

// --- the default tree -------------------------------------------------------------------

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
      assert.equal(err.code, 'CONTINUUM_CONNECTION_LOST');
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

// --- the crash-loop breaker ---------------------------------------------------------------

describe('the crash-loop breaker', () => {
  let tree: Tree;
  before(async () => {
    tree = await startTree({ config: { restart: { intensity: 3, periodMs: 60_000, backoffInitialMs: 50, backoffMaxMs: 200, stableAfterMs: 60_000 } } });
  });
  after(async () => {
    await stopTree(tree);
  });

  test('a persona executor killed over and over is marked failed; restart brings it back', LIMIT, async () => {
    const raw = await RawClient.open(tree.url, tree.token('persona'));
    try {
      const bound = await raw.call('session.connect', { environment: 'persona' });
      assert.equal(bound.error, undefined);
      const othersBefore = (await tree.ps()).filter((r) => r.id !== 'persona-0').map((r) => [r.id, r.pid]);

      let kills = 0;
      let row = await tree.row('persona-0');
      while (row.state !== 'failed') {
        assert.ok(kills < 10, `persona was not marked failed after ${kills} kills`);
        kill9(row.pid);
        kills++;
        const killed = row.pid;
        row = await waitFor(async () => {
          const r = await tree.row('persona-0');
          return r.state === 'failed' || (r.state === 'running' && r.pid !== null && r.pid !== killed) ? r : undefined;
        }, 10_000, 'persona to be running again or failed');
      }
      // intensity 3: three restarts are allowed, the fourth exit within the period gives up.
      assert.equal(kills, 4);
      const rows = await tree.ps();
      for (const r of rows) {
        if (r.id === 'persona-0') {
          assert.equal(r.state, 'failed');
          assert.equal(r.pid, null);
          assert.match(String(r.reason), /crash loop/);
        } else assert.equal(r.state, 'running', `${r.id} is ${r.state}`);
      }
      assert.deepEqual(rows.filter((r) => r.id !== 'persona-0').map((r) => [r.id, r.pid]), othersBefore);
      const human = await cli(['ps', '--home', tree.home]);
      assert.match(human.stdout, /FAILED/);
      assert.match(human.stdout, /continuum restart persona/);

      // A request of the failed environment is refused at once, and not as retryable.
      const ping = await raw.call('system.ping');
      assert.equal(ping.error?.code, -32003, JSON.stringify(ping));
      assert.equal(ping.error?.data?.retryable, false);
      const fresh = await RawClient.open(tree.url, tree.token('persona'));
      try {
        const refused = await fresh.call('session.connect', { environment: 'persona' });
        assert.equal(refused.error?.code, -32003);
        assert.equal(refused.error?.data?.retryable, false);
      } finally {
        fresh.close();
      }
      // Other environments are unaffected.
      const remote = await tree.client('remote', { reconnect: false });
      assert.equal((await remote.ping()).environment, 'remote');
      await remote.close();

      await waitFor(() => tree.logLines('server').some((l) => l.id === 'persona-0' && /failed/.test(String(l.msg))), 5_000, 'server.log to say persona failed');
      await waitFor(() => tree.logLines('persona').some((l) => /failed/.test(String(l.msg)) && l.env === 'persona'), 5_000, 'persona.log to say it failed');

      const restart = await cli(['restart', 'persona', '--home', tree.home]);
      assert.equal(restart.code, 0, restart.stderr);
      assert.match(restart.stdout, /persona-0: running/);
      const back = await tree.waitRunning('persona-0');
      assert.equal(cmdline(back.pid!), 'continuum-persona-executor');
      assert.equal(back.reason, null);
      const pong = await waitFor(async () => {
        const r = await raw.call('system.ping');
        return r.error === undefined ? r : undefined;
      }, 10_000, 'the persona session to be served again');
      assert.equal((pong.result as { executor: { pid: number } }).executor.pid, back.pid);
    } finally {
      raw.close();
    }
  });
});

// --- heartbeats ---------------------------------------------------------------------------

describe('heartbeats', () => {
  let tree: Tree;
  before(async () => {
    tree = await startTree({ config: { heartbeat: { intervalMs: 200, timeoutMs: 1_000 } } });
  });
  after(async () => {
    await stopTree(tree);
  });

  test('a SIGSTOPped executor is detected, killed and replaced', LIMIT, async () => {
    const client = await tree.client('remote');
    let stoppedPid: number | undefined;
    try {
      await client.state.set('hb', 'kept');
      const before_ = await tree.ps();
      const victim = before_.find((r) => r.id === 'remote-0')!;
      assert.equal(victim.state, 'running');
      const othersBefore = before_.filter((r) => r.id !== 'remote-0').map((r) => [r.id, r.pid]);
      const restarted = nextEvent<{ executor: { pid: number } }>(client, 'executorRestarted');

      stoppedPid = victim.pid!;
      process.kill(stoppedPid, 'SIGSTOP');
      const row = await tree.waitRunning('remote-0', stoppedPid, 15_000);
      assert.notEqual(row.pid, stoppedPid);
      assert.equal(row.restarts, victim.restarts + 1);
      await waitFor(() => !isAlive(stoppedPid!), 5_000, 'the stopped executor to be killed');

      assert.equal((await within(restarted, 10_000, 'executorRestarted')).executor.pid, row.pid);
      assert.equal(await client.state.get('hb'), 'kept');
      assert.equal((await client.ping()).executor.pid, row.pid);
      assert.deepEqual((await tree.ps()).filter((r) => r.id !== 'remote-0').map((r) => [r.id, r.pid]), othersBefore, 'a process that was not stopped was replaced');

      await waitFor(() => tree.logLines('server').some((l) => l.id === 'remote-0' && /heartbeat/.test(String(l.msg)) && l.childPid === stoppedPid), 5_000, 'server.log to record the missed heartbeat');
      await waitFor(() => tree.logLines('remote').some((l) => /no heartbeat/.test(String(l.msg)) && l.pid === stoppedPid), 5_000, 'remote.log to record why its executor was killed');
    } catch (err) {
      // Say so when healthy children were killed too (see 'heartbeats at startup').
      const spurious = tree.logLines('server').filter((l) => /missed its heartbeat/.test(String(l.msg)) && l.childPid !== stoppedPid);
      if (spurious.length) throw new Error(`${(err as Error).message}\n(healthy children were killed for missed heartbeats: ${spurious.map((l) => `${String(l.id)} pid ${String(l.childPid)}`).join(', ')})`, { cause: err });
      throw err;
    } finally {
      if (stoppedPid !== undefined && isAlive(stoppedPid)) process.kill(stoppedPid, 'SIGCONT');
      await client.close();
    }
  });
});

describe('heartbeats at startup', () => {
  // Booting the tree takes a few hundred ms (all children start at once). A child must be
  // judged on pings it was sent, not on time spent booting before the first ping.
  const heartbeat = { intervalMs: 100, timeoutMs: 400 };
  let tree: Tree;
  before(async () => {
    tree = await startTree({ config: { heartbeat } });
  });
  after(async () => {
    await stopTree(tree);
  });

  test('healthy children are not killed by the first heartbeats after a start slower than timeoutMs', LIMIT, async () => {
    const ready = await waitFor(() => tree.logLines('server').find((l) => l.msg === 'supervisor ready'), 5_000, 'the "supervisor ready" line');
    // Watch the tree for several heartbeat timeouts, with a client working meanwhile.
    const client = await tree.client('remote');
    try {
      const pinger = new Pinger(client, 'remote');
      await waitFor(async () => {
        const sup = (await tree.row('supervisor')) as PsRow & { uptimeMs: number };
        return sup.uptimeMs >= Number(ready.readyMs ?? 0) + 5 * heartbeat.timeoutMs && pinger.count > 0;
      }, 15_000, 'the tree to run for five heartbeat timeouts');
      await pinger.stop();
      const killed = tree.logLines('server').filter((l) => /missed its heartbeat/.test(String(l.msg)));
      assert.deepEqual(
        killed.map((l) => l.id),
        [],
        `healthy children were killed at the first heartbeat (supervisor ready after ${String(ready.readyMs)} ms, timeoutMs ${heartbeat.timeoutMs})`,
      );
      assert.deepEqual((await tree.ps()).filter((r) => r.restarts !== 0).map((r) => `${r.id}: ${r.restarts} restarts`), []);
      assert.deepEqual(pinger.errors, []);
    } finally {
      await client.close();
    }
  });
});
