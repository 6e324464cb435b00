// The browser.* commands. Each runs under a deadline: Playwright's own timeout for waits
// (the page answers, the element never came: -32004, page kept), and a hard one around the
// whole step for a page that stopped answering (-32004, and the page is replaced).
import fs from 'node:fs';
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { ContinuumError } from '../../protocol/errors.js';
import type { ParamsOf, ResultOf } from '../../protocol/method.js';
import * as m from '../../protocol/methods/browser.js';
import type { ServiceCall, ServiceHandler } from '../service-host.js';
import { PROXY_STATUS_NAME } from '../../sandbox/egress-proxy.js';
import { withDeadline } from './deadline.js';
import type { SessionBrowser, SessionContexts } from './session-contexts.js';
import { checkUrl, forbidden, parseNavigationUrl } from './url-policy.js';

/** Extra time the hard deadline gives Playwright to report its own timeout first. */
const HARD_DEADLINE_GRACE_MS = 2_000;

export function browserHandlers(contexts: SessionContexts, artifactsDir: string): Map<string, ServiceHandler> {
  let shots = 0;

  /** Runs one step on the session's page within `timeoutMs`, mapping what fails to a protocol error. */
  function step<T>(call: ServiceCall, method: string, timeoutMs: number | undefined, work: (page: Page, s: SessionBrowser, timeout: number) => Promise<T>, hardDeadline = true): Promise<T> {
    const timeout = timeoutMs ?? m.BROWSER_DEFAULT_TIMEOUT_MS;
    return contexts.run(call, async (s) => {
      const page = await contexts.page(s);
      const hardMs = hardDeadline ? timeout + HARD_DEADLINE_GRACE_MS : timeout;
      let hung = false;
      try {
        return await withDeadline(work(page, s, timeout), hardMs, () => {
          hung = true;
          return new ContinuumError('TIMEOUT', `${method} did not finish within ${timeout} ms; the page was replaced by a blank one (the session's cookies and storage are kept)`, { retryable: false, timeoutMs: timeout, pageReset: true });
        });
      } catch (err) {
        if (hung) await contexts.replacePage(s);
        throw toProtocolError(err, method, timeout, s);
      }
    });
  }

  /** The first element matching `selector`; a selector Playwright can't parse is -32602 at once. */
  async function locate(page: Page, selector: string): Promise<Locator> {
    const locator = page.locator(selector).first();
    try {
      await locator.count();
    } catch (err) {
      if (!page.context().browser()?.isConnected() || page.isClosed()) throw err;
      throw new ContinuumError('INVALID_PARAMS', `invalid selector "${selector.slice(0, 200)}": ${firstLine(err)}`, { issues: [{ path: ['selector'], message: firstLine(err) }] });
    }
    return locator;
  }

  const navigate = (p: ParamsOf<typeof m.browserNavigate>, call: ServiceCall): Promise<ResultOf<typeof m.browserNavigate>> => {
    const url = parseNavigationUrl(p.url);
    return step(call, 'browser.navigate', p.timeoutMs, async (page, s, timeout) => {
      const decision = await checkUrl(url, s.policy);
      if (!decision.allowed) throw forbidden(url, decision.reason);
      const response = await page.goto(url.href, { timeout, waitUntil: p.waitUntil ?? 'load' });
      // Redirects are followed by Chromium without passing the routing; the egress proxy
      // checks them (and answers plain http:// itself when it refuses), and so does this.
      const landed = new URL(page.url());
      const proxyError = s.proxied && response ? egressProxyError(await response.allHeaders()) : undefined;
      if (proxyError) {
        await page.goto('about:blank').catch(() => undefined);
        if (proxyError.error === 'destination_ip_prohibited') throw forbidden(landed, landed.href === url.href ? proxyError.details : `redirected there from ${url.href.slice(0, 300)}: ${proxyError.details}`);
        const reason = PROXY_NET_ERRORS[proxyError.error] ?? 'net::ERR_CONNECTION_FAILED';
        throw new ContinuumError('INVALID_PARAMS', `browser.navigate could not load the page: ${reason} (egress proxy: ${proxyError.details})`, { reason, issues: [{ path: ['url'], message: reason }] });
      }
      if (landed.protocol === 'http:' || landed.protocol === 'https:') {
        const after = await checkUrl(landed, s.policy);
        if (!after.allowed) {
          await page.goto('about:blank').catch(() => undefined);
          throw forbidden(landed, `redirected there from ${url.href.slice(0, 300)}: ${after.reason}`);
        }
      }
      return { url: page.url(), status: response?.status() ?? null, title: await page.title() };
    });
  };

  const screenshot = (p: ParamsOf<typeof m.browserScreenshot>, call: ServiceCall): Promise<ResultOf<typeof m.browserScreenshot>> =>
    step(call, 'browser.screenshot', p?.timeoutMs, async (page, s, timeout) => {
      const png = p?.selector
        ? await (await locate(page, p.selector)).screenshot({ timeout, type: 'png' })
        : await page.screenshot({ timeout, type: 'png', fullPage: p?.fullPage ?? false });
      const dir = path.join(artifactsDir, s.sessionId);
      // Session ids are checked by the edge; this keeps a screenshot inside artifacts/ whatever happens.
      if (path.dirname(dir) !== artifactsDir) throw new ContinuumError('INVALID_PARAMS', `invalid session id "${s.sessionId}"`);
      await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
      const name = `screenshot-${new Date().toISOString().replace(/[:.]/g, '-')}-${++shots}.png`;
      const file = path.join(dir, name);
      await fs.promises.writeFile(file, png, { mode: 0o600 });
      const { width, height } = pngSize(png);
      return { path: file, name, bytes: png.length, width, height };
    });

  const evaluate = (p: ParamsOf<typeof m.browserEvaluate>, call: ServiceCall): Promise<ResultOf<typeof m.browserEvaluate>> =>
    step(call, 'browser.evaluate', p.timeoutMs, async (page, s) => {
      let value: unknown;
      try {
        value = await page.evaluate(p.expression);
      } catch (err) {
        if (!page.context().browser()?.isConnected() || page.isClosed()) throw err;
        throw new ContinuumError('INVALID_PARAMS', `the expression failed in the page: ${firstLine(err).replace(/^page\.evaluate: /, '')}`, { reason: 'exception', issues: [{ path: ['expression'], message: firstLine(err) }] });
      }
      const bytes = Buffer.byteLength(JSON.stringify(value ?? null));
      if (bytes > s.outputMaxBytes) throw new ContinuumError('PAYLOAD_TOO_LARGE', `the value is ${bytes} bytes as JSON, over this environment's output cap of ${s.outputMaxBytes}; return less`, { bytes, limit: s.outputMaxBytes });
      return { value: value ?? null };
    }, false);

  const click = (p: ParamsOf<typeof m.browserClick>, call: ServiceCall): Promise<ResultOf<typeof m.browserClick>> =>
    step(call, 'browser.click', p.timeoutMs, async (page, _s, timeout) => {
      await (await locate(page, p.selector)).click({ timeout, button: p.button ?? 'left' });
      return { ok: true as const };
    });

  const type = (p: ParamsOf<typeof m.browserType>, call: ServiceCall): Promise<ResultOf<typeof m.browserType>> =>
    step(call, 'browser.type', p.timeoutMs, async (page, _s, timeout) => {
      const target = await locate(page, p.selector);
      if (p.clear) await target.fill('', { timeout });
      await target.pressSequentially(p.text, { timeout });
      return { ok: true as const };
    });

  const text = (p: ParamsOf<typeof m.browserText>, call: ServiceCall): Promise<ResultOf<typeof m.browserText>> =>
    step(call, 'browser.text', p?.timeoutMs, async (page, s, timeout) => {
      const t = await (await locate(page, p?.selector ?? 'body')).innerText({ timeout });
      if (Buffer.byteLength(t) > s.outputMaxBytes) throw new ContinuumError('PAYLOAD_TOO_LARGE', `the text is over this environment's output cap of ${s.outputMaxBytes} bytes; select a smaller element`, { limit: s.outputMaxBytes });
      return { text: t };
    });

  return new Map<string, ServiceHandler>([
    [m.browserNavigate.name, navigate as ServiceHandler],
    [m.browserScreenshot.name, screenshot as ServiceHandler],
    [m.browserEvaluate.name, evaluate as ServiceHandler],
    [m.browserClick.name, click as ServiceHandler],
    [m.browserType.name, type as ServiceHandler],
    [m.browserText.name, text as ServiceHandler],
  ]);
}

/** The egress proxy's failures (RFC 9209 error types), as the net::ERR_* Chromium would give going direct. */
const PROXY_NET_ERRORS: Record<string, string> = {
  connection_refused: 'net::ERR_CONNECTION_REFUSED',
  dns_error: 'net::ERR_NAME_NOT_RESOLVED',
  connection_timeout: 'net::ERR_CONNECTION_TIMED_OUT',
};

/** The error of a response the egress proxy made itself, from its Proxy-Status header. */
function egressProxyError(headers: Record<string, string>): { error: string; details: string } | undefined {
  const status = headers['proxy-status'];
  if (!status?.startsWith(`${PROXY_STATUS_NAME};`)) return undefined;
  const error = /;\s*error=([a-z_]+)/.exec(status)?.[1];
  if (!error) return undefined;
  const details = /;\s*details="((?:[^"\\]|\\.)*)"/.exec(status)?.[1]?.replace(/\\(.)/g, '$1') ?? error;
  return { error, details };
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 500);
}

/** Playwright's and Chromium's failures, as the protocol's errors. */
function toProtocolError(err: unknown, method: string, timeoutMs: number, s: SessionBrowser): ContinuumError {
  if (err instanceof ContinuumError) return err;
  const message = firstLine(err);
  // Playwright's TimeoutError: the page answered, but what we waited for never happened.
  if (err instanceof Error && err.name === 'TimeoutError') {
    return new ContinuumError('TIMEOUT', `${method} timed out after ${timeoutMs} ms: ${message}`, { retryable: false, timeoutMs });
  }
  // Chromium's network errors arrive only as text (net::ERR_*).
  const net = /net::ERR_[A-Z_]+/.exec(message)?.[0];
  if (net === 'net::ERR_BLOCKED_BY_CLIENT' && s.refused.length > 0) return forbidden(s.refused[0]!.url, s.refused[0]!.reason);
  if (net) return new ContinuumError('INVALID_PARAMS', `${method} could not load the page: ${net}`, { reason: net, issues: [{ path: ['url'], message: net }] });
  if (!s.context.browser()?.isConnected()) {
    return new ContinuumError('EXECUTOR_UNAVAILABLE', 'Chromium exited during the call; it is being restarted, retry shortly', { retryable: true, retryAfterMs: 500, reason: 'chromium-exited' }, { cause: err });
  }
  return new ContinuumError('INTERNAL', `${method} failed: ${message}`, undefined, { cause: err });
}

/** Width and height from a PNG's IHDR chunk. */
function pngSize(png: Buffer): { width: number; height: number } {
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}
