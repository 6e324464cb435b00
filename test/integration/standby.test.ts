import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startedBy } from '../helpers/proc.js';
import { startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';

describe('warm standby executors', () => {
  let tree: Tree;
  before(async () => {
    tree = await startTree({ config: { environments: [{ name: 'agent', standby: false }] } });
  });
  after(() => stopTree(tree));

  it('keeps a booted standby per executor that has one, and none where disabled', async () => {
    const standbys = await waitFor(async () => {
      const s = await tree.standbys();
      return s.length === 4 ? s : undefined;
    }, 15_000, 'four standbys');
    assert.deepEqual(standbys.map((s) => s.id).sort(), ['browser-0.standby', 'persona-0.standby', 'remote-0.standby', 'server-0.standby']);
    const supervisor = (await tree.ps()).find((r) => r.id === 'supervisor')!;
    for (const s of standbys) {
      assert.equal(s.state, 'standby');
      // A confined environment's standby sits in a sandbox of its own, launched by the supervisor.
      assert.equal(startedBy(s.pid!), supervisor.pid, 'a standby is a child of the supervisor (through its sandbox, if confined)');
      assert.equal(execFileSync('ps', ['-o', 'args=', '-p', String(s.pid)], { encoding: 'utf8' }).trim(), s.name);
    }
  });

  it('promotes the standby on kill -9: the session is served by that very process, with its state', async () => {
    const client = await tree.client('remote', { sessionId: 'standby-session' });
    await client.state.set('k', 'v');
    await client.exec('cd /tmp && export X=1');
    const before_ = await tree.row('remote-0');
    const standby = (await tree.standbys()).find((s) => s.id === 'remote-0.standby')!;
    const restarted = new Promise<{ executor: { pid: number } }>((resolve) => client.once('executorRestarted', resolve));
    process.kill(before_.pid!, 'SIGKILL');
    const event = await restarted;
    assert.equal(event.executor.pid, standby.pid, 'the new executor is the former standby');
    const after_ = await tree.waitRunning('remote-0', before_.pid);
    assert.equal(after_.pid, standby.pid);
    assert.equal(after_.restarts, before_.restarts + 1);
    assert.equal(await client.state.get('k'), 'v');
    const r = await client.exec('echo $X; pwd');
    assert.equal(r.stdout, '1\n/tmp\n');
    // A new standby is booted for the next crash.
    const next = await waitFor(async () => (await tree.standbys()).find((s) => s.id === 'remote-0.standby' && s.pid !== standby.pid), 15_000, 'a new standby');
    assert.notEqual(next.pid, after_.pid);
    await client.close();
  });

  it('without a standby, a crash is served by a freshly started process', async () => {
    const before_ = await tree.row('agent-0');
    process.kill(before_.pid!, 'SIGKILL');
    const after_ = await tree.waitRunning('agent-0', before_.pid);
    assert.ok(after_.pid !== null);
    assert.equal((await tree.standbys()).some((s) => s.environment === 'agent'), false);
    const client = await tree.client('agent');
    assert.equal((await client.ping()).executor.pid, after_.pid);
    await client.close();
  });
});
