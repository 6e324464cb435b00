// The bench's sizes, limits and the tree configs it measures. Every loop is bounded by these.
/**
 * `CONTINUUM_BENCH_SANDBOX=off npm run bench` runs the normally confined environments
 * unconfined, to measure what the sandbox costs (cold start, kill → serving).
 */
const unconfined = process.env.CONTINUUM_BENCH_SANDBOX === 'off'
  ? { environments: ['browser', 'remote', 'agent', 'persona'].map((name) => ({ name, sandbox: { isolation: 'none' } })) }
  : {};
export const PING_CONFIG = { limits: { maxInFlightPerConnection: 64 }, ...unconfined };
export const RESTART_CONFIG = { ...PING_CONFIG, restart: { stableAfterMs: 1000, intensity: 100, periodMs: 1000 } };
export const ENVIRONMENTS = ['browser', 'server', 'remote', 'agent', 'persona'];

export const ROUNDS = 4;
export const SEQ = { warmup: 1_000, count: 5_000, maxMs: 2_500 };
export const LOAD = { connections: 100, depth: 16, warmupMs: 1_000, measureMs: 3_000 };
export const SESSIONS = { connections: 100, perConnection: 100, maxMs: 60_000 };
export const OPEN_CONNECTIONS = 1_000;
export const KILLS = 7;
export const PACED_KILLS = 3;
export const COLD_STARTS = 3;
/** Other processes using more than this share of a core during a measurement make it suspect. */
export const NOISY_PERCENT = 25;
