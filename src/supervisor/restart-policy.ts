// When to restart a child, and when to stop trying (OTP's intensity/period). The first
// restart is immediate, so a lone crash costs only a process start; each further one
// within the unstable window doubles the delay, with jitter so replicas don't restart in
// lockstep. A child that stays up for `stableAfterMs` starts over from zero.
export interface RestartSettings {
  intensity: number;
  periodMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  stableAfterMs: number;
}

export type RestartDecision = { action: 'restart'; delayMs: number } | { action: 'give-up'; reason: string };

export class RestartTracker {
  private recent: number[] = [];
  private consecutive = 0;

  constructor(private readonly settings: RestartSettings, private readonly random: () => number = Math.random) {}

  /** Call when the child exits unexpectedly, with how long it had been up. */
  onExit(uptimeMs: number, now = Date.now()): RestartDecision {
    const s = this.settings;
    if (uptimeMs >= s.stableAfterMs) this.consecutive = 0;
    this.recent = this.recent.filter((t) => now - t < s.periodMs);
    this.recent.push(now);
    if (this.recent.length > s.intensity) {
      return { action: 'give-up', reason: `crash loop: ${this.recent.length} exits in ${Math.round(s.periodMs / 1000)} s` };
    }
    const n = this.consecutive++;
    if (n === 0) return { action: 'restart', delayMs: 0 };
    const base = Math.min(s.backoffMaxMs, s.backoffInitialMs * 2 ** (n - 1));
    return { action: 'restart', delayMs: Math.round(base * (0.5 + this.random() / 2)) };
  }

  reset(): void {
    this.recent = [];
    this.consecutive = 0;
  }
}
