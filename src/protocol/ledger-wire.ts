// The command ledger's ops on the bus (edge → the session daemon's ledger thread): what each
// op means, and its tuple form on the wire with the check the ledger thread makes of every one.
// Apart from the other internal shapes (internal.ts) so that the ledger thread, which needs
// only these, does not load zod: it boots beside the whole tree at start.
import type { LostReason } from './methods/command.js';

/** Edge → session daemon: one state change of a ledger entry (batched in `ledger.write`). */
export type LedgerOp =
  | { op: 'accept'; s: string; r: string; scope: 'request' | 'connection'; env: string; m: string; ex: string; at: number }
  | { op: 'start'; s: string; r: string; at: number }
  | {
      op: 'finish';
      s: string;
      r: string;
      state: 'completed' | 'failed' | 'lost';
      at: number;
      /** When it was dispatched, for a command whose `start` was never written (it finished first). */
      started?: number;
      exit?: { exitCode: number | null; signal: string | null; timedOut: boolean };
      error?: { code: number; message: string; data?: unknown };
      lost?: LostReason;
      /** The result as JSON text, already cut to the cap. */
      result?: string;
      cut?: boolean;
    }
  /** Accepted but never dispatched (the ledger's answer was lost): as if never sent. */
  | { op: 'drop'; s: string; r: string };

/**
 * A ledger op as `ledger.write` carries it: a tuple, not an object. Every ledgered command
 * crosses twice (accept, finish), and tuples cost a third less to encode and parse.
 */
export type LedgerWireOp =
  | ['a', s: string, r: string, scope: 0 | 1, env: string, m: string, ex: string, at: number]
  | ['s', s: string, r: string, at: number]
  | ['f', s: string, r: string, state: 'completed' | 'failed' | 'lost', at: number, started: number | null, result: string | null, cut: 0 | 1, detail: LedgerFinishDetail | null]
  | ['d', s: string, r: string];
type FinishOp = Extract<LedgerOp, { op: 'finish' }>;
type LedgerFinishDetail = Pick<FinishOp, 'exit' | 'error' | 'lost'>;

export function encodeLedgerOp(op: LedgerOp): LedgerWireOp {
  switch (op.op) {
    case 'accept':
      return ['a', op.s, op.r, op.scope === 'request' ? 1 : 0, op.env, op.m, op.ex, op.at];
    case 'start':
      return ['s', op.s, op.r, op.at];
    case 'finish': {
      const detail = op.exit || op.error || op.lost ? { exit: op.exit, error: op.error, lost: op.lost } : null;
      return ['f', op.s, op.r, op.state, op.at, op.started ?? null, op.result ?? null, op.cut ? 1 : 0, detail];
    }
    case 'drop':
      return ['d', op.s, op.r];
  }
}

const FINISH_STATES = new Set(['completed', 'failed', 'lost']);
const isText = (v: unknown): v is string => typeof v === 'string';
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The op a wire tuple stands for; throws on anything malformed (the edge is trusted, not its bytes). */
export function decodeLedgerOp(w: unknown): LedgerOp {
  if (!Array.isArray(w) || !isText(w[1]) || !isText(w[2])) throw new TypeError('a ledger op must be [kind, sessionId, requestId, ...]');
  const [kind, s, r] = w as [unknown, string, string];
  if (kind === 'a' && (w[3] === 0 || w[3] === 1) && isText(w[4]) && isText(w[5]) && isText(w[6]) && isTime(w[7])) {
    return { op: 'accept', s, r, scope: w[3] === 1 ? 'request' : 'connection', env: w[4], m: w[5], ex: w[6], at: w[7] };
  }
  if (kind === 's' && isTime(w[3])) return { op: 'start', s, r, at: w[3] };
  if (kind === 'd') return { op: 'drop', s, r };
  if (kind === 'f' && FINISH_STATES.has(w[3] as string) && isTime(w[4]) && (w[5] === null || isTime(w[5])) && (w[6] === null || isText(w[6])) && (w[7] === 0 || w[7] === 1)) {
    const op: FinishOp = { op: 'finish', s, r, state: w[3] as FinishOp['state'], at: w[4] };
    if (w[5] !== null) op.started = w[5] as number;
    if (w[6] !== null) op.result = w[6] as string;
    if (w[7] === 1) op.cut = true;
    const detail = w[8] as LedgerFinishDetail | null;
    if (detail !== null && typeof detail === 'object') {
      if (detail.exit) op.exit = detail.exit;
      if (detail.error) op.error = detail.error;
      if (detail.lost) op.lost = detail.lost;
    }
    return op;
  }
  throw new TypeError(`malformed ledger op of kind ${JSON.stringify(kind)}`);
}
