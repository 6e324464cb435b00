// What the Processes view shows: the supervisor's process table (polled, the same rows as
// `continuum ps` and /metrics), a chart window of CPU and RSS per process, every state
// change the supervisor pushes (a restart can take a few ms: polling alone would miss it),
// and each executor's own process.info.
import type { ControlClient } from '../../bus/control-client.js';
import type { ProcessTable } from '../../protocol/control.js';
import type { FeedNotifications, ProcessEvent, ProcessInfo, Sample } from '../../protocol/dashboard.js';
import type { ExecutorStatus } from '../../protocol/internal.js';

export const POLL_MS = 2_000;
export const CHART_WINDOW_MS = 10 * 60_000;
const MAX_EVENTS = 200;

type Emit = <M extends keyof FeedNotifications>(method: M, params: FeedNotifications[M]) => void;

export class ProcessWatch {
  table: ProcessTable | undefined;
  readonly history = new Map<string, Sample[]>();
  readonly events: ProcessEvent[] = [];
  processInfo: Record<string, ProcessInfo | null> = {};
  /** id → last status pushed by the supervisor. */
  private readonly statuses = new Map<string, ExecutorStatus>();
  private infoKey = '';
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;

  constructor(private readonly control: ControlClient, private readonly emit: Emit) {}

  start(): void {
    void this.poll();
    this.timer = setInterval(() => void this.poll(), POLL_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.soon);
  }

  /** Executor id → pid, for the sessions view. */
  pidOf(executorId: string): number | null {
    return this.statuses.get(executorId)?.pid ?? null;
  }

  /** The supervisor's push: every change of state becomes an event, and the table is re-read. */
  onStatuses(statuses: ExecutorStatus[]): void {
    const fresh: ProcessEvent[] = [];
    for (const s of statuses) {
      const before = this.statuses.get(s.id);
      this.statuses.set(s.id, s);
      if (!before || (before.state === s.state && before.pid === s.pid)) continue;
      fresh.push({ time: Date.now(), id: s.id, environment: s.environment, state: s.state, pid: s.pid, restarts: s.restarts, reason: s.reason });
    }
    if (fresh.length) {
      this.events.push(...fresh);
      if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
      this.emit('dashboard.events', { events: fresh });
    }
    clearTimeout(this.soon);
    this.soon = setTimeout(() => void this.poll(), 50);
  }

  private poll(): Promise<void> {
    this.polling ??= this.read().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async read(): Promise<void> {
    let table: ProcessTable;
    try {
      table = await this.control.call<ProcessTable>('ps');
    } catch {
      return; // the supervisor is busy or gone; the next poll tries again
    }
    const at = Date.now();
    this.table = table;
    const samples: Record<string, Sample> = {};
    for (const row of [...table.processes, ...table.standbys]) {
      if (row.pid === null || row.rssBytes === null) continue;
      const sample: Sample = [at, row.cpuPercent ?? 0, row.rssBytes];
      samples[row.id] = sample;
      let points = this.history.get(row.id);
      if (!points) this.history.set(row.id, (points = []));
      points.push(sample);
      while (points.length && points[0]![0] < at - CHART_WINDOW_MS) points.shift();
    }
    this.emit('dashboard.processes', { at, table, samples });
    await this.refreshProcessInfo(table);
  }

  /** process.info changes only when an executor is replaced: ask again only then. */
  private async refreshProcessInfo(table: ProcessTable): Promise<void> {
    const key = table.processes.filter((r) => r.environment !== null && r.state === 'running').map((r) => `${r.id}:${r.pid}`).join(',');
    if (key === this.infoKey) return;
    try {
      this.processInfo = await this.control.call<Record<string, ProcessInfo | null>>('processInfo', undefined, 5_000);
    } catch {
      return;
    }
    // An executor that didn't answer (busy, just replaced) is asked again at the next poll.
    if (Object.values(this.processInfo).every((v) => v !== null)) this.infoKey = key;
    this.emit('dashboard.processInfo', { executors: this.processInfo });
  }
}
