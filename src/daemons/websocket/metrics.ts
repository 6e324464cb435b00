// /metrics: the edge's Prometheus exposition (prom-client). Per-request figures are counted
// on the hot path with two map lookups and an array increment — prom-client's own
// `inc(labels)` hashes the label object on every call, which would cost more than routing
// the request — and handed to prom-client's registry as ready values at scrape time. The
// process figures come from the supervisor's process table, the same rows `continuum ps`
// and the dashboard show.
import client, { type Metric } from 'prom-client';
import type { ProcessTable } from '../../protocol/control.js';
import type { ExecutorPool } from './executor-pool.js';

/** Seconds; from a fast local command to a long shell.exec. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const BUCKETS_MS = LATENCY_BUCKETS.map((s) => s * 1000);
const OUTCOMES = ['ok', 'error', 'unavailable', 'timeout'] as const;
const EXECUTOR_STATES = ['starting', 'running', 'restarting', 'failed', 'stopped'] as const;

interface Series {
  /** Requests by outcome, in the order of OUTCOMES. */
  outcomes: number[];
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  buckets: number[];
  sumMs: number;
  count: number;
}

type Value = { value: number; labels: Record<string, string | number>; metricName?: string };

/** A metric whose values are computed at scrape time, in the shape prom-client's registry formats. */
function precomputed(name: string, help: string, type: 'counter' | 'histogram', values: () => Value[]): Metric {
  const metric = { name, help, type, aggregator: 'sum', collect: () => undefined, get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) };
  return metric as unknown as Metric;
}

export type ConnectionKind = 'client' | 'console' | 'dashboard';

export class EdgeMetrics {
  readonly registry = new client.Registry();
  /** environment → method → series. */
  private readonly series = new Map<string, Map<string, Series>>();
  private readonly connections: Record<ConnectionKind, number> = { client: 0, console: 0, dashboard: 0 };
  private readonly gauges;

  constructor(private readonly pool: ExecutorPool, private readonly boundSessions: () => Map<string, number>) {
    const r = [this.registry];
    const processLabels = ['process', 'id', 'environment'] as const;
    this.gauges = {
      executorState: new client.Gauge({ name: 'continuum_executor_state', help: 'Each executor replica\'s state: 1 for the state it is in, 0 for the others.', labelNames: ['environment', 'executor', 'state'], registers: r }),
      executorRestarts: new client.Counter({ name: 'continuum_executor_restarts_total', help: 'Times the supervisor restarted each executor replica since Continuum started.', labelNames: ['environment', 'executor'], registers: r }),
      sessionsOpen: new client.Gauge({ name: 'continuum_sessions_open', help: 'Sessions in the session directory (not closed or expired), by environment.', labelNames: ['environment'], registers: r }),
      sessionsBound: new client.Gauge({ name: 'continuum_sessions_bound', help: 'Sessions with at least one WebSocket connection bound to them now, by environment.', labelNames: ['environment'], registers: r }),
      connections: new client.Gauge({ name: 'continuum_connections_open', help: 'Open WebSocket connections: client (token), console (dashboard cookie on /ws), dashboard (live feed).', labelNames: ['kind'], registers: r }),
      rss: new client.Gauge({ name: 'continuum_process_resident_memory_bytes', help: 'Resident memory of each process of the tree, from /proc.', labelNames: processLabels, registers: r }),
      cpuSeconds: new client.Counter({ name: 'continuum_process_cpu_seconds_total', help: 'User + system CPU time of each process of the tree since it started, from /proc.', labelNames: processLabels, registers: r }),
      cpuPercent: new client.Gauge({ name: 'continuum_process_cpu_percent', help: 'CPU use of each process over the supervisor\'s last sampling interval (what `continuum ps` and the dashboard show).', labelNames: processLabels, registers: r }),
      restarts: new client.Counter({ name: 'continuum_process_restarts_total', help: 'Restarts of each supervised process since Continuum started.', labelNames: processLabels, registers: r }),
      logLinesLost: new client.Counter({ name: 'continuum_log_lines_lost_total', help: 'Log lines the supervisor could not write (disk full), by log file.', labelNames: ['file'], registers: r }),
      supervisorUp: new client.Gauge({ name: 'continuum_supervisor_up', help: '1 if this scrape could read the supervisor\'s process table (the continuum_process_* and continuum_sessions_open figures), else 0.', registers: r }),
    };
    this.registry.registerMetric(precomputed('continuum_requests_total', 'Requests answered by the edge, by environment, method and outcome (ok, error, unavailable, timeout).', 'counter', () => this.requestValues()));
    this.registry.registerMetric(precomputed('continuum_request_duration_seconds', 'Time from the edge receiving a request to the edge sending its answer, by environment and method.', 'histogram', () => this.latencyValues()));
    client.collectDefaultMetrics({ register: this.registry, prefix: 'continuum_edge_' });
  }

  /** The hot path: one answered request. */
  observe(environment: string, method: string, outcome: string, durationMs: number): void {
    let byMethod = this.series.get(environment);
    if (!byMethod) this.series.set(environment, (byMethod = new Map()));
    let s = byMethod.get(method);
    if (!s) byMethod.set(method, (s = { outcomes: OUTCOMES.map(() => 0), buckets: new Array<number>(BUCKETS_MS.length + 1).fill(0), sumMs: 0, count: 0 }));
    const o = OUTCOMES.indexOf(outcome as (typeof OUTCOMES)[number]);
    if (o >= 0) s.outcomes[o]!++;
    let b = 0;
    while (b < BUCKETS_MS.length && durationMs > BUCKETS_MS[b]!) b++;
    s.buckets[b]!++;
    s.sumMs += durationMs;
    s.count++;
  }

  connectionOpened(kind: ConnectionKind): void {
    this.connections[kind]++;
  }

  connectionClosed(kind: ConnectionKind): void {
    this.connections[kind]--;
  }

  /** The exposition text; `table` is the supervisor's process table, if it could be read. */
  async render(table: ProcessTable | undefined): Promise<string> {
    const g = this.gauges;
    for (const metric of Object.values(g)) metric.reset();
    for (const link of this.pool.links.values()) {
      if (link.status.service) continue;
      const labels = { environment: link.status.environment, executor: link.status.id };
      for (const state of EXECUTOR_STATES) g.executorState.set({ ...labels, state }, link.status.state === state ? 1 : 0);
      g.executorRestarts.inc(labels, link.status.restarts);
    }
    for (const [environment, n] of this.boundSessions()) g.sessionsBound.set({ environment }, n);
    for (const [kind, n] of Object.entries(this.connections)) g.connections.set({ kind }, n);
    g.supervisorUp.set(table ? 1 : 0);
    if (table) {
      const sessions = new Map<string, number>();
      for (const row of table.processes) {
        const labels = { process: row.name, id: row.id, environment: row.environment ?? '' };
        if (row.rssBytes !== null) g.rss.set(labels, row.rssBytes);
        if (row.cpuSeconds !== null) g.cpuSeconds.inc(labels, row.cpuSeconds);
        if (row.cpuPercent !== null) g.cpuPercent.set(labels, row.cpuPercent);
        g.restarts.inc(labels, row.restarts);
        if (row.environment && row.sessions !== null) sessions.set(row.environment, (sessions.get(row.environment) ?? 0) + row.sessions);
      }
      for (const [environment, n] of sessions) g.sessionsOpen.set({ environment }, n);
      for (const [file, n] of Object.entries(table.lostLogLines)) g.logLinesLost.inc({ file }, n);
    }
    return this.registry.metrics();
  }

  private requestValues(): Value[] {
    const out: Value[] = [];
    for (const [environment, byMethod] of this.series) {
      for (const [method, s] of byMethod) {
        OUTCOMES.forEach((outcome, i) => {
          if (s.outcomes[i]) out.push({ value: s.outcomes[i]!, labels: { environment, method, outcome } });
        });
      }
    }
    return out;
  }

  private latencyValues(): Value[] {
    const out: Value[] = [];
    const name = 'continuum_request_duration_seconds';
    for (const [environment, byMethod] of this.series) {
      for (const [method, s] of byMethod) {
        let cumulative = 0;
        LATENCY_BUCKETS.forEach((le, i) => {
          cumulative += s.buckets[i]!;
          out.push({ metricName: `${name}_bucket`, value: cumulative, labels: { environment, method, le } });
        });
        out.push({ metricName: `${name}_bucket`, value: s.count, labels: { environment, method, le: '+Inf' } });
        out.push({ metricName: `${name}_sum`, value: s.sumMs / 1000, labels: { environment, method } });
        out.push({ metricName: `${name}_count`, value: s.count, labels: { environment, method } });
      }
    }
    return out;
  }
}

export const METRICS_CONTENT_TYPE = client.Registry.PROMETHEUS_CONTENT_TYPE;
