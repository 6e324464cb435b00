// How a trusted daemon hands an audit record to the supervisor, the audit trail's one
// writer: a line `audit:<env>\t{json}` on its stdout, batched with its log lines.
// Audit records say who did what, when, and how it ended; never output, params or secrets.
import { emitLine } from './child-log.js';

export const AUDIT_PREFIX = 'audit:';

export function audit(environment: string, record: Record<string, unknown>): void {
  emitLine(`${AUDIT_PREFIX}${environment}\t${JSON.stringify(record)}\n`);
}
