// The edge's direct links to every executor. The supervisor tells us (over IPC) which
// executors run where; we connect to their sockets and forward client frames as they are,
// without re-serialising. When a link drops, every request in flight on it is answered at
// once with a retryable -32003.
import { FrameKind, requestLead, serviceLead, type Frame } from '../../bus/frame-codec.js';
import { connectFrameSocket, type FrameSocket } from '../../bus/frame-socket.js';
import { ContinuumError } from '../../protocol/errors.js';
import type { ExecutorStatus } from '../../protocol/internal.js';
import type { Logger } from '../../logging/child-log.js';

export interface ExecutorLink {
  status: ExecutorStatus;
  socket: FrameSocket | undefined;
  /** pid the socket is connected to; differs from status.pid while reconnecting. */
  connectedPid: number | null;
  /** The last pid that served on this link; survives the link dropping, to spot a restart. */
  servedPid: number | null;
  /** Tags of requests in flight on this link. */
  inflight: InflightRequests;
  retryTimer?: NodeJS.Timeout;
}

/** The tags of the requests in flight on a link, and how many request bytes they hold there. */
export class InflightRequests {
  private readonly sizes = new Map<number, number>();
  /** Request bytes the executor holds (parsed, queued or running): what its memory must absorb. */
  bytes = 0;

  add(tag: number, size: number): void {
    this.sizes.set(tag, size);
    this.bytes += size;
  }

  has(tag: number): boolean {
    return this.sizes.has(tag);
  }

  delete(tag: number): boolean {
    const size = this.sizes.get(tag);
    if (size === undefined) return false;
    this.sizes.delete(tag);
    this.bytes -= size;
    return true;
  }

  clear(): void {
    this.sizes.clear();
    this.bytes = 0;
  }

  get size(): number {
    return this.sizes.size;
  }

  [Symbol.iterator](): IterableIterator<number> {
    return this.sizes.keys();
  }
}

export interface PoolEvents {
  onFrame(link: ExecutorLink, frame: Frame): void;
  /** The link went down: answer these tags with `error`. */
  onLost(link: ExecutorLink, tags: number[], error: ContinuumError, deadPid: number | null): void;
  /** A new executor process is serving; `previousPid` is null on first start. */
  onUp(link: ExecutorLink, previousPid: number | null): void;
}

const PAUSE = Buffer.from([1]);
const RESUME = Buffer.from([0]);

const leadCache = new Map<string, Buffer>();
function leadFor(sessionId: string): Buffer {
  let lead = leadCache.get(sessionId);
  if (!lead) {
    if (leadCache.size > 100_000) leadCache.clear();
    lead = requestLead(sessionId);
    leadCache.set(sessionId, lead);
  }
  return lead;
}

export class ExecutorPool {
  readonly links = new Map<string, ExecutorLink>();

  constructor(private readonly events: PoolEvents, private readonly log: Logger) {}

  byEnvironment(environment: string): ExecutorLink[] {
    return [...this.links.values()].filter((l) => l.status.environment === environment);
  }

  update(statuses: ExecutorStatus[]): void {
    for (const status of statuses) {
      let link = this.links.get(status.id);
      if (!link) {
        link = { status, socket: undefined, connectedPid: null, servedPid: null, inflight: new InflightRequests() };
        this.links.set(status.id, link);
      }
      link.status = status;
      if (status.state === 'running' && status.pid !== null && link.connectedPid !== status.pid) void this.connect(link, status.pid);
    }
  }

  /** Why a request for this executor can't be sent now, or undefined if it can. */
  unavailable(executorId: string): ContinuumError | undefined {
    const link = this.links.get(executorId);
    if (link?.socket?.open && link.status.state === 'running') return undefined;
    return unavailableError(link?.status, executorId);
  }

  /** `environment` is the caller's: a system daemon serves every environment and needs it. */
  send(executorId: string, tag: number, sessionId: string, environment: string, raw: Buffer): ExecutorLink | undefined {
    const link = this.links.get(executorId);
    if (!link?.socket?.open || link.status.state !== 'running') return undefined;
    link.socket.send(FrameKind.Request, tag, raw, link.status.service ? serviceLead(sessionId, environment) : leadFor(sessionId));
    link.inflight.add(tag, raw.length);
    return link;
  }

  /** Pauses or resumes the streamed output of request `tag` at the executor. */
  flow(executorId: string, tag: number, pause: boolean): void {
    const link = this.links.get(executorId);
    if (link?.socket?.open && link.inflight.has(tag)) link.socket.send(FrameKind.Flow, tag, pause ? PAUSE : RESUME);
  }

  /** Reconnects to `pid` later, as long as the supervisor still says it runs. */
  private retry(link: ExecutorLink, pid: number, delayMs: number): void {
    clearTimeout(link.retryTimer);
    link.retryTimer = setTimeout(() => {
      if (link.status.state === 'running' && link.status.pid === pid && !link.socket && link.connectedPid === null) void this.connect(link, pid);
    }, delayMs);
    link.retryTimer.unref();
  }

  private async connect(link: ExecutorLink, pid: number): Promise<void> {
    link.connectedPid = pid;
    const old = link.socket;
    link.socket = undefined;
    if (old) {
      // The supervisor's news of a new process can come before the old socket's close: the
      // old one's close handler then sees itself replaced, so its requests are failed here.
      const tags = [...link.inflight];
      link.inflight.clear();
      if (tags.length > 0) this.events.onLost(link, tags, unavailableError({ ...link.status, state: 'restarting' }, link.status.id, link.servedPid ?? undefined), link.servedPid);
      old.destroy();
    }
    let socket: FrameSocket;
    try {
      socket = await connectFrameSocket(link.status.socket, 2_000);
    } catch (err) {
      this.log.warn('cannot reach executor', { executorId: link.status.id, pid, error: (err as Error).message });
      if (link.connectedPid === pid) link.connectedPid = null;
      this.retry(link, pid, 200);
      return;
    }
    if (link.connectedPid !== pid) {
      socket.destroy();
      return;
    }
    clearTimeout(link.retryTimer);
    link.socket = socket;
    socket.onFrame((frame) => this.events.onFrame(link, frame));
    socket.onClose(() => {
      if (link.socket !== socket) return;
      link.socket = undefined;
      link.connectedPid = null;
      const tags = [...link.inflight];
      link.inflight.clear();
      this.events.onLost(link, tags, unavailableError({ ...link.status, state: 'restarting' }, link.status.id, pid), pid);
      // Usually the process died and the supervisor will say so; if it is alive, come back.
      this.retry(link, pid, 100);
    });
    const previousPid = link.servedPid;
    link.servedPid = pid;
    this.events.onUp(link, previousPid);
  }
}

export function unavailableError(status: ExecutorStatus | undefined, executorId: string, deadPid?: number): ContinuumError {
  if (status?.service) {
    const retryAfterMs = Math.max(50, status.retryAfterMs);
    return status.state === 'failed'
      ? new ContinuumError('EXECUTOR_UNAVAILABLE', `the ${executorId} has failed (${status.reason ?? 'crash loop'}); see \`continuum ps\` and server.log`, { retryable: false, state: 'failed', reason: status.reason ?? 'crash loop', executorId })
      : new ContinuumError('EXECUTOR_UNAVAILABLE', `the ${executorId} is ${deadPid ? 'restarting' : status.state}; retry in ${retryAfterMs} ms`, { retryable: true, retryAfterMs, state: status.state, executorId });
  }
  if (status?.state === 'failed') {
    return new ContinuumError('EXECUTOR_UNAVAILABLE', `environment ${status.environment} has failed (${status.reason ?? 'crash loop'}); see \`continuum ps\` and its log`, {
      retryable: false,
      state: 'failed',
      reason: status.reason ?? 'crash loop',
      executorId,
    });
  }
  const retryAfterMs = Math.max(50, status?.retryAfterMs ?? 100);
  const what = deadPid
    ? `executor ${executorId} (pid ${deadPid}) died or dropped its link`
    : status?.state === 'running'
      ? `executor ${executorId} is unreachable (reconnecting)`
      : `executor ${executorId} is ${status?.state ?? 'not running'}`;
  return new ContinuumError('EXECUTOR_UNAVAILABLE', `${what}; it is being restarted, retry in ${retryAfterMs} ms`, {
    retryable: true,
    retryAfterMs,
    state: status?.state ?? 'stopped',
    executorId,
    ...(status?.reason ? { reason: status.reason } : {}),
  });
}
