// continuum-websocket-daemon: the edge. HTTP + WebSocket on loopback, token auth at the
// upgrade, origin checks for browsers, and the router.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import v8 from 'node:v8';
import { WebSocketServer } from 'ws';
import { ControlClient } from '../../bus/control-client.js';
import { SessionDaemonClient } from '../../bus/session-client.js';
import { TickCork } from '../../bus/tick-cork.js';
import { readBoot, SupervisorChannel } from '../../bus/supervisor-channel.js';
import { homePaths } from '../../config/paths.js';
import { hashToken, readSecrets, tokenGrants } from '../../config/secrets.js';
import { childLogger } from '../../logging/child-log.js';
import type { ProcessTable } from '../../protocol/control.js';
import { FEED_PATH } from '../../protocol/dashboard.js';
import { DashboardAuth, loginPage, SECURITY_HEADERS } from './dashboard-auth.js';
import { proxyRequest, proxyUpgrade } from './dashboard-proxy.js';
import { ExecutorPool } from './executor-pool.js';
import type { Tracked } from './ledger-gate.js';
import { LedgerWriter } from './ledger-writer.js';
import { EdgeMetrics, METRICS_CONTENT_TYPE, type ConnectionKind } from './metrics.js';
import { Router, type ClientConnection } from './router.js';
import { SessionBinder } from './session-binder.js';

const boot = readBoot();
const { config } = boot;
const paths = homePaths(boot.home);
const log = childLogger({ component: 'websocket-daemon' }, 'server');

/**
 * Allocates short-lived garbage until both semi-spaces of the young generation (of a fixed size,
 * child-spec.ts) have been used once, as a JVM's AlwaysPreTouch does: ~20 ms at start, after
 * which the RSS of a fresh edge is the RSS it keeps under load, rather than growing to it
 * over its first seconds of load.
 */
function touchYoungGeneration(): void {
  const newSpace = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
  const junk: number[][] = [];
  for (let bytes = 0; bytes < newSpace * 2.5; bytes += 8192) junk[0] = new Array<number>(1024).fill(0);
}
touchYoungGeneration();

// The ledger closes entries left open by an earlier edge process when a new run says hello.
const edgeRun = randomUUID();
let connections = 0;
const sessions = new SessionDaemonClient(paths.sessionSocket, { role: 'websocket-daemon', id: 'edge', proof: boot.busProof });
/** The session daemon's ledger thread, on a socket of its own. */
const ledgerLink = config.ledger.enabled
  ? new SessionDaemonClient(paths.ledgerSocket, { role: 'websocket-daemon', id: 'edge', proof: boot.busProof, run: edgeRun, ...(boot.previousExit ? { previousExit: boot.previousExit } : {}) })
  : undefined;
let router!: Router;
const pool = new ExecutorPool(
  {
    onFrame: (link, frame) => router.onExecutorFrame(link, frame),
    onLost: (link, tags, error, deadPid) => router.onExecutorLost(link, tags, error, deadPid),
    onUp: (link, previousPid) => {
      log.info('executor link up', { executorId: link.status.id, pid: link.status.pid, previousPid });
      router.onExecutorUp(link, previousPid);
    },
  },
  log,
);
const binder = new SessionBinder(config, sessions, pool);
const metrics = new EdgeMetrics(pool, () => router.boundSessions());
router = new Router(
  config,
  pool,
  binder,
  (ids, commands) => {
    sessions.call('session.touch', { sessionIds: ids, at: Date.now(), commands }).catch(() => undefined);
  },
  metrics,
  ledgerLink ? new LedgerWriter<Tracked, Tracked>(ledgerLink) : undefined,
);
const control = new ControlClient(paths.supervisorSocket);
const dashboard = new DashboardAuth(boot.dashboardKey);
/** The human environment: what a logged-in dashboard's console may use. */
const CONSOLE_GRANTS: ReadonlySet<string> = new Set(config.environments.some((e) => e.name === 'browser') ? ['browser'] : []);

// The dashboard's own origins. Not derived from the Host header, which the client chooses.
const ownOrigins = new Set<string>();
function addOwnOrigins(port: number): void {
  const hosts = new Set([config.host, '127.0.0.1', 'localhost', '[::1]']);
  for (const h of hosts) for (const scheme of ['http', 'https']) ownOrigins.add(`${scheme}://${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}:${port}`);
}

const grants = tokenGrants(readSecrets(paths.secrets) ?? { tokens: {} });

function refuse(socket: import('node:stream').Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(reason) + 1}\r\n\r\n${reason}\n`);
}

function tokenOf(req: http.IncomingMessage, url: URL): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  return url.searchParams.get('token') ?? undefined;
}

function page(res: http.ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'",
    ...headers,
  }).end(html);
}

/** `/login?token=…`: a one-time token from the supervisor becomes a session cookie, and the URL goes away. */
async function login(url: URL, res: http.ServerResponse): Promise<void> {
  const token = url.searchParams.get('token');
  if (!token) return page(res, 401, loginPage());
  let ok: boolean;
  try {
    ok = (await control.call<{ ok: boolean }>('consumeDashboardLogin', { token })).ok;
  } catch {
    return page(res, 503, loginPage('Continuum could not check this link just now; reload the page in a moment.'));
  }
  if (!ok) {
    log.warn('dashboard login refused: link used or expired');
    return page(res, 401, loginPage('This login link has already been used or has expired.'));
  }
  log.info('dashboard login');
  res.writeHead(303, { ...SECURITY_HEADERS, location: '/', 'set-cookie': dashboard.issue() }).end();
}

/** Any Continuum token, or the dashboard cookie, may read /metrics (see README, "Metrics"). */
function mayReadMetrics(req: http.IncomingMessage): boolean {
  const auth = req.headers.authorization;
  const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
  return (token !== undefined && grants.has(hashToken(token))) || dashboard.verify(req);
}

async function serveMetrics(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  if (!mayReadMetrics(req)) {
    res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="continuum"' }).end('unauthorized: send a Continuum token as Authorization: Bearer; `continuum token <env>` prints one\n');
    return;
  }
  const table = await control.call<ProcessTable>('ps', undefined, 2_000).catch(() => undefined);
  res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' }).end(await metrics.render(table));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/healthz') {
    const executors = [...pool.links.values()].map((l) => ({ id: l.status.id, state: l.status.state, pid: l.status.pid, linked: Boolean(l.socket?.open) }));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, executors }));
    return;
  }
  const fail = (err: unknown) => {
    log.error('http request failed', { path: url.pathname, error: (err as Error).message });
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('internal error\n');
  };
  if (url.pathname === '/metrics') return void serveMetrics(req, res).catch(fail);
  if (url.pathname === '/login') return void login(url, res).catch(fail);
  if (url.pathname === '/logout') {
    res.writeHead(303, { ...SECURITY_HEADERS, location: '/', 'set-cookie': DashboardAuth.clear() }).end();
    return;
  }
  // Without the cookie there is the login page and nothing else: no page, asset or data.
  if (!dashboard.verify(req)) return page(res, 401, loginPage());
  proxyRequest(paths.dashboardSocket, req, res);
});

// UTF-8 is checked by the router, which answers -32700 instead of closing with 1007.
const wss = new WebSocketServer({ noServer: true, maxPayload: config.limits.frameHardBytes, perMessageDeflate: false, skipUTF8Validation: true });

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => undefined);
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname !== '/ws' && url.pathname !== FEED_PATH) return refuse(socket, 404, 'not found: the WebSocket endpoint is /ws');
  // A browser page may only connect from the dashboard's own origin (same host and port).
  const origin = req.headers.origin;
  if (origin !== undefined && !ownOrigins.has(origin)) {
    log.warn('upgrade refused: foreign origin', { origin, remote: req.socket.remoteAddress });
    return refuse(socket, 403, 'forbidden: cross-origin WebSocket connections are refused');
  }
  // The cookie is only ever sent by a browser, and a browser always sends its Origin.
  const cookie = origin !== undefined && dashboard.verify(req);
  if (url.pathname === FEED_PATH) {
    if (!cookie) return refuse(socket, 401, 'unauthorized: log in to the dashboard first');
    socket.once('close', () => metrics.connectionClosed('dashboard'));
    metrics.connectionOpened('dashboard');
    return proxyUpgrade(paths.dashboardSocket, req, socket, head, (status, reason) => refuse(socket, status, reason));
  }
  const token = tokenOf(req, url);
  const tokenHash = token ? hashToken(token) : undefined;
  const granted = tokenHash ? grants.get(tokenHash) : !token && cookie && CONSOLE_GRANTS.size > 0 ? CONSOLE_GRANTS : undefined;
  if (!granted) {
    log.warn('upgrade refused: bad token', { remote: req.socket.remoteAddress, hadToken: Boolean(token) });
    return refuse(socket, 401, 'unauthorized: send a token (Authorization: Bearer, or ?token=); `continuum token <env>` prints one');
  }
  const kind: ConnectionKind = tokenHash ? 'client' : 'console';
  wss.handleUpgrade(req, socket, head, (ws) => {
    metrics.connectionOpened(kind);
    ws.once('close', () => metrics.connectionClosed(kind));
    const conn: ClientConnection = {
      ws,
      cork: new TickCork(socket as import('node:net').Socket),
      grants: granted,
      remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      tokenId: tokenHash ? tokenHash.slice(0, 12) : 'dashboard',
      binding: undefined,
      inflight: 0,
      backlog: undefined,
      serial: `${edgeRun.slice(0, 8)}-${++connections}`,
      seq: 0,
      ordered: [],
      auditSession: undefined,
      auditWho: '',
    };
    ws.on('message', (data: Buffer, isBinary) => router.onMessage(conn, data, isBinary));
    ws.on('close', () => router.onClose(conn));
    socket.on('drain', () => router.onDrain(conn));
    ws.on('error', () => undefined);
  });
});

const channel = new SupervisorChannel(async () => {
  for (const ws of wss.clients) ws.close(1001, 'server shutting down');
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
    setTimeout(resolve, 500).unref();
  });
  sessions.close();
  ledgerLink?.close();
  control.close();
});
channel.onMessage((m) => {
  if (m.t === 'executors') {
    pool.update([...m.executors, ...m.services]);
    router.onStatuses(m.executors);
  }
});

await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port, config.host, () => resolve());
});
sessions.connect(2_000).catch(() => log.warn('session daemon not reachable yet; will retry on demand'));
ledgerLink?.connect(2_000).catch(() => log.warn("session daemon's ledger not reachable yet; will retry on demand"));
const address = server.address();
addOwnOrigins(typeof address === 'object' && address ? address.port : config.port);
log.info('websocket daemon listening', { address });
channel.ready(typeof address === 'object' && address ? address.port : undefined);
