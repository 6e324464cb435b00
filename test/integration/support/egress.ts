// What the egress-*.test.ts files share: the loopback servers a test allowlists (or not),
// raw access to the proxy's Unix socket, and a check that the tools the tests drive exist.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';

export interface TargetServer {
  port: number;
  /** Paths requested, in order (origin-form, as a server sees a proxied request). */
  hits: { url: string; headers: http.IncomingHttpHeaders }[];
  close(): void;
}

/** An HTTP server on host loopback answering `hello <path>`. */
export async function targetServer(): Promise<TargetServer> {
  const hits: TargetServer['hits'] = [];
  const server = http.createServer((req, res) => {
    hits.push({ url: req.url ?? '', headers: req.headers });
    res.end(`hello ${req.url}\n`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = () => {
    server.closeAllConnections();
    server.close();
  };
  return { port: (server.address() as net.AddressInfo).port, hits, close };
}

/**
 * An HTTPS server on host loopback with a fresh self-signed certificate for 127.0.0.1
 * (written to `dir/cert.pem`, for clients to trust).
 */
export async function tlsTargetServer(dir: string): Promise<TargetServer & { certFile: string }> {
  const key = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', certFile], { stdio: 'ignore' });
  const hits: TargetServer['hits'] = [];
  const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(certFile) }, (req, res) => {
    hits.push({ url: req.url ?? '', headers: req.headers });
    res.end(`secure hello ${req.url}\n`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = () => {
    server.closeAllConnections();
    server.close();
  };
  return { port: (server.address() as net.AddressInfo).port, hits, close, certFile };
}

/** Sends raw bytes on the proxy's socket; resolves with what came back once it closes. */
export function rawExchange(socketPath: string, bytes: Buffer | string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got ${JSON.stringify(out.slice(0, 200))}`));
    }, timeoutMs);
    s.on('data', (c: Buffer) => (out += c.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.write(bytes);
  });
}

/** Opens a CONNECT tunnel on the proxy's socket; resolves with the socket and the status line. */
export function openTunnel(socketPath: string, target: string): Promise<{ socket: net.Socket; status: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let head = '';
    s.on('error', reject);
    const onData = (c: Buffer) => {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      resolve({ socket: s, status: head.slice(0, head.indexOf('\r\n')) });
    };
    s.on('data', onData);
    s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

/**
 * The tests drive curl (and node) from shell.exec. Under CI a missing tool fails the suite;
 * elsewhere the suite is skipped, and says so loudly.
 */
export function missingTools(tools: string[]): string | undefined {
  const missing = tools.filter((t) => {
    try {
      execFileSync('/bin/sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return undefined;
  const why = `egress tests need ${missing.join(', ')} on PATH`;
  if (process.env.CI === 'true') throw new Error(`${why} (CI=true: failing rather than skipping)`);
  process.stderr.write(`\n*** SKIPPING the egress suite: ${why} ***\n\n`);
  return why;
}
