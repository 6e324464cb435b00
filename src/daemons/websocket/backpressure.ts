// Slow clients. A command's streamed output (shell.output) is paused at its source when
// the client has `streamPauseBytes` unread, and resumed once it has read down to half: the
// executor stops reading the command's pipes, so the command itself blocks on write and
// nothing piles up in the edge or the executor. One request is paused, never the executor
// link, so the other sessions of that executor go on. A client with more than
// `maxUnreadBytes` unread anyway (many large answers) is closed with 1008 after what is
// already queued.
import type { Config } from '../../config/schema.js';
import { emitRecord } from '../../logging/child-log.js';
import type { ExecutorPool } from './executor-pool.js';
import type { ClientConnection } from './router.js';

export interface Throttled {
  conn: ClientConnection;
  executorId: string;
  environment: string;
  sessionId: string;
  method: string;
  paused: boolean;
}

const OPEN = 1;
/** A dropped client that still doesn't read its close frame is cut after this long. */
const TERMINATE_AFTER_MS = 10_000;
export const CLOSE_NOT_READING = 1008;

export class Backpressure {
  private readonly paused = new Map<ClientConnection, Map<number, Throttled>>();
  private readonly pauseBytes: number;
  private readonly maxUnread: number;

  constructor(limits: Config['limits'], private readonly pool: Pick<ExecutorPool, 'flow'>) {
    this.pauseBytes = limits.streamPauseBytes;
    this.maxUnread = limits.maxUnreadBytes;
  }

  /** After a notification of request `tag` was queued for its client. */
  afterNotify(tag: number, entry: Throttled): void {
    const unread = entry.conn.ws.bufferedAmount;
    if (!entry.paused && unread > this.pauseBytes) {
      entry.paused = true;
      let tags = this.paused.get(entry.conn);
      if (!tags) this.paused.set(entry.conn, (tags = new Map()));
      const first = tags.size === 0;
      tags.set(tag, entry);
      this.pool.flow(entry.executorId, tag, true);
      if (first) {
        emitRecord({ time: Date.now(), level: 30, msg: 'output paused: the client is not reading', pid: process.pid, env: entry.environment, sessionId: entry.sessionId, method: entry.method, unreadBytes: unread, remote: entry.conn.remote }, entry.environment);
      }
    }
    this.checkUnread(entry.conn);
  }

  /** After an answer was queued for `conn`. */
  afterAnswer(conn: ClientConnection): void {
    this.checkUnread(conn);
  }

  /** The client read some: resume its paused requests once it is down to half the mark. */
  onDrain(conn: ClientConnection): void {
    const tags = this.paused.get(conn);
    if (!tags || conn.ws.bufferedAmount > this.pauseBytes / 2) return;
    this.resumeAll(conn, tags);
  }

  /** The request ended (answered, failed or timed out). */
  forget(tag: number, entry: Throttled): void {
    if (!entry.paused) return;
    entry.paused = false;
    const tags = this.paused.get(entry.conn);
    tags?.delete(tag);
    if (tags?.size === 0) this.paused.delete(entry.conn);
  }

  /** The client left: let its paused commands run to their end instead of to their timeout. */
  onClose(conn: ClientConnection): void {
    const tags = this.paused.get(conn);
    if (tags) this.resumeAll(conn, tags);
  }

  /** Periodic: 'drain' only follows a write that filled the socket, so check anyway. */
  sweep(): void {
    for (const conn of this.paused.keys()) this.onDrain(conn);
  }

  private resumeAll(conn: ClientConnection, tags: Map<number, Throttled>): void {
    this.paused.delete(conn);
    for (const [tag, entry] of tags) {
      entry.paused = false;
      this.pool.flow(entry.executorId, tag, false);
    }
  }

  private checkUnread(conn: ClientConnection): void {
    const unread = conn.ws.bufferedAmount;
    if (unread <= this.maxUnread || conn.ws.readyState !== OPEN) return;
    emitRecord({ time: Date.now(), level: 40, msg: 'client closed: it is not reading its answers', pid: process.pid, component: 'websocket-daemon', unreadBytes: unread, limit: this.maxUnread, remote: conn.remote }, 'server');
    // The close frame goes after what is queued: a client that reads again gets it all, then 1008.
    conn.ws.close(CLOSE_NOT_READING, `not reading: ${unread} bytes unread, over the ${this.maxUnread}-byte limit`);
    setTimeout(() => conn.ws.terminate(), TERMINATE_AFTER_MS).unref();
  }
}
