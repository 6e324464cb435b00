import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RestartTracker } from '../../src/supervisor/restart-policy.js';

const settings = { intensity: 3, periodMs: 10_000, backoffInitialMs: 100, backoffMaxMs: 1_000, stableAfterMs: 5_000 };

describe('restart policy', () => {
  it('restarts at once, then backs off exponentially with jitter, capped', () => {
    const t = new RestartTracker({ ...settings, intensity: 100 }, () => 1);
    const delays = [0, 1, 2, 3, 4, 5].map((i) => t.onExit(10, i * 20_000));
    assert.deepEqual(delays.map((d) => (d.action === 'restart' ? d.delayMs : -1)), [0, 100, 200, 400, 800, 1000]);
    const low = new RestartTracker({ ...settings, intensity: 100 }, () => 0);
    low.onExit(10, 0);
    const d = low.onExit(10, 20_000);
    assert.equal(d.action === 'restart' && d.delayMs, 50, 'jitter takes the delay down to half at most');
  });

  it('resets the backoff after a stable uptime', () => {
    const t = new RestartTracker({ ...settings, intensity: 100 }, () => 1);
    t.onExit(10, 0);
    t.onExit(10, 20_000);
    const after = t.onExit(6_000, 40_000);
    assert.deepEqual(after, { action: 'restart', delayMs: 0 });
  });

  it('gives up after more than `intensity` exits within `periodMs`, and only then', () => {
    const t = new RestartTracker(settings, () => 1);
    assert.equal(t.onExit(10, 0).action, 'restart');
    assert.equal(t.onExit(10, 1_000).action, 'restart');
    assert.equal(t.onExit(10, 2_000).action, 'restart');
    const d = t.onExit(10, 3_000);
    assert.equal(d.action, 'give-up');
    assert.match(d.action === 'give-up' ? d.reason : '', /4 exits in 10 s/);
    const spaced = new RestartTracker(settings, () => 1);
    for (let i = 0; i < 10; i++) assert.equal(spaced.onExit(10, i * 4_000).action, 'restart', 'exits spread out never trip the breaker');
  });
});
