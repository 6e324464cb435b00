// The egress proxy of one environment: an allowlisting HTTP forward proxy (absolute-URI
// requests and CONNECT) on a Unix socket, for sandboxed processes that have no network of
// their own. HTTP is parsed by node:http; this file decides, dials (egress-dial.ts) and
// pipes. Every refusal is logged with the session id the connection's lead line claimed.
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import type { EgressLimits } from '../config/schema.js';
import { parseEgressLead } from '../protocol/egress-lead.js';
import { dialChecked, EgressRefusal, systemResolver, type Dialled, type Resolver } from './egress-dial.js';
import type { EgressPolicy } from './egress-rules.js';

export type EgressLog = (level: 'info' | 'warn', msg: string, fields: Record<string, unknown>) => void;

export interface EgressProxyOptions {
  environment: string;
  policy: EgressPolicy;
  limits: EgressLimits;
  log: EgressLog;
  resolve?: Resolver;
}

/** A connection that sends neither its lead line nor a request within this is closed. */
const LEAD_TIMEOUT_MS = 10_000;
const HEADERS_TIMEOUT_MS = 15_000;
/** Connection-level headers a proxy must not pass on (RFC 9110 §7.6.1). */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
/** How this proxy names itself in Proxy-Status (RFC 9209). */
export const PROXY_STATUS_NAME = 'continuum-egress';
const CONNECT_TARGET = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]/@]+):(\d{1,5})$/;

interface Target {
  method: string;
  host: string;
  port: number;
  sessionId: string | undefined;
}

export class EgressProxy {
  private readonly http: http.Server;
  private readonly listener: net.Server;
  private readonly sessions = new WeakMap<net.Socket, string>();
  private readonly resolve: Resolver;
  /** Tunnels open and requests being forwarded (or dialled) now. */
  private active = 0;
  private readonly open = new Set<net.Socket>();
  private closing: Promise<void> | undefined;

  constructor(private readonly o: EgressProxyOptions) {
    this.resolve = o.resolve ?? systemResolver;
    this.http = http.createServer({ maxHeaderSize: o.limits.maxHeaderBytes, headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: 0 }, (req, res) => void this.onRequest(req, res));
    this.http.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void this.onConnect(req, socket, head));
    this.http.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
      this.refuseRaw(socket, 501, 'Not Implemented', 'protocol upgrades through the proxy are not supported; use CONNECT', this.target(req, req.headers.host ?? '', 0));
    });
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => this.onClientError(err, socket));
    this.listener = net.createServer((socket) => this.accept(socket));
    // Idle keep-alive connections count too; beyond this a new connection is closed at once.
    this.listener.maxConnections = o.limits.maxConnectionsPerEnvironment * 4;
  }

  /** Listens on `socketPath`, replacing a socket file a killed predecessor left behind. */
  async listen(socketPath: string): Promise<void> {
    fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
    fs.rmSync(socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(socketPath, () => {
        this.listener.off('error', reject);
        resolve();
      });
    });
    // The run/ folder (0700) keeps host users out; the sandbox, which sees only this socket
    // bound in, may run under another uid.
    fs.chmodSync(socketPath, 0o666);
  }

  /** Stops listening and cuts every connection (the listener's close waits for them all). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
      for (const s of this.open) s.destroy();
      this.http.close();
      await closed;
    })();
    return this.closing;
  }

  /** Reads the optional session lead line, then hands the connection to the HTTP server. */
  private accept(socket: net.Socket): void {
    socket.on('error', () => undefined);
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    let head: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), LEAD_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      head = head.length ? Buffer.concat([head, chunk]) : chunk;
      const lead = parseEgressLead(head);
      if (lead.kind === 'incomplete') return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      if (lead.kind === 'invalid') {
        this.refuseRaw(socket, 400, 'Bad Request', lead.reason, { method: '-', host: '', port: 0, sessionId: undefined });
        return;
      }
      if (lead.kind === 'lead') this.sessions.set(socket, lead.sessionId);
      if (lead.rest.length) socket.unshift(lead.rest);
      this.http.emit('connection', socket);
      socket.resume();
    };
    socket.on('data', onData);
    socket.once('close', () => clearTimeout(timer));
  }

  private target(req: http.IncomingMessage, host: string, port: number): Target {
    return { method: req.method ?? '-', host, port, sessionId: this.sessions.get(req.socket as net.Socket) };
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL | undefined;
    try {
      url = new URL(req.url ?? '');
    } catch {
      // Origin-form ("GET /path"): someone talking to the proxy as if it were the server.
    }
    if (!url || url.protocol !== 'http:') {
      const why = url ? `only http:// URLs are forwarded (got ${url.protocol}); use CONNECT for https` : 'this is a forward proxy: send an absolute-URI request (GET http://host/path) or CONNECT host:port';
      this.refuseHttp(res, 400, 'Bad Request', why, this.target(req, url?.hostname ?? '', 0));
      return;
    }
    const t = this.target(req, url.hostname, url.port ? Number(url.port) : 80);
    const dialled = await this.dial(t);
    if (dialled instanceof EgressRefusal) {
      this.refuseHttp(res, dialled.status, statusText(dialled), dialled.message, t, dialled);
      return;
    }
    const { socket } = dialled;
    const lease = this.lease([socket]);
    if (req.socket.destroyed) return lease.end();
    socket.setTimeout(this.o.limits.idleTimeoutMs, () => socket.destroy(new Error('idle timeout')));
    const upstream = http.request({
      createConnection: () => socket,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers: { ...forwardable(req.headers), host: req.headers.host ?? url.host },
      setHost: false,
    });
    upstream.on('response', (up) => {
      res.writeHead(up.statusCode ?? 502, up.statusMessage, forwardable(up.headers));
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      if (lease.ended) return; // the client left first; nothing to answer
      if (res.headersSent) res.destroy();
      else this.refuseHttp(res, 502, 'Bad Gateway', `${t.host}:${t.port} failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`, t);
      lease.end();
    });
    res.on('close', () => lease.end());
    req.pipe(upstream);
  }

  private async onConnect(req: http.IncomingMessage, client: net.Socket, head: Buffer): Promise<void> {
    const m = CONNECT_TARGET.exec(req.url ?? '');
    if (!m) {
      this.refuseRaw(client, 400, 'Bad Request', 'CONNECT needs host:port', this.target(req, req.url ?? '', 0));
      return;
    }
    const t = this.target(req, m[1]!, Number(m[2]));
    const dialled = await this.dial(t);
    if (dialled instanceof EgressRefusal) {
      this.refuseRaw(client, dialled.status, statusText(dialled), dialled.message, t, dialled);
      return;
    }
    const { socket } = dialled;
    const lease = this.lease([socket, client]);
    const end = () => lease.end();
    for (const s of [socket, client]) {
      s.setTimeout(this.o.limits.idleTimeoutMs, end);
      s.once('close', end);
    }
    if (client.destroyed) return end();
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) socket.write(head);
    socket.pipe(client);
    client.pipe(socket);
  }

  /** A dialled connection's place under the cap, given back once, with its sockets destroyed. */
  private lease(sockets: net.Socket[]): { readonly ended: boolean; end(): void } {
    let ended = false;
    return {
      get ended() {
        return ended;
      },
      end: () => {
        if (ended) return;
        ended = true;
        this.active--;
        for (const s of sockets) s.destroy();
      },
    };
  }

  /** Counts the connection against the cap, then checks and dials; a refusal releases it. */
  private async dial(t: Target): Promise<Dialled | EgressRefusal> {
    if (this.active >= this.o.limits.maxConnectionsPerEnvironment) {
      return new EgressRefusal(503, `too many connections through the egress proxy at once (this environment's limit is ${this.o.limits.maxConnectionsPerEnvironment})`);
    }
    this.active++;
    try {
      const d = await dialChecked(this.o.policy, t.host, t.port, { resolve: this.resolve, timeoutMs: this.o.limits.connectTimeoutMs });
      this.o.log('info', 'egress allowed', { ...fields(t), address: d.address });
      return d;
    } catch (err) {
      this.active--;
      if (err instanceof EgressRefusal) return err;
      return new EgressRefusal(502, `cannot connect to ${t.host}:${t.port}: ${(err as Error).message}`);
    }
  }

  private onClientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
    const overflow = err.code === 'HPE_HEADER_OVERFLOW';
    const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const why = overflow ? `request headers over ${this.o.limits.maxHeaderBytes} bytes` : timeout ? 'request headers not received in time' : `malformed request (${err.code ?? err.message})`;
    const status = overflow ? 431 : timeout ? 408 : 400;
    const text = overflow ? 'Request Header Fields Too Large' : timeout ? 'Request Timeout' : 'Bad Request';
    this.refuseRaw(socket, status, text, why, { method: '-', host: '', port: 0, sessionId: this.sessions.get(socket) });
  }

  private log(status: number, reason: string, t: Target, refusal?: EgressRefusal): void {
    this.o.log('warn', status === 403 ? 'egress denied' : 'egress refused', { ...fields(t), status, reason, ...(refusal?.address ? { address: refusal.address } : {}) });
  }

  private refuseHttp(res: http.ServerResponse, status: number, text: string, reason: string, t: Target, refusal?: EgressRefusal): void {
    this.log(status, reason, t, refusal);
    if (res.headersSent) return void res.destroy();
    const body = `Continuum egress proxy: ${reason}\n`;
    res.writeHead(status, text, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'proxy-status': proxyStatus(status, reason), connection: 'close' });
    res.end(body);
  }

  /** Answers on a socket the HTTP server no longer owns (CONNECT, upgrade, parse errors). */
  private refuseRaw(socket: net.Socket, status: number, text: string, reason: string, t: Target, refusal?: EgressRefusal): void {
    this.log(status, reason, t, refusal);
    if (!socket.writable) return void socket.destroy();
    const body = `Continuum egress proxy: ${reason}\n`;
    socket.setTimeout(LEAD_TIMEOUT_MS, () => socket.destroy());
    socket.resume(); // read (and drop) the rest, so the peer's FIN is seen and the socket freed
    socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
}

function statusText(r: EgressRefusal): string {
  return { 403: 'Forbidden by egress policy', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' }[r.status];
}

/**
 * The RFC 9209 Proxy-Status of an answer the proxy made itself: a client that sends plain
 * http:// through us (Chromium) sees it as the origin's response otherwise.
 */
function proxyStatus(status: number, reason: string): string {
  const error =
    status === 403 ? 'destination_ip_prohibited'
    : status === 504 ? 'connection_timeout'
    : status === 503 ? 'proxy_internal_error'
    : status !== 502 ? 'http_request_error'
    : /ECONNREFUSED/.test(reason) ? 'connection_refused'
    : /cannot resolve|has no address/.test(reason) ? 'dns_error'
    : 'destination_unavailable';
  return `${PROXY_STATUS_NAME}; error=${error}; details=${JSON.stringify(reason.replace(/[^\x20-\x7e]/g, '?'))}`;
}

function fields(t: Target): Record<string, unknown> {
  return { ...(t.sessionId ? { sessionId: t.sessionId } : {}), method: t.method, host: t.host, port: t.port };
}

/** The headers to pass on: hop-by-hop ones and those the Connection header names removed. */
function forwardable(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = String(headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean);
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.includes(k) && !named.includes(k)) out[k] = v;
  return out;
}
