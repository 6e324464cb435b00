// Checks of what the session daemon's callers send, shared by its two threads.
import { ContinuumError } from '../../protocol/errors.js';

export function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new ContinuumError('INVALID_PARAMS', `invalid params: ${field} must be a non-empty string`);
  return value;
}
