// How the egress proxy reaches a target: the name is checked against the allowlist, resolved
// here (not by the sandbox), every resolved address is checked, and the checked address is
// dialled — never the name again, so a DNS answer can't change between check and connect.
import dns from 'node:dns/promises';
import net from 'node:net';
import { normaliseHost } from '../config/egress-rule.js';
import type { EgressPolicy } from './egress-rules.js';

/** Name → addresses. The system resolver by default (so /etc/hosts counts, as for any client). */
export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = async (host) => (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Why the proxy did not connect: `status` is what the client is answered. */
export class EgressRefusal extends Error {
  override readonly name = 'EgressRefusal';
  constructor(
    /** 403: the policy refuses; 502: resolution or connection failed; 503: over the cap; 504: too slow. */
    readonly status: 403 | 502 | 503 | 504,
    message: string,
    /** The resolved address the refusal is about, if any. */
    readonly address?: string,
  ) {
    super(message);
  }

  get denied(): boolean {
    return this.status === 403;
  }
}

export interface Dialled {
  socket: net.Socket;
  address: string;
}

export interface DialOptions {
  resolve: Resolver;
  /** For resolution and connection together. */
  timeoutMs: number;
}

export async function dialChecked(policy: EgressPolicy, host: string, port: number, opts: DialOptions): Promise<Dialled> {
  const byName = policy.allowsHost(host, port);
  if (!byName.allowed) throw new EgressRefusal(403, byName.reason);
  const name = normaliseHost(host);
  const deadline = Date.now() + opts.timeoutMs;
  const addresses = net.isIP(name) ? [name] : await resolveWithin(opts.resolve, name, opts.timeoutMs);
  if (addresses.length === 0) throw new EgressRefusal(502, `${name} has no address`);
  // Every address must pass: a name that resolves to a public and an internal address is
  // refused, rather than dialled at whichever comes first.
  for (const address of addresses) {
    const verdict = policy.allowsAddress(address, port);
    if (!verdict.allowed) throw new EgressRefusal(403, address === name ? verdict.reason : `${name} resolves to ${address}, refused: ${verdict.reason}`, address);
  }
  let last: Error | undefined;
  for (const address of addresses) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    try {
      return { socket: await connectTcp(address, port, left), address };
    } catch (err) {
      last = err as Error;
    }
  }
  if (!last || last instanceof ConnectTimeout) throw new EgressRefusal(504, `connecting to ${name}:${port} took over ${opts.timeoutMs} ms`);
  throw new EgressRefusal(502, `cannot connect to ${name}:${port}: ${(last as NodeJS.ErrnoException).code ?? last.message}`);
}

async function resolveWithin(resolve: Resolver, name: string, timeoutMs: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new EgressRefusal(504, `resolving ${name} took over ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([resolve(name), timeout]);
  } catch (err) {
    if (err instanceof EgressRefusal) throw err;
    throw new EgressRefusal(502, `cannot resolve ${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

class ConnectTimeout extends Error {}

function connectTcp(address: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ConnectTimeout());
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      // Until the caller wires its own handlers, a reset must not become an uncaught error.
      socket.on('error', () => undefined);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
