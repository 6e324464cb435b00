// The edge's ledger writer against a fake session daemon: what goes in which batch, in which
// order, what is re-sent after a failed write, and what its sink hears.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import type { AcceptFields, LaterOp, LedgerDaemon, LedgerSink } from '../../src/daemons/websocket/ledger-writer.js';
import { LedgerWriter } from '../../src/daemons/websocket/ledger-writer.js';
import { decodeLedgerWrite, type LedgerOp, type LedgerWriteBuilder } from '../../src/protocol/ledger-wire.js';
import type { CommandEntry } from '../../src/protocol/methods/command.js';

interface Call {
  ops: LedgerOp[];
  answer: (answers: (number | CommandEntry | null)[]) => void;
  fail: (err: Error) => void;
}

/** Holds every ledger.write until the test answers it. */
class FakeDaemon implements LedgerDaemon {
  readonly calls: Call[] = [];
  call<T>(method: string, params: unknown): Promise<T> {
    assert.equal(method, 'ledger.write');
    const ops = decodeLedgerWrite(params);
    return new Promise<T>((resolve, reject) => this.calls.push({ ops, answer: (a) => resolve(a as T), fail: reject }));
  }
}

type Cmd = AcceptFields & { name: string; seq: number };

class Sink implements LedgerSink<Cmd, Cmd> {
  readonly heard: string[] = [];
  encoded = 0;
  accepted(a: Cmd, answer: number | CommandEntry): void {
    if (typeof answer === 'number') a.seq = answer;
    this.heard.push(`accepted ${a.name}${typeof answer === 'number' ? ` as ${answer}` : ` (existing ${answer.state})`}`);
  }
  refused(a: Cmd, err: Error): void {
    this.heard.push(`refused ${a.name}: ${err.message}`);
  }
  encodeFinish(owner: Cmd, batch: LedgerWriteBuilder): void {
    this.encoded++;
    batch.finish(owner.seq, 'completed', 2, 1, '{"ok":true}', false, null);
  }
  recorded(op: LaterOp, owner: Cmd | undefined): void {
    this.heard.push(`recorded ${op.op} ${op.op === 'drop' ? op.r : op.seq}${owner ? ` of ${owner.name}` : ''}`);
  }
  finished(owner: Cmd): void {
    this.heard.push(`finished ${owner.name}`);
  }
}

/** What a batch held, in order: accepts by request id, later ops and finishes by seq. */
const shown = (ops: LedgerOp[]) => ops.map((o) => `${o.op} ${o.op === 'accept' || o.op === 'drop' ? o.r : o.seq}`);

const cmd = (name: string, acceptedAt = Date.now(), seq = 0): Cmd => ({
  name, sessionId: 's1', requestId: name, scoped: true, environment: 'remote', method: 'state.set', executorId: 'remote-0', acceptedAt, seq,
});

function setup() {
  const daemon = new FakeDaemon();
  const sink = new Sink();
  const writer = new LedgerWriter<Cmd, Cmd>(daemon);
  writer.attach(sink);
  return { daemon, sink, writer };
}

describe('ledger writer', () => {
  it("sends one tick's accepts in one write, one write at a time, and tells the sink in order", async () => {
    const { daemon, sink, writer } = setup();
    const a = cmd('a');
    writer.accept(a);
    writer.accept(cmd('b'));
    await tick();
    assert.equal(daemon.calls.length, 1);
    assert.deepEqual(shown(daemon.calls[0]!.ops), ['accept a', 'accept b']);
    // While that write is out, the next ones gather.
    writer.accept(cmd('c'));
    writer.accept(cmd('c2'));
    await tick();
    assert.equal(daemon.calls.length, 1);
    daemon.calls[0]!.answer([1, { state: 'completed' } as CommandEntry]);
    await tick();
    await tick();
    assert.deepEqual(sink.heard, ['accepted a as 1', 'accepted b (existing completed)']);
    writer.finish(a);
    writer.record({ op: 'start', seq: 9, at: 1 });
    // The gathered batch: later ops, then finishes (a finish of a key precedes any new accept of it).
    assert.equal(daemon.calls.length, 2);
    assert.deepEqual(shown(daemon.calls[1]!.ops), ['accept c', 'accept c2']);
    daemon.calls[1]!.answer([2, 3]);
    await tick();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(daemon.calls.length, 3);
    assert.deepEqual(shown(daemon.calls[2]!.ops), ['start 9', 'finish 1']);
    daemon.calls[2]!.answer([null, null]);
    await tick();
    assert.deepEqual(sink.heard.slice(2), ['accepted c as 2', 'accepted c2 as 3', 'recorded start 9', 'finished a']);
  });

  it('encodes a finish only when its batch is made, again if that batch must be re-sent', async () => {
    const { daemon, sink, writer } = setup();
    writer.finish(cmd('a', Date.now(), 5));
    assert.equal(sink.encoded, 0);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(sink.encoded, 1);
    daemon.calls[0]!.fail(new Error('link down'));
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(sink.encoded, 2);
    assert.deepEqual(shown(daemon.calls[1]!.ops), ['finish 5']);
    daemon.calls[1]!.answer([null]);
    await tick();
    assert.deepEqual(sink.heard, ['finished a']);
  });

  it('re-sends a failed batch, and refuses accepts that have waited too long', async () => {
    const { daemon, sink, writer } = setup();
    writer.accept(cmd('fresh'));
    writer.accept(cmd('stale', Date.now() - 6_000));
    writer.record({ op: 'drop', s: 's1', r: 'old' });
    await new Promise((r) => setTimeout(r, 10)); // the accept's tick, then the later op's timer
    assert.equal(daemon.calls.length, 1);
    daemon.calls[0]!.fail(new Error('link down'));
    await tick();
    assert.deepEqual(sink.heard, ['refused stale: link down']);
    // Re-sent after the retry delay, without the refused accept.
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(daemon.calls.length, 2);
    assert.deepEqual(shown(daemon.calls[1]!.ops), ['drop old', 'accept fresh']);
    daemon.calls[1]!.answer([null, 4]);
    await tick();
    assert.deepEqual(sink.heard.slice(1), ['recorded drop old', 'accepted fresh as 4']);
  });

  it('refuses an accept the ledger gives no answer for, rather than run it unrecorded', async () => {
    const { daemon, sink, writer } = setup();
    writer.accept(cmd('a'));
    await tick();
    daemon.calls[0]!.answer([null]);
    await tick();
    assert.match(sink.heard[0]!, /^refused a: the ledger did not say/);
  });

  it('resolves a barrier with the batch that carries it, after every op recorded before it', async () => {
    const { daemon, writer } = setup();
    const a = cmd('a');
    writer.accept(a);
    await tick();
    a.seq = 1;
    writer.finish(a);
    let passed = false;
    void writer.barrier().then(() => (passed = true));
    await new Promise((r) => setTimeout(r, 10));
    // The first write is still out: the finish and the barrier wait for it.
    assert.equal(daemon.calls.length, 1);
    daemon.calls[0]!.answer([1]);
    await tick();
    await tick();
    assert.equal(passed, false);
    assert.equal(daemon.calls.length, 2);
    daemon.calls[1]!.answer([null]);
    await tick();
    assert.equal(passed, true);
  });
});
