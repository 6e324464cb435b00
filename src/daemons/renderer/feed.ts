// The dashboard's live feed (/dashboard/feed, behind the edge's cookie check): everything a
// page shows is pushed here as JSON-RPC notifications; the page asks for a log tail and a
// session's detail with requests. See src/protocol/dashboard.ts.
import type WebSocket from 'ws';
import { ContinuumError, toContinuumError } from '../../protocol/errors.js';
import { errorFrame, notificationFrame, parseRequest, successFrame } from '../../protocol/jsonrpc.js';
import { feedRequests, type EnvironmentSummary, type FeedNotifications, type FeedResults, type LogFilter, type LogLine } from '../../protocol/dashboard.js';
import type { Artifacts } from './artifacts.js';
import type { LogWatch } from './log-watch.js';
import { CHART_WINDOW_MS, type ProcessWatch } from './process-watch.js';
import type { SessionWatch } from './session-watch.js';

/** A page that reads slower than this much is skipped for a push (the next one catches it up). */
const SLOW_PAGE_BYTES = 4 * 1024 * 1024;
const LOG_FLUSH_MS = 100;
/** Log lines sent per flush; a burst beyond that is reported as dropped, not queued. */
const LOG_LINES_PER_FLUSH = 2_000;
const RECENT_EVENTS = 50;

export interface FeedSources {
  environments: EnvironmentSummary[];
  processes: ProcessWatch;
  sessions: SessionWatch;
  logs: LogWatch;
  artifacts: Artifacts;
}

const OPEN = 1;

function frame<M extends keyof FeedNotifications>(method: M, params: FeedNotifications[M]): string {
  return notificationFrame(method, params);
}

export class FeedHub {
  private readonly pages = new Set<Page>();

  constructor(private readonly sources: FeedSources) {}

  broadcast<M extends keyof FeedNotifications>(method: M, params: FeedNotifications[M]): void {
    if (this.pages.size === 0) return;
    const text = frame(method, params);
    for (const page of this.pages) page.send(text);
  }

  attach(ws: WebSocket): void {
    const page = new Page(ws, this.sources);
    this.pages.add(page);
    this.sources.sessions.addViewer();
    ws.once('close', () => {
      this.pages.delete(page);
      this.sources.sessions.removeViewer();
      page.close();
    });
    page.start();
  }
}

class Page {
  private stopLogs: (() => void) | undefined;
  private pendingLines: LogLine[] = [];
  private dropped = 0;
  private reset = false;
  private logEnvironment = '';
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly ws: WebSocket, private readonly sources: FeedSources) {
    ws.on('message', (data: Buffer, isBinary) => this.onMessage(data, isBinary));
    ws.on('error', () => undefined);
  }

  send(text: string): void {
    if (this.ws.readyState === OPEN && this.ws.bufferedAmount < SLOW_PAGE_BYTES) this.ws.send(text);
  }

  start(): void {
    const { processes, sessions, environments } = this.sources;
    this.send(frame('dashboard.hello', { environments, chartWindowMs: CHART_WINDOW_MS }));
    this.send(frame('dashboard.history', { history: Object.fromEntries(processes.history) }));
    if (processes.table) this.send(frame('dashboard.processes', { at: Date.now(), table: processes.table, samples: {} }));
    this.send(frame('dashboard.processInfo', { executors: processes.processInfo }));
    this.send(frame('dashboard.events', { events: processes.events.slice(-RECENT_EVENTS) }));
    if (sessions.latest) this.send(frame('dashboard.sessions', sessions.latest));
  }

  close(): void {
    this.stopLogs?.();
    clearTimeout(this.flushTimer);
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (isBinary) return;
    const parsed = parseRequest(data.toString('utf8'));
    if (!parsed.ok) return this.send(errorFrame(parsed.id, parsed.error));
    if (parsed.isNotification) return;
    const { request, id } = parsed;
    Promise.resolve()
      .then(() => this.serve(request.method, request.params))
      .then(
        (result) => this.send(successFrame(id, result)),
        (err: unknown) => this.send(errorFrame(id, toContinuumError(err))),
      );
  }

  private async serve(method: string, raw: unknown): Promise<FeedResults[keyof FeedResults]> {
    if (!(method in feedRequests)) throw new ContinuumError('METHOD_NOT_FOUND', `the dashboard feed has no method "${method}"`);
    const schema = feedRequests[method as keyof typeof feedRequests];
    const checked = schema.safeParse(raw);
    if (!checked.success) throw new ContinuumError('INVALID_PARAMS', `invalid params for ${method}: ${checked.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; ')}`);
    const params = checked.data as never;
    switch (method as keyof FeedResults) {
      case 'logs.follow':
        return this.followLogs(params);
      case 'logs.stop':
        this.stopLogs?.();
        this.stopLogs = undefined;
        return { ok: true };
      case 'sessions.detail':
        return this.sessionDetail(params);
    }
  }

  private followLogs(filter: LogFilter): { ok: true } {
    this.stopLogs?.();
    this.stopLogs = undefined;
    this.pendingLines = [];
    this.dropped = 0;
    this.logEnvironment = filter.environment;
    try {
      this.stopLogs = this.sources.logs.follow({
        filter,
        push: (lines, reset) => {
          if (reset) {
            this.pendingLines = [];
            this.dropped = 0;
            this.reset = true;
          }
          this.pendingLines.push(...lines);
          this.flushTimer ??= setTimeout(() => this.flushLogs(), reset ? 0 : LOG_FLUSH_MS);
        },
      });
    } catch (err) {
      throw new ContinuumError('INVALID_PARAMS', (err as Error).message);
    }
    return { ok: true };
  }

  private flushLogs(): void {
    this.flushTimer = undefined;
    // A page that can't keep up gets the newest lines and a count of what it missed.
    if (this.pendingLines.length > LOG_LINES_PER_FLUSH) {
      this.dropped += this.pendingLines.length - LOG_LINES_PER_FLUSH;
      this.pendingLines = this.pendingLines.slice(-LOG_LINES_PER_FLUSH);
    }
    if (this.ws.bufferedAmount >= SLOW_PAGE_BYTES) {
      this.flushTimer = setTimeout(() => this.flushLogs(), LOG_FLUSH_MS);
      return;
    }
    const lines = this.pendingLines;
    this.pendingLines = [];
    this.send(frame('logs.lines', { environment: this.logEnvironment, lines, reset: this.reset, dropped: this.dropped }));
    this.reset = false;
    this.dropped = 0;
  }

  private async sessionDetail({ sessionId }: { sessionId: string }): Promise<FeedResults['sessions.detail']> {
    const { sessions, logs, artifacts } = this.sources;
    let session = sessions.find(sessionId);
    if (!session) {
      await sessions.poll();
      session = sessions.find(sessionId);
    }
    if (!session) throw new ContinuumError('SESSION_NOT_FOUND', `session ${sessionId} not found; it may have been closed or expired`);
    return { session, commands: logs.recentCommands(session.environment, sessionId), artifacts: artifacts.list(sessionId) };
  }
}
