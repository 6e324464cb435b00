// Heartbeats (DESIGN.md, rules of the tree): an executor that stops answering without
// exiting is found, killed and replaced; healthy children are never killed for the time
// they spent booting.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { isAlive, startTree, stopTree, waitFor, type PsRow, type Tree } from '../helpers/tree.js';
import { Pinger } from './support/pinger.js';
import { nextEvent, within } from './support/waits.js';

/** No test here should take long; a hang fails instead of blocking the run. */
const LIMIT = { timeout: 60_000 };

afterEach(async () => {
  await Pinger.stopAll();
});

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
