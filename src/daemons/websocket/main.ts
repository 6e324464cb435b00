// continuum-websocket-daemon: the edge. HTTP + WebSocket on loopback, token auth at the
// upgrade, origin checks for browsers, and the router.
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { busProof } from '../../bus/auth.js';
import { SessionDaemonClient } from '../../bus/session-client.js';
import { TickCork } from '../../bus/tick-cork.js';
import { readBoot, SupervisorChannel } from '../../bus/supervisor-channel.js';
import { homePaths } from '../../config/paths.js';
import { hashToken, readSecrets, tokenGrants } from '../../config/secrets.js';
import { childLogger } from '../../logging/child-log.js';
import { ExecutorPool } from './executor-pool.js';
import { Router, type ClientConnection } from './router.js';
import { SessionBinder } from './session-binder.js';

const boot = readBoot();
const { config } = boot;
const paths = homePaths(boot.home);
const log = childLogger({ component: 'websocket-daemon' }, 'server');

const sessions = new SessionDaemonClient(paths.sessionSocket, { role: 'websocket-daemon', id: 'edge', proof: boot.busProof });
let router!: Router;
const pool = new ExecutorPool(
  {
    onFrame: (link, frame) => router.onExecutorFrame(link, frame),
    onLost: (link, tags, error) => router.onExecutorLost(link, tags, error),
    onUp: (link, previousPid) => {
      log.info('executor link up', { executorId: link.status.id, pid: link.status.pid, previousPid });
      router.onExecutorUp(link, previousPid);
    },
  },
  log,
);
const binder = new SessionBinder(config, sessions, pool);
router = new Router(config, pool, binder, (ids) => {
  sessions.call('session.touch', { sessionIds: ids, at: Date.now() }).catch(() => undefined);
});

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

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/healthz') {
    const executors = [...pool.links.values()].map((l) => ({ id: l.status.id, state: l.status.state, pid: l.status.pid, linked: Boolean(l.socket?.open) }));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, executors }));
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the WebSocket endpoint is /ws\n');
});

// UTF-8 is checked by the router, which answers -32700 instead of closing with 1007.
const wss = new WebSocketServer({ noServer: true, maxPayload: config.limits.frameHardBytes, perMessageDeflate: false, skipUTF8Validation: true });

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => undefined);
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname !== '/ws') return refuse(socket, 404, 'not found: the WebSocket endpoint is /ws');
  // A browser page may only connect from the dashboard's own origin (same host and port).
  const origin = req.headers.origin;
  if (origin !== undefined && !ownOrigins.has(origin)) {
    log.warn('upgrade refused: foreign origin', { origin, remote: req.socket.remoteAddress });
    return refuse(socket, 403, 'forbidden: cross-origin WebSocket connections are refused');
  }
  const token = tokenOf(req, url);
  const tokenHash = token ? hashToken(token) : undefined;
  const granted = tokenHash ? grants.get(tokenHash) : undefined;
  if (!granted) {
    log.warn('upgrade refused: bad token', { remote: req.socket.remoteAddress, hadToken: Boolean(token) });
    return refuse(socket, 401, 'unauthorized: send a token (Authorization: Bearer, or ?token=); `continuum token <env>` prints one');
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const conn: ClientConnection = {
      ws,
      cork: new TickCork(socket as import('node:net').Socket),
      grants: granted,
      remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      tokenId: tokenHash!.slice(0, 12),
      binding: undefined,
      inflight: 0,
      backlog: undefined,
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
});
channel.onMessage((m) => {
  if (m.t === 'executors') pool.update(m.executors);
});

await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port, config.host, () => resolve());
});
sessions.connect(2_000).catch(() => log.warn('session daemon not reachable yet; will retry on demand'));
const address = server.address();
addOwnOrigins(typeof address === 'object' && address ? address.port : config.port);
log.info('websocket daemon listening', { address });
channel.ready(typeof address === 'object' && address ? address.port : undefined);
