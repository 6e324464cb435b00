// The one line an executor's egress forwarder writes on the egress proxy's Unix socket
// before the client's own bytes: which session the connection belongs to, so the proxy can
// attribute denials. It is a claim by the (untrusted) executor: the environment is known
// from the socket, the session id only as reported. A connection without it is served with
// no session id.

export const EGRESS_LEAD_PREFIX = 'CONTINUUM-SESSION ';
/** The prefix, a session id (at most 128 characters) and "\n". */
export const EGRESS_LEAD_MAX_BYTES = EGRESS_LEAD_PREFIX.length + 128 + 1;
const SESSION_ID = /^[A-Za-z0-9._-]{1,128}$/;

export function encodeEgressLead(sessionId: string): Buffer {
  if (!SESSION_ID.test(sessionId)) throw new TypeError(`not a session id: ${JSON.stringify(sessionId.slice(0, 140))}`);
  return Buffer.from(`${EGRESS_LEAD_PREFIX}${sessionId}\n`, 'latin1');
}

export type EgressLead =
  /** The bytes so far are a prefix of a lead: read more. */
  | { kind: 'incomplete' }
  /** No lead: the connection starts with the client's bytes. */
  | { kind: 'none'; rest: Buffer }
  | { kind: 'lead'; sessionId: string; rest: Buffer }
  | { kind: 'invalid'; reason: string };

/** Reads a lead off the first bytes of a connection. */
export function parseEgressLead(head: Buffer): EgressLead {
  const prefix = Buffer.from(EGRESS_LEAD_PREFIX, 'latin1');
  const n = Math.min(head.length, prefix.length);
  if (!head.subarray(0, n).equals(prefix.subarray(0, n))) return { kind: 'none', rest: head };
  if (head.length < prefix.length) return { kind: 'incomplete' };
  const nl = head.indexOf(10, prefix.length);
  if (nl < 0) return head.length >= EGRESS_LEAD_MAX_BYTES ? { kind: 'invalid', reason: 'session lead line too long' } : { kind: 'incomplete' };
  const sessionId = head.subarray(prefix.length, nl).toString('latin1');
  if (!SESSION_ID.test(sessionId)) return { kind: 'invalid', reason: 'malformed session id in the lead line' };
  return { kind: 'lead', sessionId, rest: head.subarray(nl + 1) };
}
