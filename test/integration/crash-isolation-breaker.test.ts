// The crash-loop breaker (DESIGN.md, rules of the tree): an executor that keeps dying is
// marked failed instead of restarted forever; the rest keeps serving; `continuum restart`
// brings it back.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawClient } from '../helpers/raw-client.js';
import { cli, startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';
import { cmdline, kill9 } from './support/processes.js';

/** No test here should take long; a hang fails instead of blocking the run. */
const LIMIT = { timeout: 60_000 };

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
