// May a page of this environment reach this URL? The environment's network allowlist decides,
// for the URL the caller navigates to and for every request the page then makes (checked in
// the context's routing, before Chromium connects). Names are resolved here so that a name
// that resolves to an internal address is refused like the address itself.
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { ContinuumError } from '../../protocol/errors.js';
import type { EgressDecision, EgressPolicy } from '../../sandbox/egress-rules.js';

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443, 'ws:': 80, 'wss:': 443 };

/** A URL the caller gave: http(s) only; anything else is -32602. */
export function parseNavigationUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ContinuumError('INVALID_PARAMS', `invalid URL "${raw.slice(0, 200)}": give an absolute http:// or https:// URL`, { issues: [{ path: ['url'], message: 'not a URL' }] });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ContinuumError('INVALID_PARAMS', `${url.protocol} URLs can't be opened: only http:// and https:// are allowed`, { issues: [{ path: ['url'], message: `scheme ${url.protocol} is not allowed` }] });
  }
  return url;
}

/** Checks an http(s) or ws(s) URL against the policy, resolving its host name. */
export async function checkUrl(url: URL, policy: EgressPolicy): Promise<EgressDecision> {
  const port = url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol];
  if (port === undefined) return { allowed: false, reason: `${url.protocol} requests are not allowed` };
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const byName = policy.allowsHost(host, port);
  if (!byName.allowed || policy.mode === 'host') return byName;
  if (net.isIP(host)) return policy.allowsAddress(host, port);
  let addresses: { address: string }[];
  try {
    addresses = await lookup(host, { all: true });
  } catch {
    // Unresolvable: Chromium can't connect either, and says so (ERR_NAME_NOT_RESOLVED).
    return { allowed: true };
  }
  for (const { address } of addresses) {
    const d = policy.allowsAddress(address, port);
    if (!d.allowed) return { allowed: false, reason: `${host} resolves to a refused address (${d.reason})` };
  }
  return { allowed: true };
}

export function forbidden(url: URL | string, reason: string): ContinuumError {
  const shown = typeof url === 'string' ? url : url.href;
  return new ContinuumError('FORBIDDEN', `the environment's network policy does not allow ${shown.slice(0, 300)}: ${reason}`, { reason, url: shown.slice(0, 2048) });
}
