// What the ledger keeps of an executor's answer: the result as sent (for any id, ASCII or
// not), cut to the cap and marked, shell.exec's output cut per stream with its exit status,
// and an error's code and message.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addAnswer } from '../../src/daemons/websocket/ledger-answers.js';
import { decodeLedgerWrite, LedgerWriteBuilder, type FinishOp } from '../../src/protocol/ledger-wire.js';
import { errorFrame, successFrame, type RequestId } from '../../src/protocol/jsonrpc.js';
import { ContinuumError } from '../../src/protocol/errors.js';

function kept(method: string, id: RequestId | null, frame: string, isError = false, cap = 1_000): FinishOp {
  const batch = new LedgerWriteBuilder();
  addAnswer(batch, 7, 100, 110, method, id, isError, Buffer.from(frame), cap);
  const [op] = decodeLedgerWrite(JSON.parse(JSON.stringify(batch.params)));
  assert.equal(op?.op, 'finish');
  return op as FinishOp;
}

describe('ledger answers', () => {
  it('keeps the result as sent, whatever the id', () => {
    for (const id of ['req-1', 'ünïcödé-☃', 'quote"and\\slash', 42, null] as RequestId[]) {
      const op = kept('state.get', id, successFrame(id, { value: { a: 'ü', b: [1, 2] } }));
      assert.equal(op.state, 'completed');
      assert.deepEqual(JSON.parse(op.result!), { value: { a: 'ü', b: [1, 2] } }, `id ${JSON.stringify(id)}`);
      assert.equal(op.cut, undefined);
    }
  });

  it('keeps no result over the cap, and says so', () => {
    const op = kept('fs.read', 'r', successFrame('r', { content: 'x'.repeat(2_000) }));
    assert.equal(op.result, undefined);
    assert.equal(op.cut, true);
  });

  it("parses an answer of another shape rather than keep a wrong slice", () => {
    const op = kept('state.get', 'r', '{"id": "r", "jsonrpc": "2.0", "result": {"value": 1}}');
    assert.deepEqual(JSON.parse(op.result!), { value: 1 });
  });

  it("cuts shell.exec's output per stream and keeps its exit status", () => {
    const result = { exitCode: 3, signal: null, stdout: 'o'.repeat(600), stderr: 'short', timedOut: false, truncated: false };
    const op = kept('shell.exec', 'r', successFrame('r', result), false, 256);
    assert.deepEqual(op.exit, { exitCode: 3, signal: null, timedOut: false });
    assert.equal(op.cut, true);
    const got = JSON.parse(op.result!) as typeof result;
    assert.match(got.stdout, /^o{256}\n\[… cut by the ledger: 344 more bytes not kept\]$/);
    assert.equal(got.stderr, 'short');
    assert.equal(got.truncated, true);
  });

  it("keeps an error's code and message", () => {
    const op = kept('fs.read', 'r', errorFrame('r', new ContinuumError('INVALID_PARAMS', 'no such file')), true);
    assert.equal(op.state, 'failed');
    assert.equal(op.error?.message, 'no such file');
    assert.equal(typeof op.error?.code, 'number');
  });
});
