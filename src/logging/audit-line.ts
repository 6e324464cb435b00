// How a trusted daemon hands an audit record to the supervisor, the audit trail's one
// writer: a line `audit:<env>\t{json}` on its stdout, batched with its log lines; or, for a
// record that is also a log line of that environment (the edge's line per command),
// `logaudit:<env>\t{json}`, written to both. Audit records say who did what, when, and how it
// ended; never output, params or secrets.
import { emitLine } from './child-log.js';

export const AUDIT_PREFIX = 'audit:';
export const LOG_AND_AUDIT_PREFIX = 'logaudit:';

export function audit(environment: string, record: Record<string, unknown>): void {
  emitLine(`${AUDIT_PREFIX}${environment}\t${JSON.stringify(record)}\n`);
}

/**
 * One record, already JSON text (one object, no newline), for both the environment's log and
 * its audit trail: one line to encode, send and route.
 */
export function logAndAuditLine(environment: string, json: string): void {
  emitLine(`${LOG_AND_AUDIT_PREFIX}${environment}\t${json}\n`);
}
