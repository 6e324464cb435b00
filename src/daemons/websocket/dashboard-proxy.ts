// The dashboard is the renderer daemon's: the edge, having checked the cookie, passes page,
// asset and feed requests to it over its Unix socket. Only dashboard traffic takes this
// path; clients' JSON-RPC on /ws never does.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { SECURITY_HEADERS } from './dashboard-auth.js';

const FORWARDED_REQUEST_HEADERS = ['accept', 'if-none-match', 'if-modified-since', 'user-agent'];
const FORWARDED_RESPONSE_HEADERS = ['content-type', 'content-length', 'etag', 'last-modified', 'content-security-policy'];

function pick(headers: http.IncomingHttpHeaders, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = headers[n];
    if (typeof v === 'string') out[n] = v;
  }
  return out;
}

const unavailable = 'The dashboard is restarting; reload in a moment.\n';

export function proxyRequest(socketPath: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { ...SECURITY_HEADERS, allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  const upstream = http.request({ socketPath, method: req.method, path: req.url, headers: pick(req.headers, FORWARDED_REQUEST_HEADERS) }, (ures) => {
    res.writeHead(ures.statusCode ?? 502, { ...pick(ures.headers, FORWARDED_RESPONSE_HEADERS), ...SECURITY_HEADERS });
    ures.pipe(res);
  });
  upstream.setTimeout(10_000, () => upstream.destroy(new Error('renderer daemon did not answer in 10 s')));
  upstream.on('error', () => {
    if (!res.headersSent) res.writeHead(503, { ...SECURITY_HEADERS, 'content-type': 'text/plain', 'retry-after': '1' }).end(unavailable);
    else res.destroy();
  });
  res.on('close', () => upstream.destroy());
  upstream.end();
}

/** Splices a WebSocket upgrade through to the renderer daemon: bytes both ways, nothing parsed. */
export function proxyUpgrade(socketPath: string, req: http.IncomingMessage, socket: Duplex, head: Buffer, refuse: (status: number, reason: string) => void): void {
  const headers = { ...pick(req.headers, ['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'origin']), connection: 'Upgrade', upgrade: 'websocket' };
  const upstream = http.request({ socketPath, path: req.url, headers });
  upstream.setTimeout(5_000, () => upstream.destroy(new Error('timeout')));
  upstream.on('upgrade', (ures, usocket, uhead) => {
    upstream.setTimeout(0);
    const lines = ['HTTP/1.1 101 Switching Protocols'];
    for (let i = 0; i < ures.rawHeaders.length; i += 2) lines.push(`${ures.rawHeaders[i]}: ${ures.rawHeaders[i + 1]}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (uhead.length) socket.write(uhead);
    if (head.length) usocket.write(head);
    const end = () => {
      socket.destroy();
      usocket.destroy();
    };
    usocket.on('error', end).on('close', end);
    socket.on('error', end).on('close', end);
    usocket.pipe(socket);
    socket.pipe(usocket);
  });
  upstream.on('response', (ures) => {
    ures.resume();
    refuse(ures.statusCode ?? 502, 'the dashboard refused the connection');
  });
  upstream.on('error', () => refuse(503, 'the dashboard is restarting; retry shortly'));
  upstream.end();
}
