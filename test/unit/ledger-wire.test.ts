// The ledger's wire form: every op comes back as it went, contexts are listed once per write,
// and malformed writes are refused (the session daemon trusts the edge's role, not its bytes).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeLedgerWrite, encodeLedgerWrite, type LedgerOp } from '../../src/protocol/ledger-wire.js';

const ops: LedgerOp[] = [
  { op: 'accept', s: 's1', r: 'req-1', scope: 'request', env: 'remote', m: 'state.set', ex: 'remote-0', at: 1_000 },
  { op: 'accept', s: 's1', r: '#edge.7', scope: 'connection', env: 'agent', m: 'shell.exec', ex: 'agent-1', at: 1_001 },
  { op: 'accept', s: 's2', r: 'req-2', scope: 'request', env: 'remote', m: 'state.set', ex: 'remote-0', at: 1_001 },
  { op: 'start', seq: 1, at: 1_002 },
  { op: 'finish', seq: 1, state: 'completed', at: 1_003, started: 1_002, result: '{"ok":true}' },
  { op: 'finish', seq: 2, state: 'completed', at: 1_003, started: 1_002, cut: true },
  { op: 'finish', seq: 3, state: 'completed', at: 1_004, started: 1_002, exit: { exitCode: 0, signal: null, timedOut: false }, result: '{"stdout":""}' },
  { op: 'finish', seq: 4, state: 'failed', at: 1_005, started: 1_002, error: { code: -32004, message: 'timed out', data: { retryable: true } } },
  { op: 'finish', seq: 5, state: 'lost', at: 1_006, lost: { kind: 'signal', signal: 'SIGKILL', exitCode: null, detail: 'killed' } },
  { op: 'drop', s: 's1', r: 'req-6' },
];

describe('ledger wire ops', () => {
  it('decodes every op as it was encoded, through JSON, with each context listed once', () => {
    const params = JSON.parse(JSON.stringify(encodeLedgerWrite(ops))) as { ctx: unknown[] };
    assert.deepEqual(params.ctx, [['remote', 'state.set', 'remote-0'], ['agent', 'shell.exec', 'agent-1']]);
    assert.deepEqual(decodeLedgerWrite(params), ops);
  });

  it('refuses malformed writes and ops', () => {
    const ctx = [['remote', 'state.set', 'remote-0']];
    const bad: unknown[] = [
      null,
      {},
      { ops: [] },
      { ctx: [['remote', 'state.set']], ops: [] },
      { ctx, ops: [null] },
      { ctx, ops: ['a'] },
      { ctx, ops: [[0, 's1']] },
      { ctx, ops: [[0, 's1', 'r', 2, 0, 1]] },
      { ctx, ops: [[0, 's1', 'r', 1, 0, '1']] },
      { ctx, ops: [[0, 's1', 'r', 1, 1, 1]] },
      { ctx, ops: [[0, 's1', 'r', 1, '0', 1]] },
      { ctx, ops: [[1, 0, 1]] },
      { ctx, ops: [[1, 's1', 1]] },
      { ctx, ops: [[2, 1, 3, 1, null, null, 0, null]] },
      { ctx, ops: [[2, 1, '0', 1, null, null, 0, null]] },
      { ctx, ops: [[2, 1, 0, 1, null, 42, 0, null]] },
      { ctx, ops: [[2, 1.5, 0, 1, null, null, 0, null]] },
      { ctx, ops: [[4, 's1', 'r']] },
      { ctx, ops: [[3, 1, 'r']] },
    ];
    for (const w of bad) assert.throws(() => decodeLedgerWrite(w), TypeError, JSON.stringify(w));
  });
});
