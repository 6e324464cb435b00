// The edge's ledger writer against a fake session daemon: what goes in which batch, in which
// order, what is re-sent after a failed write, and what its sink hears.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import type { AcceptFields, LaterOp, LedgerDaemon, LedgerSink } from '../../src/daemons/websocket/ledger-writer.js';
import { LedgerWriter } from '../../src/daemons/websocket/ledger-writer.js';
import { decodeLedgerOp, type LedgerOp } from '../../src/protocol/ledger-wire.js';
import type { CommandEntry } from '../../src/protocol/methods/command.js';

interface Call {
  ops: LedgerOp[];
  answer: (answers: (CommandEntry | null)[]) => void;
  fail: (err: Error) => void;
}

/** Holds every ledger.write until the test answers it. */
class FakeDaemon implements LedgerDaemon {
  readonly calls: Call[] = [];
  call<T>(method: string, params: unknown): Promise<T> {
    assert.equal(method, 'ledger.write');
    const ops = (params as { ops: unknown[] }).ops.map(decodeLedgerOp);
    return new Promise<T>((resolve, reject) => this.calls.push({ ops, answer: (a) => resolve(a as T), fail: reject }));
  }
}

type Cmd = AcceptFields & { name: string };

class Sink implements LedgerSink<Cmd, Cmd> {
  readonly heard: string[] = [];
  accepted(a: Cmd, existing: CommandEntry | null): void {
    this.heard.push(`accepted ${a.name}${existing ? ` (existing ${existing.state})` : ''}`);
  }
  refused(a: Cmd, err: Error): void {
    this.heard.push(`refused ${a.name}: ${err.message}`);
  }
  recorded(op: LaterOp, owner: Cmd | undefined): void {
    this.heard.push(`recorded ${op.op} ${op.r}${owner ? ` of ${owner.name}` : ''}`);
  }
}

const cmd = (name: string, acceptedAt = Date.now()): Cmd => ({
  name, sessionId: 's1', requestId: name, scoped: true, environment: 'remote', method: 'state.set', executorId: 'remote-0', acceptedAt,
});
const finish = (r: string): LaterOp => ({ op: 'finish', s: 's1', r, state: 'completed', at: 2, started: 1, result: '{"ok":true}' });

function setup() {
  const daemon = new FakeDaemon();
  const sink = new Sink();
  const writer = new LedgerWriter<Cmd, Cmd>(daemon);
  writer.attach(sink);
  return { daemon, sink, writer };
}

describe('ledger writer', () => {
  it('sends one tick\'s accepts in one write, one write at a time, and tells the sink in order', async () => {
    const { daemon, sink, writer } = setup();
    writer.accept(cmd('a'));
    writer.accept(cmd('b'));
    await tick();
    assert.equal(daemon.calls.length, 1);
    assert.deepEqual(daemon.calls[0]!.ops.map((o) => `${o.op} ${o.r}`), ['accept a', 'accept b']);
    // While that write is out, the next ones gather.
    writer.accept(cmd('c'));
    const c = cmd('c2');
    writer.accept(c);
    writer.record(finish('a'), cmd('a'));
    await tick();
    assert.equal(daemon.calls.length, 1);
    daemon.calls[0]!.answer([null, { state: 'completed' } as CommandEntry]);
    await tick();
    await tick();
    assert.deepEqual(sink.heard, ['accepted a', 'accepted b (existing completed)']);
    // The gathered batch: later ops first (a finish of a key precedes any new accept of it).
    assert.equal(daemon.calls.length, 2);
    assert.deepEqual(daemon.calls[1]!.ops.map((o) => `${o.op} ${o.r}`), ['finish a', 'accept c', 'accept c2']);
    daemon.calls[1]!.answer([null, null, null]);
    await tick();
    assert.deepEqual(sink.heard.slice(2), ['recorded finish a of a', 'accepted c', 'accepted c2']);
  });

  it('re-sends a failed batch, and refuses accepts that have waited too long', async () => {
    const { daemon, sink, writer } = setup();
    writer.accept(cmd('fresh'));
    writer.accept(cmd('stale', Date.now() - 6_000));
    writer.record(finish('old'));
    await new Promise((r) => setTimeout(r, 10)); // the accept's tick, then the later op's timer
    assert.equal(daemon.calls.length, 1);
    daemon.calls[0]!.fail(new Error('link down'));
    await tick();
    assert.deepEqual(sink.heard, ['refused stale: link down']);
    // Re-sent after the retry delay, without the refused accept.
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(daemon.calls.length, 2);
    assert.deepEqual(daemon.calls[1]!.ops.map((o) => `${o.op} ${o.r}`), ['finish old', 'accept fresh']);
    daemon.calls[1]!.answer([null, null]);
    await tick();
    assert.deepEqual(sink.heard.slice(1), ['recorded finish old', 'accepted fresh']);
  });

  it('resolves a barrier with the batch that carries it, after every op recorded before it', async () => {
    const { daemon, writer } = setup();
    writer.accept(cmd('a'));
    await tick();
    writer.record(finish('a'));
    let passed = false;
    void writer.barrier().then(() => (passed = true));
    await new Promise((r) => setTimeout(r, 10));
    // The first write is still out: the finish and the barrier wait for it.
    assert.equal(daemon.calls.length, 1);
    daemon.calls[0]!.answer([null]);
    await tick();
    await tick();
    assert.equal(passed, false);
    assert.equal(daemon.calls.length, 2);
    daemon.calls[1]!.answer([null]);
    await tick();
    assert.equal(passed, true);
  });
});
