// Fault injection, hung executor (issue 4): an executor SIGSTOPped with requests in flight
// is found by heartbeats within the configured time (the default 3 s), killed and replaced;
// every request it held is answered -32003 at once, none of them runs, and a SIGCONT sent
// to the old pid afterwards changes nothing. Complements crash-isolation-heartbeats, which
// checks the replacement through the SDK with a shortened heartbeat.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { resolveConfig } from '../../src/config/load.js';
import { RawClient, type RpcMessage } from '../helpers/raw-client.js';
import { isAlive, startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';

const LIMIT = { timeout: 60_000 };
const { intervalMs, timeoutMs } = resolveConfig({}).heartbeat;
/** The supervisor judges heartbeats on a tick of timeoutMs / 10 (see Supervisor.heartbeatTickMs). */
const TICK_MS = Math.min(intervalMs, Math.floor(timeoutMs / 10));
/** Scheduling slack on a shared 2-core machine: the bound is timeoutMs plus this. */
const SLACK_MS = 1_000;

function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

describe('faults: hung executor', () => {
  let tree: Tree;
  let stopped: number | undefined;
  const opened: RawClient[] = [];
  before(async () => {
    tree = await startTree();
  });
  after(async () => {
    if (stopped !== undefined && isAlive(stopped)) process.kill(stopped, 'SIGCONT');
    for (const r of opened) r.close();
    await stopTree(tree);
  });

  test(`a SIGSTOPped executor is killed within ${timeoutMs} ms, its requests get -32003, and SIGCONT changes nothing`, LIMIT, async () => {
    const raw = await RawClient.open(tree.url, tree.token('remote'));
    opened.push(raw);
    const bound = await raw.call('session.connect', { environment: 'remote', sessionId: 'hung' });
    assert.equal(bound.error, undefined);
    assert.deepEqual((await raw.call('state.set', { key: 'before', value: 1 })).result, { ok: true });

    const rows = await tree.ps();
    const victim = rows.find((r) => r.id === 'remote-0')!;
    const others = rows.filter((r) => r.id !== 'remote-0' && r.id !== 'supervisor').map((r) => `${r.id}:${r.pid}`);
    stopped = victim.pid!;

    process.kill(stopped, 'SIGSTOP');
    const stoppedAt = Date.now();
    await waitFor(() => procState(stopped!) === 'T', 2_000, 'the executor to be stopped');

    // Requests that reach the stopped executor: ordered ones and concurrent ones.
    const calls: [string, unknown][] = [
      ['system.ping', undefined],
      ['state.set', { key: 'during', value: 'must not run' }],
      ['shell.exec', { command: 'echo ran > ran.txt' }],
      ['system.ping', undefined],
      ['state.get', { key: 'before' }],
    ];
    const ids = calls.map((_, i) => `inflight-${i}`);
    const sentAt = Date.now();
    calls.forEach(([method, params], i) => raw.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: ids[i], method, ...(params === undefined ? {} : { params }) })));
    const answers = await Promise.all(ids.map((id) => raw.wait((m) => m.id === id, timeoutMs + 10_000)));
    const answeredMs = Date.now() - sentAt;
    for (const [i, m] of answers.entries()) {
      assert.equal(m.jsonrpc, '2.0');
      assert.equal(m.error?.code, -32003, `${calls[i]![0]}: ${JSON.stringify(m)}`);
      assert.equal(m.error?.data?.retryable, true);
      assert.equal(m.error?.data?.executorId, 'remote-0');
    }

    await waitFor(() => !isAlive(stopped!), 10_000, 'the stopped executor to be killed');
    const killLine = await waitFor(() => tree.logLines('server').find((l) => l.id === 'remote-0' && l.msg === 'child missed its heartbeat; killing it' && l.childPid === stopped), 5_000, 'the heartbeat line in server.log');
    const detectedMs = Number(killLine.time) - stoppedAt;
    assert.ok(detectedMs <= timeoutMs + TICK_MS + SLACK_MS, `killed ${detectedMs} ms after SIGSTOP; the heartbeat timeout is ${timeoutMs} ms`);
    assert.ok(detectedMs >= timeoutMs - intervalMs - 50, `killed ${detectedMs} ms after SIGSTOP, before it could have missed ${timeoutMs} ms of heartbeats`);

    const replaced = await tree.waitRunning('remote-0', stopped, 15_000);
    assert.equal(replaced.restarts, victim.restarts + 1);

    // SIGCONT to the old pid: it is gone (killed and reaped), so nothing can wake up.
    let sigcont = 'delivered';
    try {
      process.kill(stopped, 'SIGCONT');
    } catch (err) {
      sigcont = (err as NodeJS.ErrnoException).code ?? 'error';
    }
    assert.equal(sigcont, 'ESRCH', 'the stopped executor still exists after being replaced');

    // The new executor serves the session; what was in flight never ran.
    const ping = await raw.call('system.ping');
    assert.equal((ping.result as { executor: { pid: number } }).executor.pid, replaced.pid);
    assert.deepEqual((await raw.call('state.get', { key: 'during' })).result, { value: null });
    assert.deepEqual((await raw.call('state.get', { key: 'before' })).result, { value: 1 });
    const ran = await raw.call('fs.stat', { path: 'ran.txt' });
    assert.equal(ran.error?.code, -32602, 'the shell.exec sent to the stopped executor ran');

    // Several heartbeat timeouts later, still the same process, answering, and nothing
    // else of the tree was touched.
    await waitFor(async () => (await tree.row('remote-0')).uptimeMs > 2 * timeoutMs, 15_000, 'the new executor to run for two heartbeat timeouts');
    const after_ = await tree.ps();
    const now = after_.find((r) => r.id === 'remote-0')!;
    assert.equal(now.pid, replaced.pid, 'the new executor was replaced too');
    assert.equal(now.restarts, victim.restarts + 1);
    assert.deepEqual(after_.filter((r) => r.id !== 'remote-0' && r.id !== 'supervisor').map((r) => `${r.id}:${r.pid}`), others);
    assert.equal(((await raw.call('system.ping')).result as { executor: { pid: number } }).executor.pid, replaced.pid);
    // Each in-flight id got exactly one answer.
    const perId = (id: string) => raw.messages.filter((m: RpcMessage) => m.id === id).length;
    assert.deepEqual(ids.map(perId), ids.map(() => 1));

    console.log(`# hung executor: heartbeat ${intervalMs}/${timeoutMs} ms; killed ${detectedMs} ms after SIGSTOP; ${ids.length} in-flight requests all -32003 after ${answeredMs} ms; SIGCONT to old pid: ${sigcont}; new pid ${replaced.pid}`);
  });
});
