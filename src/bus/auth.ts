// Processes prove who they are to the session daemon with an HMAC of their role and id,
// keyed by a secret the supervisor makes at start. An executor can then touch only the
// sessions bound to it, whatever it sends.
import { createHmac, timingSafeEqual } from 'node:crypto';

export function busProof(key: string, role: string, id: string): string {
  return createHmac('sha256', key).update(`${role}:${id}`).digest('hex');
}

export function verifyBusProof(key: string, role: string, id: string, proof: unknown): boolean {
  if (typeof proof !== 'string') return false;
  const expected = Buffer.from(busProof(key, role, id));
  const given = Buffer.from(proof);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
