// The SDK settles its pending requests from the command ledger instead of failing them
// blindly: after a dropped connection it sends them again with the same ids, and gets the
// recorded result, the running command's result, or a typed loss with its reason.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type WebSocket from 'ws';
import type { ContinuumClient } from '../../src/client/index.js';
import { ContinuumError } from '../../src/protocol/errors.js';
import type { LostReason } from '../../src/protocol/methods/command.js';
import { startTree, stopTree, type Tree } from '../helpers/tree.js';
import { kill9, waitForCommand } from './support/processes.js';
import { nextEvent, within } from './support/waits.js';

const LIMIT = { timeout: 60_000 };

function settled<T>(p: Promise<T>): Promise<T | Error> {
  return p.then((v) => v, (e: Error) => e);
}

/** The pending request settled as lost; its reason, from the ledger. */
async function lostReason(pending: Promise<unknown>): Promise<LostReason> {
  const err = await within(pending, 15_000, 'the pending exec to settle');
  assert.ok(err instanceof ContinuumError, String(err));
  assert.equal(err.code, 'CONTINUUM_COMMAND_LOST', err.message);
  return err.data?.lostReason as LostReason;
}

describe('SDK resumes from the ledger', () => {
  let tree: Tree;
  before(async () => {
    tree = await startTree();
  });
  after(() => stopTree(tree));

  function workspace(client: ContinuumClient): string {
    return path.join(tree.home, 'workspaces', client.session.environment, client.session.sessionId);
  }

  test('a dropped connection (edge alive): the pending exec is resent and settles with its one real result', LIMIT, async () => {
    const client = await tree.client('remote');
    try {
      const pid = (await tree.row('remote-0')).pid!;
      const pending = settled(client.exec('sleep 1; echo once >> once.txt; echo finished'));
      await waitForCommand(pid, 'sleep 1');
      const reconnected = nextEvent(client, 'reconnected');
      (client as unknown as { ws: WebSocket }).ws.terminate();
      await within(reconnected, 10_000, 'the SDK to reconnect');
      const r = await within(pending, 15_000, 'the pending exec to settle');
      assert.ok(!(r instanceof Error), `expected the result, got ${String(r)}`);
      assert.equal(r.stdout, 'finished\n');
      assert.equal(fs.readFileSync(path.join(workspace(client), 'once.txt'), 'utf8'), 'once\n', 'ran once, not twice');
    } finally {
      await client.close();
    }
  });

  test('an executor crash: the pending exec settles as lost, with the signal from the ledger', LIMIT, async () => {
    const client = await tree.client('agent');
    try {
      const pid = (await tree.row('agent-0')).pid!;
      const pending = settled(client.exec('sleep 5'));
      await waitForCommand(pid, 'sleep 5');
      kill9(pid);
      const reason = await lostReason(pending);
      assert.equal(reason.kind, 'signal');
      assert.equal(reason.signal, 'SIGKILL');
      assert.match(reason.detail, /executor agent-0/);
      await tree.waitRunning('agent-0', pid);
    } finally {
      await client.close();
    }
  });

  test('an edge restart: the pending exec settles as lost because the edge died, and a later one runs', LIMIT, async () => {
    const client = await tree.client('persona');
    try {
      const execPid = (await tree.row('persona-0')).pid!;
      const edge = (await tree.row('websocket-daemon')).pid!;
      const pending = settled(client.exec('sleep 3; echo late >> late.txt'));
      await waitForCommand(execPid, 'sleep 3');
      const reconnected = nextEvent(client, 'reconnected');
      kill9(edge);
      await within(reconnected, 20_000, 'the SDK to reconnect to the new edge');
      const reason = await lostReason(pending);
      assert.equal(reason.signal, 'SIGKILL');
      assert.match(reason.detail, /edge/);
      const r = await client.exec('echo after');
      assert.equal(r.stdout, 'after\n');
    } finally {
      await client.close();
    }
  });
});
