// What the ledger keeps of an executor's answer: state, exit status, and a copy of the
// result cut to the environment's cap. The answer is parsed only when it must be (errors,
// and shell.exec, whose output is cut to fit and whose exit status is kept).
import type { LedgerOp } from '../../protocol/ledger-wire.js';
import type { RequestId } from '../../protocol/jsonrpc.js';

type FinishOp = Extract<LedgerOp, { op: 'finish' }>;

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

/** The finish op for an answer body (a JSON-RPC response as the executor sent it). */
export function finishOf(s: string, r: string, started: number, method: string, id: RequestId | null, isError: boolean, body: Buffer, cap: number): FinishOp {
  const at = Date.now();
  if (isError) {
    let error: FinishOp['error'];
    try {
      error = (JSON.parse(body.toString('utf8')) as { error: FinishOp['error'] }).error;
    } catch {
      error = { code: -32603, message: 'the executor sent an unreadable error' };
    }
    return { op: 'finish', s, r, state: 'failed', at, started, ...(error ? { error } : {}) };
  }
  if (method === 'shell.exec') {
    const result = (JSON.parse(body.toString('utf8')) as { result: ShellResult }).result;
    const stdout = cutText(result.stdout, cap);
    const stderr = cutText(result.stderr, cap);
    const cut = stdout.cut || stderr.cut;
    const kept = { ...result, stdout: stdout.text, stderr: stderr.text, truncated: result.truncated || cut };
    return { op: 'finish', s, r, state: 'completed', at, started, exit: { exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut }, result: JSON.stringify(kept), cut };
  }
  // `{"jsonrpc":"2.0","id":<id>,"result":<result>}` as the executor writes it: keep <result> as is.
  const lead = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":`.length;
  if (body.length - lead - 1 > cap) return { op: 'finish', s, r, state: 'completed', at, started, cut: true };
  return { op: 'finish', s, r, state: 'completed', at, started, result: body.subarray(lead, body.length - 1).toString('utf8') };
}
