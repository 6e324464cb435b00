import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ContinuumError } from '../../src/protocol/errors.js';
import { startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';

describe('idle session expiry', () => {
  let tree: Tree;
  before(async () => {
    tree = await startTree({ config: { environments: [{ name: 'remote', sessionIdleMs: 1500 }] } });
  });
  after(() => stopTree(tree));

  it('expires an idle session with its workspace, and keeps an active one alive', async () => {
    const idle = await tree.client('remote', { sessionId: 'idle-one' });
    await idle.fs.write('f.txt', 'x');
    await idle.close();
    const active = await tree.client('remote', { sessionId: 'active-one' });
    const workspace = path.join(tree.home, 'workspaces', 'remote', 'idle-one');
    assert.ok(fs.existsSync(workspace));
    // Probe from the outside: joining would itself count as activity.
    await waitFor(async () => {
      await active.ping();
      return tree.logLines('remote').some((l) => l.msg === 'session expired' && l.sessionId === 'idle-one') || undefined;
    }, 15_000, 'the idle session to expire');
    const expired = await tree.client('remote', { sessionId: 'idle-one', mode: 'join', reconnect: false }).then(
      () => assert.fail('joining an expired session must fail'),
      (err: ContinuumError) => err,
    );
    assert.equal(expired.rpcCode, -32010);
    assert.equal(fs.existsSync(workspace), false, 'the workspace is deleted with the session');
    // The session that kept pinging all along is still there.
    assert.equal((await active.info()).sessionId, 'active-one');
    await active.close();
  });
});
