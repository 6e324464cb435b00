// Regressions for defects found in review: each test failed before its fix.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ContinuumError } from '../../src/protocol/errors.js';
import { RawClient } from '../helpers/raw-client.js';
import { cli, startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';

describe('review regressions', () => {
  let tree: Tree;
  before(async () => {
    tree = await startTree({
      config: {
        restart: { intensity: 1, periodMs: 60_000, backoffInitialMs: 50, backoffMaxMs: 100, stableAfterMs: 60_000 },
        environments: [
          { name: 'remote', replicas: 2, standby: false },
          { name: 'agent', sessionIdleMs: 2_000 },
        ],
      },
    });
  });
  after(() => stopTree(tree));

  it('a long command keeps its session alive past the idle expiry', async () => {
    const client = await tree.client('agent');
    const r = await client.exec('sleep 4; echo done', { timeoutMs: 10_000 });
    assert.equal(r.stdout, 'done\n');
    assert.equal(r.signal, null);
    assert.equal((await client.ping()).pong, true);
    await client.close();
  });

  it('fs.stat and fs.delete act on a symlink itself, not on what it points to', async () => {
    const client = await tree.client('agent');
    await client.fs.write('data/keep.txt', 'precious');
    await client.exec('ln -s data link');
    assert.equal((await client.fs.stat('link')).type, 'symlink');
    await client.fs.delete('link');
    assert.equal((await client.fs.read('data/keep.txt')).content, 'precious');
    await assert.rejects(client.fs.stat('link'), (e: ContinuumError) => e.rpcCode === -32602);
    await client.close();
  });

  it('refuses request ids over 256 characters with -32600, and keeps the logs valid NDJSON', async () => {
    const raw = await RawClient.open(tree.url, tree.token('agent'));
    await raw.call('session.connect', { environment: 'agent' });
    raw.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: 'x'.repeat(200_000), method: 'system.ping' }));
    const answer = await raw.wait((m) => m.error?.code === -32600);
    assert.equal(answer.id, null);
    assert.equal((await raw.call('system.ping')).result !== undefined, true, 'the connection still works');
    raw.close();
    for (const file of ['agent', 'server']) {
      for (const line of fs.readFileSync(path.join(tree.home, 'logs', `${file}.log`), 'utf8').trim().split('\n')) JSON.parse(line);
    }
  });

  it('new sessions go to a replica that is serving, not to a failed one', async () => {
    // intensity 1: a second kill within the period marks remote-1 failed.
    for (let i = 0; i < 2; i++) {
      const row = await tree.row('remote-1');
      if (row.pid) process.kill(row.pid, 'SIGKILL');
      if (i === 0) await tree.waitRunning('remote-1', row.pid);
    }
    await waitFor(async () => (await tree.row('remote-1')).state === 'failed' || undefined, 10_000, 'remote-1 failed');
    const remote0 = await tree.row('remote-0');
    for (let i = 0; i < 6; i++) {
      const client = await tree.client('remote', { mode: 'new', sessionId: `placed-${i}` });
      assert.equal(client.session.executor.pid, remote0.pid, 'placed on the healthy replica');
      await client.close();
    }
    const restart = await cli(['restart', 'remote', '--home', tree.home]);
    assert.equal(restart.code, 0, restart.stderr);
  });

  it('an SDK client whose environment failed retries slowly instead of in a storm', async () => {
    const client = await tree.client('persona');
    let reconnecting = 0;
    client.on('reconnecting', () => reconnecting++);
    const persona = await tree.row('persona-0');
    const edge = await tree.row('websocket-daemon');
    // Fail persona for good (intensity 1), then drop the client's connection.
    process.kill(persona.pid!, 'SIGKILL');
    const again = await tree.waitRunning('persona-0', persona.pid);
    process.kill(again.pid!, 'SIGKILL');
    await waitFor(async () => (await tree.row('persona-0')).state === 'failed' || undefined, 10_000, 'persona failed');
    process.kill(edge.pid!, 'SIGKILL');
    await tree.waitRunning('websocket-daemon', edge.pid);
    await new Promise((r) => setTimeout(r, 3_000));
    assert.ok(reconnecting >= 1, 'it does try to reconnect');
    assert.ok(reconnecting < 15, `${reconnecting} reconnect attempts in ~3 s is a storm`);
    await client.close();
    const restart = await cli(['restart', 'persona', '--home', tree.home]);
    assert.equal(restart.code, 0, restart.stderr);
  });
});
