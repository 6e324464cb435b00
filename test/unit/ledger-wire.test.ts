// The ledger's wire tuples: every op comes back as it went, and malformed tuples are refused
// (the session daemon trusts the edge's role, not its bytes).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeLedgerOp, encodeLedgerOp, type LedgerOp } from '../../src/protocol/ledger-wire.js';

const ops: LedgerOp[] = [
  { op: 'accept', s: 's1', r: 'req-1', scope: 'request', env: 'remote', m: 'state.set', ex: 'remote-0', at: 1_000 },
  { op: 'accept', s: 's1', r: '#edge.7', scope: 'connection', env: 'agent', m: 'shell.exec', ex: 'agent-1', at: 1_001 },
  { op: 'start', s: 's1', r: 'req-1', at: 1_002 },
  { op: 'finish', s: 's1', r: 'req-1', state: 'completed', at: 1_003, started: 1_002, result: '{"ok":true}' },
  { op: 'finish', s: 's1', r: 'req-2', state: 'completed', at: 1_003, started: 1_002, cut: true },
  { op: 'finish', s: 's1', r: 'req-3', state: 'completed', at: 1_004, started: 1_002, exit: { exitCode: 0, signal: null, timedOut: false }, result: '{"stdout":""}' },
  { op: 'finish', s: 's1', r: 'req-4', state: 'failed', at: 1_005, started: 1_002, error: { code: -32004, message: 'timed out', data: { retryable: true } } },
  { op: 'finish', s: 's1', r: 'req-5', state: 'lost', at: 1_006, lost: { kind: 'signal', signal: 'SIGKILL', exitCode: null, detail: 'killed' } },
  { op: 'drop', s: 's1', r: 'req-6' },
];

describe('ledger wire ops', () => {
  it('decodes every op as it was encoded, through JSON', () => {
    for (const op of ops) assert.deepEqual(decodeLedgerOp(JSON.parse(JSON.stringify(encodeLedgerOp(op)))), op);
  });

  it('refuses malformed tuples', () => {
    const bad: unknown[] = [
      null,
      {},
      'a',
      ['a', 's1'],
      ['a', 's1', 'r', 2, 'remote', 'state.set', 'remote-0', 1],
      ['a', 's1', 'r', 1, 'remote', 'state.set', 'remote-0', '1'],
      ['s', 's1', 'r', null],
      ['f', 's1', 'r', 'done', 1, null, null, 0, null],
      ['f', 's1', 'r', 'completed', 1, null, 42, 0, null],
      ['x', 's1', 'r'],
      ['d', 1, 'r'],
    ];
    for (const w of bad) assert.throws(() => decodeLedgerOp(w), TypeError, JSON.stringify(w));
  });
});
