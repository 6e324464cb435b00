// What the ledger keeps of an executor's answer: state, exit status, and a copy of the
// result cut to the environment's cap. The answer is parsed only when it must be (errors,
// and shell.exec, whose output is cut to fit and whose exit status is kept).
import type { LedgerFinishDetail, LedgerWriteBuilder } from '../../protocol/ledger-wire.js';
import type { RequestId } from '../../protocol/jsonrpc.js';

export function cutText(text: string, cap: number): { text: string; cut: boolean } {
  if (Buffer.byteLength(text) <= cap) return { text, cut: false };
  const kept = Buffer.from(text).subarray(0, cap).toString('utf8').replace(/\uFFFD$/, '');
  return { text: `${kept}\n[… cut by the ledger: ${Buffer.byteLength(text) - Buffer.byteLength(kept)} more bytes not kept]`, cut: true };
}

interface ShellResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  truncated: boolean;
}

/** Adds the final state an answer body (a JSON-RPC response as the executor sent it) stands for to `batch`. */
export function addAnswer(batch: LedgerWriteBuilder, seq: number, started: number, at: number, method: string, id: RequestId | null, isError: boolean, body: Buffer, cap: number): void {
  if (isError) {
    let error: LedgerFinishDetail['error'];
    try {
      error = (JSON.parse(body.toString('utf8')) as { error: LedgerFinishDetail['error'] }).error;
    } catch {
      error = { code: -32603, message: 'the executor sent an unreadable error' };
    }
    return batch.finish(seq, 'failed', at, started, null, false, error ? { error } : null);
  }
  if (method === 'shell.exec') {
    const result = (JSON.parse(body.toString('utf8')) as { result: ShellResult }).result;
    const stdout = cutText(result.stdout, cap);
    const stderr = cutText(result.stderr, cap);
    const cut = stdout.cut || stderr.cut;
    const kept = { ...result, stdout: stdout.text, stderr: stderr.text, truncated: result.truncated || cut };
    return batch.finish(seq, 'completed', at, started, JSON.stringify(kept), cut, { exit: { exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut } });
  }
  // `{"jsonrpc":"2.0","id":<id>,"result":<result>}` as successFrame writes it: keep <result> as
  // is, without parsing it. The offsets are in bytes (an id may hold non-ASCII characters).
  const lead = HEAD_BYTES + Buffer.byteLength(JSON.stringify(id)) + RESULT_KEY.length;
  if (!hasResultKeyAt(body, lead)) {
    // Not the shape expected: parse it rather than keep a wrong slice.
    const text = JSON.stringify((JSON.parse(body.toString('utf8')) as { result?: unknown }).result ?? null);
    const cut = Buffer.byteLength(text) > cap;
    return batch.finish(seq, 'completed', at, started, cut ? null : text, cut, null);
  }
  if (body.length - lead - 1 > cap) return batch.finish(seq, 'completed', at, started, null, true, null);
  batch.finish(seq, 'completed', at, started, body.toString('utf8', lead, body.length - 1), false, null);
}

const HEAD_BYTES = '{"jsonrpc":"2.0","id":'.length;
const RESULT_KEY = Buffer.from(',"result":');

function hasResultKeyAt(body: Buffer, lead: number): boolean {
  const from = lead - RESULT_KEY.length;
  if (from < HEAD_BYTES || body[body.length - 1] !== 0x7d /* } */) return false;
  for (let i = 0; i < RESULT_KEY.length; i++) if (body[from + i] !== RESULT_KEY[i]) return false;
  return true;
}
