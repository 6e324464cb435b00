// Shared by the edge and the session daemon: how a process exit becomes a ledger `lost`
// reason, and how a kept entry is answered again to a resent request.
import { ContinuumError } from './errors.js';
import type { ExitRecord } from './internal.js';
import { errorFrame, type RequestId } from './jsonrpc.js';
import type { CommandEntry, LostReason } from './methods/command.js';

// Signals the kernel sends when a resource limit is hit (RLIMIT_CPU, RLIMIT_FSIZE).
const LIMIT_SIGNALS = new Set(['SIGXCPU', 'SIGXFSZ']);

/** `who` names the process, e.g. "executor remote-0" or "the edge". */
export function lostReasonOf(exit: ExitRecord, who: string, oom = false): LostReason {
  const base = { signal: exit.signal, exitCode: exit.code };
  if (exit.killedFor) {
    const kind = /heartbeat/.test(exit.killedFor) ? 'heartbeat' : 'limit';
    return { kind, ...base, detail: `${who} (pid ${exit.pid}) was killed by the supervisor: ${exit.killedFor}` };
  }
  if (oom || exit.oom) return { kind: 'oom', ...base, detail: `${who} (pid ${exit.pid}) was killed by the kernel: ${exit.oom ?? 'out of memory'}` };
  if (exit.signal) {
    const kind = LIMIT_SIGNALS.has(exit.signal) ? 'limit' : 'signal';
    return { kind, ...base, detail: `${who} (pid ${exit.pid}) was killed by ${exit.signal}` };
  }
  return { kind: 'exit', ...base, detail: `${who} (pid ${exit.pid}) exited with code ${exit.code}` };
}

/** The answer a resent request gets from a finished entry: the recorded result or error. */
export function replayFrame(id: RequestId | null, entry: CommandEntry): string {
  if (entry.state === 'completed') {
    if (entry.result !== null || !entry.resultCut) return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${JSON.stringify(entry.result)}}`;
    return errorFrame(id, new ContinuumError('RESULT_NOT_KEPT', `request ${entry.requestId} already completed, but its result was over the ledger's cap and was not kept; command.status has the rest; send a new id to run it again`, { state: 'completed', requestId: entry.requestId }));
  }
  if (entry.state === 'failed' && entry.error) return JSON.stringify({ jsonrpc: '2.0', id, error: entry.error });
  return errorFrame(id, lostError(entry));
}

export function lostError(entry: Pick<CommandEntry, 'requestId' | 'method' | 'lostReason'>): ContinuumError {
  const why = entry.lostReason?.detail ?? 'the process running it died';
  return new ContinuumError('COMMAND_LOST', `${entry.method} (request ${entry.requestId}) was lost: ${why}; it may have partly run; send it with a new id to run it again`, {
    retryable: false,
    state: 'lost',
    requestId: entry.requestId,
    ...(entry.lostReason ? { lostReason: entry.lostReason } : {}),
  });
}
