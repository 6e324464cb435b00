// What the Sessions view shows: the most recently active sessions of each environment, read
// from the session daemon while someone is watching, pushed when they change.
import type { SessionDaemonClient } from '../../bus/session-client.js';
import type { FeedNotifications, SessionRow } from '../../protocol/dashboard.js';
import type { StoredSession } from '../../protocol/internal.js';

const POLL_MS = 2_000;
/** Sessions listed per environment; totals count them all. */
export const SESSIONS_PER_ENVIRONMENT = 200;

type Listed = { sessions: (StoredSession & { commands: number })[]; totals: Record<string, number> };

export class SessionWatch {
  latest: FeedNotifications['dashboard.sessions'] | undefined;
  private last = '';
  private timer: NodeJS.Timeout | undefined;
  private viewers = 0;

  constructor(
    private readonly daemon: SessionDaemonClient,
    private readonly pidOf: (executorId: string) => number | null,
    private readonly emit: (params: FeedNotifications['dashboard.sessions']) => void,
  ) {}

  /** Polls while at least one page is open. */
  addViewer(): void {
    if (this.viewers++ === 0) {
      void this.poll();
      this.timer = setInterval(() => void this.poll(), POLL_MS);
    }
  }

  removeViewer(): void {
    if (--this.viewers === 0) clearInterval(this.timer);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  find(sessionId: string): SessionRow | undefined {
    return this.latest?.sessions.find((s) => s.sessionId === sessionId);
  }

  async poll(): Promise<void> {
    let listed: Listed;
    try {
      listed = await this.daemon.call<Listed>('session.list', { perEnvironment: SESSIONS_PER_ENVIRONMENT });
    } catch {
      return; // the session daemon is restarting; the next poll tries again
    }
    const sessions: SessionRow[] = listed.sessions.map((s) => ({ ...s, executorPid: this.pidOf(s.executorId) }));
    const next = { sessions, totals: listed.totals };
    const text = JSON.stringify(next);
    if (text === this.last) return;
    this.last = text;
    this.latest = next;
    this.emit(next);
  }
}
