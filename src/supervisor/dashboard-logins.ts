// One-time login links for the dashboard. The supervisor mints them (printed by
// `continuum start` and `continuum dashboard`) and is the only one that can consume them,
// so a link works once even if the edge restarts in between.
import { createHash, randomBytes } from 'node:crypto';
import type { DashboardLogin } from '../protocol/control.js';

const LOGIN_TTL_MS = 24 * 3600_000;
const MAX_OUTSTANDING = 64;

// Looked up by hash: the tokens themselves are never kept, and a lookup reveals nothing.
const digest = (token: string) => createHash('sha256').update(token).digest('hex');

export class DashboardLogins {
  /** sha256(token) → expiry, oldest first. */
  private readonly pending = new Map<string, number>();

  mint(now = Date.now()): DashboardLogin {
    this.sweep(now);
    // Unused links pile up only if someone mints in a loop; the oldest go first.
    while (this.pending.size >= MAX_OUTSTANDING) this.pending.delete(this.pending.keys().next().value!);
    const token = `ctl_${randomBytes(24).toString('base64url')}`;
    const expiresAt = now + LOGIN_TTL_MS;
    this.pending.set(digest(token), expiresAt);
    return { token, expiresAt };
  }

  /** True once per minted token, before it expires. */
  consume(token: unknown, now = Date.now()): boolean {
    if (typeof token !== 'string' || token.length > 256) return false;
    this.sweep(now);
    return this.pending.delete(digest(token));
  }

  private sweep(now: number): void {
    for (const [key, expiresAt] of this.pending) if (expiresAt <= now) this.pending.delete(key);
  }
}
