// The command ledger (issue 4): every request gets an entry in the session daemon, written
// before dispatch; accepted → started → completed | failed | lost; a resent string id is
// answered from the ledger instead of running twice; retention and session close remove
// entries; an executor killed under a command leaves it lost with the reason.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CommandEntry } from '../../src/protocol/methods/command.js';
import Database from 'better-sqlite3';
import { connectFrameSocket } from '../../src/bus/frame-socket.js';
import { RpcLink } from '../../src/bus/rpc-link.js';
import { RawClient, type RpcMessage } from '../helpers/raw-client.js';
import { startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';
import { kill9, waitForCommand } from './support/processes.js';

const LIMIT = { timeout: 60_000 };

/** Sends a request with a string id and waits for its answer (not a notification). */
function send(raw: RawClient, id: string, method: string, params?: unknown): void {
  raw.sendRaw(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }));
}
function answer(raw: RawClient, id: string, nth = 1, timeoutMs = 15_000): Promise<RpcMessage> {
  return waitFor(() => raw.messages.filter((m) => m.id === id && m.method === undefined)[nth - 1], timeoutMs, `answer ${nth} to ${id}`);
}
async function status(raw: RawClient, requestId: string): Promise<RpcMessage> {
  return raw.call('command.status', { requestId });
}
function entryOf(m: RpcMessage): CommandEntry {
  assert.equal(m.error, undefined, JSON.stringify(m.error));
  return m.result as CommandEntry;
}

describe('command ledger', () => {
  let tree: Tree;

  before(async () => {
    tree = await startTree({
      config: {
        environments: [
          { name: 'remote', ledger: { outputBytes: 1024 } },
          { name: 'persona', ledger: { maxEntries: 5 } },
          { name: 'agent', ledger: { maxAgeMs: 1000 } },
        ],
      },
    });
  });
  after(() => stopTree(tree));

  async function session(env: string): Promise<{ raw: RawClient; sessionId: string; workspace: string }> {
    const raw = await RawClient.open(tree.url, tree.token(env));
    const bound = await raw.call('session.connect', { environment: env });
    assert.equal(bound.error, undefined, JSON.stringify(bound.error));
    const sessionId = (bound.result as { sessionId: string }).sessionId;
    return { raw, sessionId, workspace: path.join(tree.home, 'workspaces', env, sessionId) };
  }

  test('lifecycle: started while running, then completed with times, exit status and the result', LIMIT, async () => {
    const { raw } = await session('remote');
    try {
      send(raw, 'life-1', 'shell.exec', { command: 'sleep 1; echo out; echo err >&2; exit 3' });
      const running = await waitFor(async () => {
        const e = entryOf(await status(raw, 'life-1'));
        return e.state === 'started' ? e : undefined;
      }, 5_000, 'the entry to be started');
      assert.equal(running.finishedAt, null);
      assert.equal(running.method, 'shell.exec');
      assert.equal(running.idScope, 'request');
      assert.equal(running.executorId, 'remote-0');
      assert.ok(running.startedAt! >= running.acceptedAt);

      const live = await answer(raw, 'life-1');
      const done = entryOf(await status(raw, 'life-1'));
      assert.equal(done.state, 'completed', 'a command that ran to its end is completed, whatever its exit code');
      assert.deepEqual(done.exit, { exitCode: 3, signal: null, timedOut: false });
      assert.ok(done.durationMs! >= 900, `duration ${done.durationMs} ms for a 1 s command`);
      assert.equal(done.finishedAt! - done.startedAt!, done.durationMs);
      assert.deepEqual(done.result, live.result, 'the kept result is the answer the client got');
      assert.equal(done.resultCut, false);

      // An error answer is `failed`, with the error.
      send(raw, 'life-2', 'fs.delete', { path: 'no/such/file' });
      const err = await answer(raw, 'life-2');
      assert.equal(err.error?.code, -32602);
      const failed = entryOf(await status(raw, 'life-2'));
      assert.equal(failed.state, 'failed');
      assert.equal(failed.error?.code, -32602);
      assert.equal(failed.error?.message, err.error?.message);

      // Numeric ids are scoped to their connection: in the list, not addressable by command.status.
      const set = await raw.call('state.set', { key: 'n', value: 1 });
      assert.equal(set.error, undefined);
      // Read-only methods change nothing and are not kept: running them again is the same.
      send(raw, 'read-1', 'system.ping');
      await answer(raw, 'read-1');
      assert.equal((await status(raw, 'read-1')).error?.code, -32014);
      const list = (await raw.call('command.list', {})).result as { entries: CommandEntry[]; more: boolean };
      assert.deepEqual(list.entries.filter((e) => e.idScope === 'request').map((e) => [e.requestId, e.state]), [['life-1', 'completed'], ['life-2', 'failed']]);
      const scoped = list.entries.filter((e) => e.idScope === 'connection');
      assert.ok(scoped.some((e) => e.method === 'state.set' && e.state === 'completed'), JSON.stringify(scoped));
      assert.ok(scoped.every((e) => e.requestId.startsWith('#')));
      const since = (await raw.call('command.list', { since: done.acceptedAt + 1 })).result as { entries: CommandEntry[] };
      assert.ok(!since.entries.some((e) => e.requestId === 'life-1'), 'since excludes older entries');

      // The command namespace is in the default policy, and listed.
      const names = ((await raw.call('system.commands')).result as { name: string }[]).map((c) => c.name);
      assert.ok(names.includes('command.status') && names.includes('command.list'), names.join(' '));

      // Unknown ids and bad params are clear errors.
      assert.equal((await status(raw, 'never-sent')).error?.code, -32014);
      assert.equal((await raw.call('command.status', { requestId: 5 })).error?.code, -32602);
      assert.equal((await raw.call('command.list', { since: 'yesterday' })).error?.code, -32602);
    } finally {
      raw.close();
    }
  });

  test('the output copy is capped and the cut is marked; the live answer is whole', LIMIT, async () => {
    const { raw } = await session('remote');
    try {
      send(raw, 'big-1', 'shell.exec', { command: "head -c 5000 /dev/zero | tr '\\0' x" });
      const live = await answer(raw, 'big-1');
      assert.equal((live.result as { stdout: string }).stdout.length, 5000);
      const e = entryOf(await status(raw, 'big-1'));
      assert.equal(e.resultCut, true);
      const kept = e.result as { stdout: string; truncated: boolean };
      assert.match(kept.stdout, /^x{1024}\n\[… cut by the ledger: 3976 more bytes not kept\]$/);
      assert.equal(kept.truncated, true);
      // A resend gets the kept (cut, marked) copy.
      send(raw, 'big-1', 'shell.exec', { command: "head -c 5000 /dev/zero | tr '\\0' x" });
      const again = await answer(raw, 'big-1', 2);
      assert.equal((again.result as { stdout: string }).stdout, kept.stdout);
    } finally {
      raw.close();
    }
  });

  test('idempotency: a resent id runs once, whether it is finished or still running', LIMIT, async () => {
    const { raw, workspace } = await session('remote');
    const other = await RawClient.open(tree.url, tree.token('remote'));
    try {
      send(raw, 'append-1', 'shell.exec', { command: 'echo line >> appended.txt; wc -l < appended.txt' });
      const first = await answer(raw, 'append-1');
      send(raw, 'append-1', 'shell.exec', { command: 'echo line >> appended.txt; wc -l < appended.txt' });
      const second = await answer(raw, 'append-1', 2);
      assert.deepEqual(second, first);
      assert.equal(fs.readFileSync(path.join(workspace, 'appended.txt'), 'utf8'), 'line\n');

      // Still running: the resend (here from another connection of the session) waits for it.
      const sessionId = path.basename(workspace);
      assert.equal((await other.call('session.join', { sessionId })).error, undefined);
      send(raw, 'append-2', 'shell.exec', { command: 'sleep 1; echo slow >> appended.txt; echo done' });
      await waitFor(async () => entryOf(await status(raw, 'append-2')).state === 'started', 5_000, 'append-2 to start');
      send(other, 'append-2', 'shell.exec', { command: 'sleep 1; echo slow >> appended.txt; echo done' });
      send(raw, 'append-2', 'shell.exec', { command: 'sleep 1; echo slow >> appended.txt; echo done' });
      const [a, b, c] = await Promise.all([answer(raw, 'append-2'), answer(other, 'append-2'), answer(raw, 'append-2', 2)]);
      assert.equal((a.result as { stdout: string }).stdout, 'done\n');
      assert.deepEqual(b, a);
      assert.deepEqual(c, a);
      assert.equal(fs.readFileSync(path.join(workspace, 'appended.txt'), 'utf8'), 'line\nslow\n');

      // A recorded failure is answered again as it was.
      send(raw, 'fail-1', 'fs.delete', { path: 'missing' });
      const f1 = await answer(raw, 'fail-1');
      assert.equal(f1.error?.code, -32602);
      send(raw, 'fail-1', 'fs.delete', { path: 'missing' });
      assert.deepEqual(await answer(raw, 'fail-1', 2), f1);
    } finally {
      raw.close();
      other.close();
    }
  });

  test('kill -9 of the executor mid shell.exec: -32003 at once, then lost with the signal; a resend gets the loss', LIMIT, async () => {
    const { raw, workspace } = await session('server');
    try {
      const pid = (await tree.row('server-0')).pid!;
      send(raw, 'doomed', 'shell.exec', { command: 'sleep 5; echo ran >> after.txt' });
      await waitForCommand(pid, 'sleep 5');
      kill9(pid);
      const live = await answer(raw, 'doomed');
      assert.equal(live.error?.code, -32003);
      assert.equal(live.error?.data?.ledger, 'lost');
      const e = await waitFor(async () => {
        const s = entryOf(await status(raw, 'doomed'));
        return s.state === 'lost' ? s : undefined;
      }, 5_000, 'the entry to be lost');
      assert.equal(e.lostReason?.kind, 'signal');
      assert.equal(e.lostReason?.signal, 'SIGKILL');
      assert.match(e.lostReason!.detail, new RegExp(`executor server-0 \\(pid ${pid}\\) was killed by SIGKILL`));
      assert.ok(e.finishedAt! >= e.startedAt!);

      await tree.waitRunning('server-0', pid);
      send(raw, 'doomed', 'shell.exec', { command: 'sleep 5; echo ran >> after.txt' });
      const again = await answer(raw, 'doomed', 2);
      assert.equal(again.error?.code, -32015, JSON.stringify(again));
      assert.equal((again.error?.data?.lostReason as { signal: string }).signal, 'SIGKILL');
      assert.equal(fs.existsSync(path.join(workspace, 'after.txt')), false, 'the lost command was not run again');
      // Nothing of the session is left open.
      const list = (await raw.call('command.list')).result as { entries: CommandEntry[] };
      assert.ok(list.entries.every((x) => ['completed', 'failed', 'lost'].includes(x.state)), JSON.stringify(list.entries.map((x) => x.state)));
    } finally {
      raw.close();
    }
  });

  test('retention: count and age limits per environment; a closed session takes its entries', LIMIT, async () => {
    const persona = await session('persona');
    const agent = await session('agent');
    try {
      for (let i = 0; i < 12; i++) {
        send(persona.raw, `p-${i}`, 'state.set', { key: 'k', value: i });
        await answer(persona.raw, `p-${i}`);
      }
      // Swept every 2 s: at most 5 finished entries in the persona environment, the newest.
      await waitFor(async () => {
        const l = (await persona.raw.call('command.list', {})).result as { entries: CommandEntry[] };
        return l.entries.length <= 5 ? l : undefined;
      }, 10_000, 'the count limit');
      assert.equal((await status(persona.raw, 'p-0')).error?.code, -32014);
      assert.equal(entryOf(await status(persona.raw, 'p-11')).state, 'completed');

      send(agent.raw, 'a-old', 'log.write', { level: 'info', message: 'old' });
      await answer(agent.raw, 'a-old');
      assert.equal(entryOf(await status(agent.raw, 'a-old')).state, 'completed');
      await waitFor(async () => (await status(agent.raw, 'a-old')).error?.code === -32014, 10_000, 'the age limit (1 s)');

      // Close: the session's entries go with it; a new session of the same id starts empty.
      send(persona.raw, 'kept', 'state.delete', { key: 'nothing' });
      await answer(persona.raw, 'kept');
      assert.equal((await persona.raw.call('session.close')).error, undefined);
      const again = await RawClient.open(tree.url, tree.token('persona'));
      try {
        assert.equal((await again.call('session.connect', { environment: 'persona', sessionId: persona.sessionId })).error, undefined);
        assert.equal((await status(again, 'kept')).error?.code, -32014);
        send(again, 'kept', 'state.set', { key: 'k', value: 'new' });
        assert.deepEqual((await answer(again, 'kept')).result, { ok: true });
        assert.deepEqual((await again.call('state.get', { key: 'k' })).result, { value: 'new' }, 'the id ran afresh in the new session');
      } finally {
        again.close();
      }
    } finally {
      persona.raw.close();
      agent.raw.close();
    }
  });

  test('entries survive a kill -9 of the session daemon', LIMIT, async () => {
    const { raw } = await session('remote');
    try {
      send(raw, 'durable-1', 'state.set', { key: 'd', value: 1 });
      await answer(raw, 'durable-1');
      const pid = (await tree.row('session-daemon')).pid!;
      kill9(pid);
      await tree.waitRunning('session-daemon', pid);
      const e = await waitFor(async () => {
        const m = await status(raw, 'durable-1');
        return m.error ? undefined : (m.result as CommandEntry);
      }, 10_000, 'command.status after the restart');
      assert.equal(e.state, 'completed');
    } finally {
      raw.close();
    }
  });

  test("the ledger has a file and a socket of its own, and the socket serves only the edge", LIMIT, async () => {
    // In its own file: sessions.db keeps only the session tables.
    const db = new Database(path.join(tree.home, 'state', 'sessions.db'), { readonly: true, fileMustExist: true });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    db.close();
    assert.ok(!tables.includes('command_ledger'), `sessions.db still has the ledger: ${tables.join(', ')}`);
    assert.ok(fs.existsSync(path.join(tree.home, 'state', 'ledger.db')));
    // Outside run/bus/ (which sandboxes see), and not writable, so not connectable, by other users.
    const sock = path.join(tree.home, 'run', 'ledger.sock');
    assert.equal(fs.statSync(sock).mode & 0o022, 0, 'ledger.sock is connectable by other users');

    const ask = async (hello: unknown, method: string) => {
      const link = new RpcLink(await connectFrameSocket(sock), 'ledger');
      try {
        if (hello !== undefined) await link.call('hello', hello, 2_000).catch((err: Error) => err);
        return await link.call(method, { ops: [] }, 2_000).then(() => undefined, (err: { code?: string }) => err.code);
      } finally {
        link.close();
      }
    };
    // No hello: nothing is served. A bad proof: refused, and the link is closed.
    assert.equal(await ask(undefined, 'ledger.write'), 'CONTINUUM_FORBIDDEN');
    assert.equal(await ask({ role: 'websocket-daemon', id: 'edge', proof: 'forged', run: 'r' }, 'ledger.write'), 'CONTINUUM_CONNECTION_LOST');
    // An executor's role is refused whatever its proof.
    assert.equal(await ask({ role: 'executor', id: 'remote-0', proof: 'x', run: 'r' }, 'ledger.get'), 'CONTINUUM_CONNECTION_LOST');
    // The edge's own link still works.
    const { raw } = await session('remote');
    try {
      send(raw, 'after-probes', 'state.set', { key: 'p', value: 1 });
      assert.equal((await answer(raw, 'after-probes')).error, undefined);
      assert.equal(entryOf(await status(raw, 'after-probes')).state, 'completed');
    } finally {
      raw.close();
    }
  });
});
