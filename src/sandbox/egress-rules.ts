// An environment's network allowlist as a policy: which host:port a sandboxed process may
// reach (through the egress proxy) and which resolved addresses may be dialled. Pure logic,
// shared by the egress proxy and the browser daemon's navigation checks.
//
// Rules: "host", "*.domain" (subdomains only, not the domain itself), "*" (any public host),
// each optionally ":port" (else any port). Matching is case-insensitive; a trailing dot is
// ignored. Internal addresses (loopback, private, link-local, CGNAT, ULA, multicast,
// unspecified) are refused after resolution unless a rule names that address literally —
// so a name that resolves to 127.0.0.1 can't reach the host, whatever rule allowed the name.
import net from 'node:net';
import { normaliseHost, parseEgressRule, type EgressRule } from '../config/egress-rule.js';
import type { SandboxProfile } from '../config/schema.js';

export { parseEgressRule, type EgressRule };

export type EgressDecision = { allowed: true } | { allowed: false; reason: string };

const internal = new net.BlockList();
for (const [net4, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) internal.addSubnet(net4, prefix, 'ipv4');
for (const [net6, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) internal.addSubnet(net6, prefix, 'ipv6');

/** Loopback, private, link-local, shared, multicast or unspecified (IPv4-mapped IPv6 included). */
export function isInternalAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 0) throw new TypeError(`not an IP address: ${address}`);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return internal.check(mapped[1]!, 'ipv4');
  return internal.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export class EgressPolicy {
  private constructor(readonly mode: 'none' | 'host' | 'allow', readonly rules: readonly EgressRule[]) {}

  static of(network: SandboxProfile['network']): EgressPolicy {
    if (network === 'none' || network === 'host') return new EgressPolicy(network, []);
    return new EgressPolicy('allow', network.allow.map(parseEgressRule));
  }

  /** May a connection to this host name (or IP literal) and port be attempted at all? */
  allowsHost(host: string, port: number): EgressDecision {
    if (this.mode === 'host') return { allowed: true };
    if (this.mode === 'none') return { allowed: false, reason: 'this environment has no network access' };
    const h = normaliseHost(host);
    const hit = this.rules.some((r) => portMatches(r, port) && hostMatches(r.host, h));
    return hit ? { allowed: true } : { allowed: false, reason: `${h}:${port} is not in this environment's network allowlist` };
  }

  /** May this resolved address be dialled for a host that `allowsHost` accepted? */
  allowsAddress(address: string, port: number): EgressDecision {
    if (this.mode === 'host') return { allowed: true };
    if (this.mode === 'none') return { allowed: false, reason: 'this environment has no network access' };
    if (!isInternalAddress(address)) return { allowed: true };
    const a = normaliseHost(address);
    const named = this.rules.some((r) => r.host === a && portMatches(r, port));
    return named ? { allowed: true } : { allowed: false, reason: `${address} is an internal address; only a rule naming it literally allows it` };
  }
}

function portMatches(rule: EgressRule, port: number): boolean {
  return rule.port === undefined || rule.port === port;
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return pattern === host;
}
