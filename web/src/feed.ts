// The page's copy of what the renderer daemon pushes on /dashboard/feed. Views read it
// through useFeed(), which re-renders them when a push changes it.
import { useEffect, useState } from 'preact/hooks';
import type { EnvironmentSummary, FeedNotifications, LogLine, ProcessEvent, ProcessInfo, ProcessTable, Sample, SessionRow } from '../../src/protocol/dashboard.js';
import { RpcSocket, wsUrl, type SocketState } from './rpc.js';

const FEED_PATH = '/dashboard/feed';
const MAX_EVENTS = 200;

export interface FeedState {
  connection: SocketState;
  environments: EnvironmentSummary[];
  chartWindowMs: number;
  table: ProcessTable | undefined;
  history: Map<string, Sample[]>;
  processInfo: Record<string, ProcessInfo | null>;
  events: ProcessEvent[];
  sessions: SessionRow[];
  sessionTotals: Record<string, number>;
  /** Bumped on every change, so views can memoise on it. */
  version: number;
}

type LogListener = (params: FeedNotifications['logs.lines']) => void;

class Feed {
  readonly state: FeedState = {
    connection: 'connecting',
    environments: [],
    chartWindowMs: 600_000,
    table: undefined,
    history: new Map(),
    processInfo: {},
    events: [],
    sessions: [],
    sessionTotals: {},
    version: 0,
  };
  private readonly listeners = new Set<() => void>();
  private readonly logListeners = new Set<LogListener>();
  private scheduled = false;
  readonly socket: RpcSocket;

  constructor() {
    this.socket = new RpcSocket(wsUrl(FEED_PATH), {
      onState: (connection) => this.change(() => (this.state.connection = connection)),
      onNotification: (method, params) => this.onNotification(method, params),
    });
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onLogLines(fn: LogListener): () => void {
    this.logListeners.add(fn);
    return () => this.logListeners.delete(fn);
  }

  private change(apply: () => void): void {
    apply();
    this.state.version++;
    // Many pushes in one task render once.
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      for (const fn of this.listeners) fn();
    });
  }

  private onNotification(method: string, raw: Record<string, unknown>): void {
    const s = this.state;
    switch (method as keyof FeedNotifications) {
      case 'dashboard.hello': {
        const p = raw as FeedNotifications['dashboard.hello'];
        return this.change(() => {
          s.environments = p.environments;
          s.chartWindowMs = p.chartWindowMs;
        });
      }
      case 'dashboard.history': {
        const p = raw as FeedNotifications['dashboard.history'];
        return this.change(() => (s.history = new Map(Object.entries(p.history))));
      }
      case 'dashboard.processes': {
        const p = raw as FeedNotifications['dashboard.processes'];
        return this.change(() => {
          s.table = p.table;
          for (const [id, sample] of Object.entries(p.samples)) {
            const points = s.history.get(id) ?? [];
            points.push(sample);
            while (points.length && points[0]![0] < p.at - s.chartWindowMs) points.shift();
            s.history.set(id, points);
          }
        });
      }
      case 'dashboard.processInfo':
        return this.change(() => (s.processInfo = (raw as FeedNotifications['dashboard.processInfo']).executors));
      case 'dashboard.events': {
        const events = (raw as FeedNotifications['dashboard.events']).events;
        return this.change(() => {
          // A reconnect replays the recent ones: keep each (id, time, state) once.
          const seen = new Set(s.events.map((e) => `${e.id}/${e.time}/${e.state}`));
          s.events = [...s.events, ...events.filter((e) => !seen.has(`${e.id}/${e.time}/${e.state}`))].slice(-MAX_EVENTS);
        });
      }
      case 'dashboard.sessions': {
        const p = raw as FeedNotifications['dashboard.sessions'];
        return this.change(() => {
          s.sessions = p.sessions;
          s.sessionTotals = p.totals;
        });
      }
      case 'logs.lines':
        for (const fn of this.logListeners) fn(raw as FeedNotifications['logs.lines']);
        return;
    }
  }
}

export const feed = new Feed();

/** The feed's state; the calling component re-renders when it changes. */
export function useFeed(): FeedState {
  const [, setVersion] = useState(0);
  useEffect(() => feed.subscribe(() => setVersion(feed.state.version)), []);
  return feed.state;
}

export type { LogLine };
