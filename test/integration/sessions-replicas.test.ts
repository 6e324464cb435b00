// Sessions placed over an environment's replicas, and sessions surviving a full stop/start
// of the tree. The two share a tree on purpose: the restart test rejoins a replica session
// that the placement test made, to check it keeps its replica across the restart.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stopTree, Tree, waitFor } from '../helpers/tree.js';
import { CONFIG, sessionClients, useSessionTree } from './support/sessions.js';

let tree: Tree;
const { client, joinById, closeAll, workspace } = sessionClients(() => tree);

describe('sessions', { timeout: 120_000 }, () => {
  useSessionTree((t) => (tree = t), () => tree, closeAll);

  test('replicas: new sessions spread 2/2 over two executors (least loaded) and keep their executor on rejoin', async () => {
    const rows = (await tree.ps()).filter((r) => r.environment === 'agent');
    assert.equal(rows.length, 2);
    const pidOf = new Map(rows.map((r) => [r.id, r.pid]));
    assert.notEqual(rows[0]!.pid, rows[1]!.pid);

    const placed = new Map<string, { id: string; pid: number }>();
    for (let i = 0; i < 4; i++) {
      const c = await client('agent', { sessionId: `rep-${i}`, mode: 'new' });
      assert.equal(c.session.action, 'created');
      assert.equal(c.session.executor.pid, pidOf.get(c.session.executor.id), 'the result names a live executor of the environment');
      assert.equal((await c.ping()).executor.pid, c.session.executor.pid);
      placed.set(`rep-${i}`, c.session.executor);
    }
    const perPid = new Map<number, number>();
    for (const e of placed.values()) perPid.set(e.pid, (perPid.get(e.pid) ?? 0) + 1);
    assert.deepEqual([...perPid.values()], [2, 2], `sessions per executor: ${JSON.stringify([...perPid])}`);

    await closeAll();
    for (const [id, executor] of placed) {
      const j = await joinById(id, 'agent');
      assert.equal(j.session.action, 'joined');
      assert.deepEqual(j.session.executor, executor, `${id} keeps its executor on rejoin`);
      assert.equal((await j.ping()).executor.pid, executor.pid);
    }
    await waitFor(async () => {
      const counts = (await tree.ps()).filter((r) => r.environment === 'agent').map((r) => r.sessions);
      return counts.length === 2 && counts.every((n) => n === 2) ? counts : undefined;
    }, 5_000, 'ps to count 2 sessions on each agent executor');
  });

  test('state, cwd, exports and files survive a full stop/start of the tree', async () => {
    const ws = workspace('server', 'durable-1');
    const c = await client('server', { sessionId: 'durable-1' });
    await c.state.set('persist', { a: [1, { b: 'c' }] });
    await c.exec('mkdir -p keep/dir && cd keep/dir && export DURABLE=yes-really');
    await c.fs.write('keep/file.txt', 'durable content');
    const oldPid = c.session.executor.pid;
    const agentBefore = await client('agent', { sessionId: 'rep-0', mode: 'join' });
    const agentExecutor = agentBefore.session.executor.id;

    await closeAll();
    const { home, port } = tree;
    await stopTree(tree);
    tree = new Tree(home, port, CONFIG);
    await tree.start();

    const d = await joinById('durable-1');
    assert.equal(d.session.action, 'joined');
    assert.notEqual(d.session.executor.pid, oldPid, 'a new executor process serves it');
    assert.deepEqual(await d.state.get('persist'), { a: [1, { b: 'c' }] });
    assert.deepEqual(await d.state.list(), ['persist']);
    const r = await d.exec('pwd; echo "$DURABLE"; cat ../file.txt');
    assert.equal(r.stdout, `${ws}/keep/dir\nyes-really\ndurable content`);
    assert.equal((await d.fs.read('keep/file.txt')).content, 'durable content');

    const a = await joinById('rep-0', 'agent');
    assert.equal(a.session.executor.id, agentExecutor, 'a session keeps its replica across a restart');
  });
});
