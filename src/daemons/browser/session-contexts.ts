// One isolated browser context (cookies, storage, cache) per session: created at the
// session's first browser call, kept while the session lives, closed when the session daemon
// says it ended (closed or expired). A session's calls run one at a time, in order.
// A context dies with its Chromium; the session's next call gets a fresh one.
// Under an allowlist, a context's traffic goes through the session's egress forwarder to the
// environment's egress proxy, the same one as the sandbox's shells: redirects and DNS answers
// are checked there, at the connection; the routing here gives clear errors first.
import type { BrowserContext, Page, Route, WebSocketRoute } from 'playwright-core';
import { EgressForwarders } from '../../bus/egress-forwarder.js';
import type { SessionDaemonClient } from '../../bus/session-client.js';
import type { EnvironmentConfig } from '../../config/schema.js';
import { childLogger, type Logger } from '../../logging/child-log.js';
import { ContinuumError } from '../../protocol/errors.js';
import type { SessionEnded, SessionLookupResult } from '../../protocol/internal.js';
import { EgressPolicy } from '../../sandbox/egress-rules.js';
import type { ServiceCall } from '../service-host.js';
import type { ChromiumHost } from './chromium.js';
import { withDeadline } from './deadline.js';
import { checkUrl } from './url-policy.js';

const VIEWPORT = { width: 1280, height: 800 };
/** After a link drop, sessions whose end we may have missed are checked this often. */
const STALE_SWEEP_MS = 30_000;

export interface SessionBrowser {
  readonly sessionId: string;
  readonly environment: string;
  readonly createdAt: number;
  readonly context: BrowserContext;
  readonly policy: EgressPolicy;
  /** Whether the context's traffic goes through the environment's egress proxy. */
  readonly proxied: boolean;
  /** Cap of a result's size (the environment's `output.maxBytes`). */
  readonly outputMaxBytes: number;
  /** Requests the policy refused during the current call, to explain a failed navigation. */
  refused: { url: string; reason: string }[];
  page: Page | undefined;
  /** Our link to the session daemon dropped since the last check: the session may be gone. */
  stale: boolean;
}

export class SessionContexts {
  private readonly entries = new Map<string, SessionBrowser>();
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Sessions ended while their context was being created, by createdAt. */
  private readonly endedWhileCreating = new Map<string, number>();
  private readonly creating = new Set<string>();
  private readonly environments: Map<string, EnvironmentConfig>;
  private readonly sweepTimer: NodeJS.Timeout;
  /** One set of per-session forwarders per allowlisted environment, made on first use. */
  private readonly forwarders = new Map<string, EgressForwarders>();

  constructor(
    private readonly chromium: ChromiumHost,
    private readonly sessions: SessionDaemonClient,
    environments: readonly EnvironmentConfig[],
    private readonly log: Logger,
    /** The egress proxy's socket of an environment (`paths.egressSocket`). */
    private readonly egressSocket: (environment: string) => string,
  ) {
    this.environments = new Map(environments.map((e) => [e.name, e]));
    chromium.onLost((reason) => {
      if (this.entries.size > 0) this.log.warn('browser contexts lost with chromium; sessions get a fresh one at their next call', { contexts: this.entries.size, reason });
      this.entries.clear();
      // The contexts are gone: their next ones get fresh ports.
      for (const f of this.forwarders.values()) f.closeAll();
    });
    sessions.onEvent((name, data) => {
      if (name === 'session.ended') this.onEnded(data as SessionEnded);
    });
    sessions.onLinkLost(() => {
      for (const e of this.entries.values()) e.stale = true;
    });
    this.sweepTimer = setInterval(() => void this.sweepStale(), STALE_SWEEP_MS);
    this.sweepTimer.unref();
  }

  get size(): number {
    return this.entries.size;
  }

  /** Runs `work` with the session's context, after the session's earlier calls. */
  run<T>(call: ServiceCall, work: (s: SessionBrowser) => Promise<T>): Promise<T> {
    const previous = this.queues.get(call.sessionId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.attempt(call, work, true));
    this.queues.set(call.sessionId, next);
    const forget = () => {
      if (this.queues.get(call.sessionId) === next) this.queues.delete(call.sessionId);
    };
    next.then(forget, forget);
    return next;
  }

  /** The session's page, opened again if a timeout or a crash closed it. */
  async page(s: SessionBrowser): Promise<Page> {
    if (!s.page || s.page.isClosed()) s.page = await s.context.newPage();
    return s.page;
  }

  /** A page that stopped answering is closed; if even that hangs, Chromium is. */
  async replacePage(s: SessionBrowser): Promise<void> {
    const page = s.page;
    s.page = undefined;
    if (!page) return;
    await withDeadline(page.close({ runBeforeUnload: false }), 5_000, () => new Error('page.close timed out')).catch(() => this.chromium.kill(`a page of session ${s.sessionId} did not close after a timeout`));
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    await Promise.all([...this.entries.values()].map((e) => this.drop(e, 'browser daemon stopping')));
    for (const f of this.forwarders.values()) f.closeAll();
  }

  private async attempt<T>(call: ServiceCall, work: (s: SessionBrowser) => Promise<T>, retry: boolean): Promise<T> {
    const s = await this.acquire(call);
    s.refused = [];
    try {
      return await work(s);
    } catch (err) {
      // Chromium died under the call (crash, kill): its effects died with it, so the call
      // runs once more on a fresh browser rather than failing the caller.
      if (!s.context.browser()?.isConnected() && !(err instanceof ContinuumError && err.code === 'CONTINUUM_TIMEOUT')) {
        if (retry) return this.attempt(call, work, false);
        throw new ContinuumError('EXECUTOR_UNAVAILABLE', 'Chromium exited during the call; it is being restarted, retry shortly', { retryable: true, retryAfterMs: 500, reason: 'chromium-exited' }, { cause: err });
      }
      throw err;
    }
  }

  private async acquire(call: ServiceCall): Promise<SessionBrowser> {
    const { sessionId } = call;
    let s = this.entries.get(sessionId);
    if (s?.stale) {
      const found = (await this.lookup([sessionId]))[sessionId];
      if (!found || found.createdAt !== s.createdAt) {
        await this.drop(s, 'session ended');
        s = undefined;
      } else s.stale = false;
    }
    if (s && s.context.browser()?.isConnected()) return s;
    if (s) this.entries.delete(sessionId);
    return this.create(call);
  }

  private async create(call: ServiceCall): Promise<SessionBrowser> {
    const { sessionId } = call;
    const env = this.environments.get(call.environment);
    if (!env) throw new ContinuumError('FORBIDDEN', `unknown environment "${call.environment}"`);
    this.creating.add(sessionId);
    try {
      const found = (await this.lookup([sessionId]))[sessionId];
      if (!found) throw new ContinuumError('SESSION_NOT_FOUND', `session ${sessionId} not found; it may have been closed or expired`);
      if (found.environment !== call.environment) throw new ContinuumError('SESSION_WRONG_ENVIRONMENT', `session ${sessionId} belongs to another environment`);
      const browser = await this.chromium.get();
      const proxy = await this.proxyFor(env, sessionId);
      const context = await browser.newContext({ viewport: VIEWPORT, serviceWorkers: 'block', acceptDownloads: false, ...(proxy ? { proxy } : {}) });
      const s: SessionBrowser = {
        sessionId,
        environment: env.name,
        createdAt: found.createdAt,
        context,
        policy: EgressPolicy.of(env.sandbox.network),
        proxied: proxy !== undefined,
        outputMaxBytes: env.output.maxBytes,
        refused: [],
        page: undefined,
        stale: false,
      };
      // Every request of every page (and worker) passes the environment's policy first.
      await context.route('**/*', (route) => this.gate(s, route));
      await context.routeWebSocket(/.*/, (ws) => this.gateWebSocket(s, ws));
      if (this.endedWhileCreating.get(sessionId) === found.createdAt) {
        await context.close().catch(() => undefined);
        await this.forwarders.get(env.name)?.release(sessionId);
        throw new ContinuumError('SESSION_NOT_FOUND', `session ${sessionId} was closed`);
      }
      this.entries.set(sessionId, s);
      this.envLog(s).info('browser context created', { sessionId, event: 'browser.context.created' });
      return s;
    } finally {
      this.creating.delete(sessionId);
      this.endedWhileCreating.delete(sessionId);
    }
  }

  /**
   * The context's proxy: the session's forwarder, for an allowlist; none for `host` (direct)
   * or `none` (the routing refuses everything). `<-loopback>` as the whole bypass list stops
   * Chromium's implicit direct path to localhost/127.0.0.1, so loopback goes through the
   * proxy like any host (Playwright 1.65 passes it as the context's proxyBypassList; a
   * per-context proxy needs no launch-level placeholder on Linux).
   */
  private async proxyFor(env: EnvironmentConfig, sessionId: string): Promise<{ server: string; bypass: string } | undefined> {
    if (typeof env.sandbox.network !== 'object') return undefined;
    let f = this.forwarders.get(env.name);
    if (!f) this.forwarders.set(env.name, (f = new EgressForwarders(this.egressSocket(env.name))));
    return { server: await f.proxyUrl(sessionId), bypass: '<-loopback>' };
  }

  private async gate(s: SessionBrowser, route: Route): Promise<void> {
    const raw = route.request().url();
    let decision;
    try {
      const url = new URL(raw);
      decision = url.protocol === 'http:' || url.protocol === 'https:' ? await checkUrl(url, s.policy) : { allowed: false as const, reason: `${url.protocol} requests are not allowed` };
    } catch {
      decision = { allowed: false as const, reason: 'not a valid URL' };
    }
    if (decision.allowed) {
      await route.continue().catch(() => undefined);
      return;
    }
    s.refused.push({ url: raw.slice(0, 2048), reason: decision.reason });
    this.envLog(s).warn('browser request refused by the network policy', { sessionId: s.sessionId, url: raw.slice(0, 2048), reason: decision.reason, event: 'browser.request.refused' });
    await route.abort('blockedbyclient').catch(() => undefined);
  }

  private async gateWebSocket(s: SessionBrowser, ws: WebSocketRoute): Promise<void> {
    const decision = await checkUrl(new URL(ws.url()), s.policy).catch(() => ({ allowed: false as const, reason: 'not a valid URL' }));
    if (decision.allowed) {
      ws.connectToServer();
      return;
    }
    s.refused.push({ url: ws.url().slice(0, 2048), reason: decision.reason });
    this.envLog(s).warn('browser WebSocket refused by the network policy', { sessionId: s.sessionId, url: ws.url().slice(0, 2048), reason: decision.reason, event: 'browser.request.refused' });
    await ws.close({ code: 1008, reason: 'forbidden by the network policy' }).catch(() => undefined);
  }

  private onEnded(ended: SessionEnded): void {
    if (this.creating.has(ended.sessionId)) this.endedWhileCreating.set(ended.sessionId, ended.createdAt);
    const s = this.entries.get(ended.sessionId);
    if (s && s.createdAt === ended.createdAt) void this.drop(s, 'session ended');
  }

  private async sweepStale(): Promise<void> {
    const stale = [...this.entries.values()].filter((e) => e.stale);
    if (stale.length === 0) return;
    try {
      const found = await this.lookup(stale.map((e) => e.sessionId));
      for (const e of stale) {
        const f = found[e.sessionId];
        if (!f || f.createdAt !== e.createdAt) await this.drop(e, 'session ended');
        else e.stale = false;
      }
    } catch {
      // The session daemon is still away; try again at the next sweep.
    }
  }

  private lookup(sessionIds: string[]): Promise<SessionLookupResult> {
    return this.sessions.call<SessionLookupResult>('session.lookup', { sessionIds }, 5_000);
  }

  private async drop(s: SessionBrowser, reason: string): Promise<void> {
    if (this.entries.get(s.sessionId) === s) this.entries.delete(s.sessionId);
    const closed = await withDeadline(s.context.close(), 5_000, () => new Error('context.close timed out')).then(() => true, () => false);
    if (!this.entries.has(s.sessionId) && !this.creating.has(s.sessionId)) await this.forwarders.get(s.environment)?.release(s.sessionId);
    this.envLog(s).info('browser context closed', { sessionId: s.sessionId, reason, closed, event: 'browser.context.closed' });
  }

  private envLog(s: SessionBrowser): Logger {
    return childLogger({ component: 'browser-daemon', env: s.environment }, s.environment);
  }
}
