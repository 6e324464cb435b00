// Who may see the dashboard: a browser that opened a one-time login link gets a signed,
// HttpOnly, SameSite=Strict session cookie; without it there is only the login page.
// The cookie is stateless (HMAC with a key made by the supervisor for this run), so it
// survives an edge restart and dies with the tree.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';

export const COOKIE_NAME = 'continuum_dashboard';
const COOKIE_TTL_S = 12 * 3600;

/** Headers of every dashboard answer: nothing cached, framed, sniffed or leaked by referrer. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
};

export class DashboardAuth {
  private readonly key: Buffer;

  constructor(key: string | undefined) {
    // Without a key from the supervisor (never in practice) no cookie can be valid.
    this.key = key ? Buffer.from(key, 'hex') : randomBytes(32);
  }

  private mac(body: string): Buffer {
    return createHmac('sha256', this.key).update(body).digest();
  }

  /** A Set-Cookie value for a new dashboard session. */
  issue(now = Date.now()): string {
    const body = `${Math.floor(now / 1000) + COOKIE_TTL_S}.${randomBytes(12).toString('base64url')}`;
    const value = `${body}.${this.mac(body).toString('base64url')}`;
    return `${COOKIE_NAME}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${COOKIE_TTL_S}`;
  }

  /** A Set-Cookie value that removes the cookie. */
  static clear(): string {
    return `${COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
  }

  /** Whether the request carries a valid, unexpired dashboard cookie. */
  verify(req: http.IncomingMessage, now = Date.now()): boolean {
    const value = cookieValue(req.headers.cookie, COOKIE_NAME);
    if (!value) return false;
    const dot = value.lastIndexOf('.');
    if (dot < 0) return false;
    const body = value.slice(0, dot);
    const given = Buffer.from(value.slice(dot + 1), 'base64url');
    const expected = this.mac(body);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
    return Number(body.split('.')[0]) * 1000 > now;
  }
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The only page a browser without the cookie gets. No script, no data. */
export function loginPage(problem?: string): string {
  const note = problem ? `<p class="problem">${problem}</p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Continuum · log in</title>
<style>
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1d2330;display:grid;place-items:center;min-height:100vh}
main{background:#fff;border:1px solid #dde1e7;border-radius:10px;padding:32px 36px;max-width:460px;box-shadow:0 2px 10px rgba(20,30,50,.06)}
h1{font-size:20px;margin:0 0 12px}code{background:#eef1f5;padding:2px 6px;border-radius:4px;font-size:13px}
.problem{color:#a32020;background:#fdeeee;border-radius:6px;padding:8px 12px}
</style></head>
<body><main data-page="login">
<h1>Continuum dashboard</h1>
${note}
<p>Open the one-time login link that <code>continuum start</code> printed.</p>
<p>To get a new link, run <code>continuum dashboard</code> on this machine.</p>
</main></body></html>
`;
}
