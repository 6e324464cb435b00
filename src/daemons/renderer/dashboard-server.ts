// The renderer daemon's HTTP side, on a Unix socket that only the edge reaches (after it has
// checked the dashboard cookie): the built front end (web/ → dist/web), session artifacts,
// and the live feed's WebSocket.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { FEED_PATH } from '../../protocol/dashboard.js';
import type { Artifacts } from './artifacts.js';
import type { FeedHub } from './feed.js';

/** dist/src/daemons/renderer → dist/web, where `npm run build` puts the front end. */
export const WEB_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../web');

const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.map': 'application/json', '.svg': 'image/svg+xml' };
const ASSET = /^\/assets\/[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

function send(res: http.ServerResponse, status: number, type: string, body: Buffer | string, head: boolean): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'content-security-policy': CSP });
  res.end(head ? undefined : body);
}

export function dashboardServer(artifacts: Artifacts, feed: FeedHub): { http: http.Server; closeFeeds(): void } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const head = req.method === 'HEAD';
    // One page: the views are client-side routes (#/processes, #/logs, …).
    const file = url.pathname === '/' || url.pathname === '/index.html' ? path.join(WEB_ROOT, 'index.html') : ASSET.test(url.pathname) ? path.join(WEB_ROOT, url.pathname) : undefined;
    if (file) {
      fs.readFile(file, (err, body) => {
        if (err) return send(res, err.code === 'ENOENT' && file.endsWith('index.html') ? 503 : 404, 'text/plain', err.code === 'ENOENT' && file.endsWith('index.html') ? 'the dashboard is not built: run `npm run build`\n' : 'not found\n', head);
        send(res, 200, TYPES[path.extname(file)] ?? 'application/octet-stream', body, head);
      });
      return;
    }
    const m = /^\/artifacts\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    const found = m ? artifacts.open(decodeURIComponent(m[1]!), decodeURIComponent(m[2]!)) : undefined;
    if (found) {
      res.writeHead(200, { 'content-type': found.type, 'content-length': found.bytes, 'content-security-policy': "default-src 'none'", 'content-disposition': 'inline' });
      if (head) return void res.end();
      fs.createReadStream(found.file).on('error', () => res.destroy()).pipe(res);
      return;
    }
    send(res, 404, 'text/plain', 'not found\n', head);
  });
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => undefined);
    if (new URL(req.url ?? '/', 'http://dashboard').pathname !== FEED_PATH) return void socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => feed.attach(ws));
  });
  return { http: server, closeFeeds: () => wss.clients.forEach((ws) => ws.terminate()) };
}
