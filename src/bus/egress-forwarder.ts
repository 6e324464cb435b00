// The executor's end of the egress path: for each session, a TCP listener on 127.0.0.1 (the
// sandbox's own loopback once it has a network namespace) that pipes every connection to the
// egress proxy's Unix socket, after a lead line naming the session. A port per session is
// how the proxy learns whose connection it is without parsing anything here: the session's
// commands get that port in HTTP_PROXY / HTTPS_PROXY.
import net from 'node:net';
import { encodeEgressLead } from '../protocol/egress-lead.js';

/** Open listeners beyond this close the least recently used (its open connections live on). */
const MAX_FORWARDERS = 256;
const MAX_CONNECTIONS_PER_FORWARDER = 256;
const UNAVAILABLE_BODY = 'Continuum egress proxy unavailable (restarting?); try again shortly\n';

export class EgressForwarders {
  /** In least-recently-used order. */
  private readonly bySession = new Map<string, Promise<net.Server>>();

  /** `socketPath`: the proxy's socket as this process sees it (the sandbox may bind it anywhere). */
  constructor(private readonly socketPath: string) {}

  /** The proxy URL for a session's commands: its own port, opened on first use. */
  async proxyUrl(sessionId: string): Promise<string> {
    let server = this.bySession.get(sessionId);
    if (server) this.bySession.delete(sessionId);
    else server = this.listen(sessionId);
    this.bySession.set(sessionId, server);
    this.trim();
    try {
      const { port } = (await server).address() as net.AddressInfo;
      return `http://127.0.0.1:${port}`;
    } catch (err) {
      if (this.bySession.get(sessionId) === server) this.bySession.delete(sessionId);
      throw err;
    }
  }

  /** Stops listening for the session (connections already open live on). */
  async release(sessionId: string): Promise<void> {
    const server = this.bySession.get(sessionId);
    this.bySession.delete(sessionId);
    const s = await server?.catch(() => undefined);
    s?.close();
  }

  closeAll(): void {
    for (const id of [...this.bySession.keys()]) void this.release(id);
  }

  private trim(): void {
    for (const id of this.bySession.keys()) {
      if (this.bySession.size <= MAX_FORWARDERS) break;
      void this.release(id);
    }
  }

  private listen(sessionId: string): Promise<net.Server> {
    const lead = encodeEgressLead(sessionId);
    const server = net.createServer((client) => this.forward(client, lead));
    server.maxConnections = MAX_CONNECTIONS_PER_FORWARDER;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        server.on('error', () => undefined);
        resolve(server);
      });
    });
  }

  private forward(client: net.Socket, lead: Buffer): void {
    const upstream = net.connect(this.socketPath);
    let connected = false;
    upstream.once('connect', () => (connected = true));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => {
      // Every client speaks HTTP to a proxy first, so an HTTP answer is one it understands.
      if (!connected && client.writable) {
        client.end(`HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(UNAVAILABLE_BODY)}\r\nConnection: close\r\n\r\n${UNAVAILABLE_BODY}`);
      } else client.destroy();
    });
    client.once('close', () => upstream.destroy());
    // A clean end reaches the client through the pipe, flushed; a reset ends it at once.
    upstream.once('close', (hadError) => {
      if (connected && hadError) client.destroy();
    });
    upstream.write(lead);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
