// The grammar of a network allowlist rule (config `sandbox.network.allow`): "host",
// "*.domain" (subdomains only) or "*", each optionally ":port". The policy that applies the
// rules lives in sandbox/egress-rules.ts.

export interface EgressRule {
  /** Lower-case host, `*.suffix`, or `*`. */
  host: string;
  port: number | undefined;
}

export function normaliseHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

export function parseEgressRule(text: string): EgressRule {
  const m = /^(\*|(?:\*\.)?[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/.exec(text.trim());
  if (!m) throw new TypeError(`invalid egress rule "${text}": use "host", "*.domain" or "*", each optionally with ":port"`);
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) throw new TypeError(`invalid egress rule "${text}": port ${port} is out of range`);
  return { host: normaliseHost(m[1]!), port };
}
