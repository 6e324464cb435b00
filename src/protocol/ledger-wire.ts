// The command ledger's ops on the bus (edge → the session daemon's ledger thread): what each
// op means, and its compact form on the wire with the check the ledger thread makes of every one.
// Apart from the other internal shapes (internal.ts) so that the ledger thread, which needs
// only these, does not load zod: it boots beside the whole tree at start.
import type { LostReason } from './methods/command.js';

/**
 * Edge → session daemon: one state change of a ledger entry (batched in `ledger.write`). An
 * accept names its entry by session and request id, and is answered with the entry's `seq`;
 * the edge names it by that seq from then on (shorter ops, and no string lookups).
 */
export type LedgerOp =
  | { op: 'accept'; s: string; r: string; scope: 'request' | 'connection'; env: string; m: string; ex: string; at: number }
  | { op: 'start'; seq: number; at: number }
  | {
      op: 'finish';
      seq: number;
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

export type FinishOp = Extract<LedgerOp, { op: 'finish' }>;
export type LedgerFinishDetail = Pick<FinishOp, 'exit' | 'error' | 'lost'>;
type FinishState = FinishOp['state'];

/**
 * `ledger.write`'s params: the ops as tuples, in order, and the (environment, method, executor)
 * triples their accepts name by index. Every ledgered command crosses twice (accept, finish):
 * tuples with numeric kinds and states, and each triple once per batch rather than once per
 * accept, are half the bytes to encode and parse, and the ledger thread makes no string for them.
 */
export interface LedgerWrite {
  ctx: LedgerWireContext[];
  ops: LedgerWireOp[];
}
export type LedgerWireContext = [env: string, method: string, executorId: string];
export type LedgerWireOp =
  | [kind: 0, s: string, r: string, scope: 0 | 1, ctx: number, at: number]
  | [kind: 1, seq: number, at: number]
  | [kind: 2, seq: number, state: 0 | 1 | 2, at: number, started: number | null, result: string | null, cut: 0 | 1, detail: LedgerFinishDetail | null]
  | [kind: 3, s: string, r: string];

const KIND = { accept: 0, start: 1, finish: 2, drop: 3 } as const;
const FINISH_STATES: readonly FinishState[] = ['completed', 'failed', 'lost'];
const STATE_CODE = { completed: 0, failed: 1, lost: 2 } as const;

/** Builds one `ledger.write`: ops in the order added, each context listed once. */
export class LedgerWriteBuilder {
  readonly ctx: LedgerWireContext[] = [];
  readonly ops: LedgerWireOp[] = [];
  /** The index of the last context used: a batch's accepts mostly share one. */
  private lastCtx = -1;

  accept(s: string, r: string, scoped: boolean, env: string, m: string, ex: string, at: number): void {
    this.ops.push([KIND.accept, s, r, scoped ? 1 : 0, this.contextIndex(env, m, ex), at]);
  }

  start(seq: number, at: number): void {
    this.ops.push([KIND.start, seq, at]);
  }

  finish(seq: number, state: FinishState, at: number, started: number | null, result: string | null, cut: boolean, detail: LedgerFinishDetail | null): void {
    this.ops.push([KIND.finish, seq, STATE_CODE[state], at, started, result, cut ? 1 : 0, detail]);
  }

  drop(s: string, r: string): void {
    this.ops.push([KIND.drop, s, r]);
  }

  add(op: LedgerOp): void {
    switch (op.op) {
      case 'accept':
        return this.accept(op.s, op.r, op.scope === 'request', op.env, op.m, op.ex, op.at);
      case 'start':
        return this.start(op.seq, op.at);
      case 'finish':
        return this.finish(op.seq, op.state, op.at, op.started ?? null, op.result ?? null, op.cut === true, op.exit || op.error || op.lost ? { exit: op.exit, error: op.error, lost: op.lost } : null);
      case 'drop':
        return this.drop(op.s, op.r);
    }
  }

  get params(): LedgerWrite {
    return { ctx: this.ctx, ops: this.ops };
  }

  private contextIndex(env: string, m: string, ex: string): number {
    const last = this.ctx[this.lastCtx];
    if (last && last[1] === m && last[0] === env && last[2] === ex) return this.lastCtx;
    let i = this.ctx.findIndex((c) => c[1] === m && c[0] === env && c[2] === ex);
    if (i < 0) i = this.ctx.push([env, m, ex]) - 1;
    return (this.lastCtx = i);
  }
}

export function encodeLedgerWrite(ops: LedgerOp[]): LedgerWrite {
  const b = new LedgerWriteBuilder();
  for (const op of ops) b.add(op);
  return b.params;
}

const isText = (v: unknown): v is string => typeof v === 'string';
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** The ops a `ledger.write` stands for; throws on anything malformed (the edge is trusted, not its bytes). */
export function decodeLedgerWrite(params: unknown): LedgerOp[] {
  const { ctx, ops } = (params ?? {}) as { ctx?: unknown; ops?: unknown };
  if (!Array.isArray(ctx) || !Array.isArray(ops)) throw new TypeError('ledger.write needs ctx and ops arrays');
  for (const c of ctx) {
    if (!Array.isArray(c) || !isText(c[0]) || !isText(c[1]) || !isText(c[2])) throw new TypeError('a ledger context must be [environment, method, executorId]');
  }
  const contexts = ctx as LedgerWireContext[];
  return ops.map((w) => decodeOp(w, contexts));
}

function decodeOp(w: unknown, contexts: LedgerWireContext[]): LedgerOp {
  if (!Array.isArray(w)) throw new TypeError('a ledger op must be a tuple [kind, ...]');
  const kind: unknown = w[0];
  if (kind === KIND.accept && isText(w[1]) && isText(w[2]) && (w[3] === 0 || w[3] === 1) && isTime(w[5])) {
    const c = Number.isInteger(w[4]) ? contexts[w[4] as number] : undefined;
    if (!c) throw new TypeError(`a ledger accept names context ${JSON.stringify(w[4])}, which the write does not list`);
    return { op: 'accept', s: w[1], r: w[2], scope: w[3] === 1 ? 'request' : 'connection', env: c[0], m: c[1], ex: c[2], at: w[5] };
  }
  if (kind === KIND.finish && isSeq(w[1]) && (w[2] === 0 || w[2] === 1 || w[2] === 2) && isTime(w[3]) && (w[4] === null || isTime(w[4])) && (w[5] === null || isText(w[5])) && (w[6] === 0 || w[6] === 1)) {
    const op: FinishOp = { op: 'finish', seq: w[1], state: FINISH_STATES[w[2]]!, at: w[3] };
    if (w[4] !== null) op.started = w[4] as number;
    if (w[5] !== null) op.result = w[5] as string;
    if (w[6] === 1) op.cut = true;
    const detail = w[7] as LedgerFinishDetail | null;
    if (detail !== null && typeof detail === 'object') {
      if (detail.exit) op.exit = detail.exit;
      if (detail.error) op.error = detail.error;
      if (detail.lost) op.lost = detail.lost;
    }
    return op;
  }
  if (kind === KIND.start && isSeq(w[1]) && isTime(w[2])) return { op: 'start', seq: w[1], at: w[2] };
  if (kind === KIND.drop && isText(w[1]) && isText(w[2])) return { op: 'drop', s: w[1], r: w[2] };
  throw new TypeError(`malformed ledger op of kind ${JSON.stringify(kind)}`);
}
