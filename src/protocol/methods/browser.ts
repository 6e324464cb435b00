// browser.*: headless Chromium driven by the browser daemon, one isolated browser context
// (cookies, storage, cache) per session. Every call has a deadline: `timeoutMs`, else 15 s.
import { z } from 'zod';
import { defineMethod } from '../method.js';

export const BROWSER_DEFAULT_TIMEOUT_MS = 15_000;
export const BROWSER_MAX_TIMEOUT_MS = 120_000;

const timeoutMs = z.number().int().positive().max(BROWSER_MAX_TIMEOUT_MS).optional();
const selector = z.string().min(1).max(4096).describe('a Playwright selector (CSS by default; also text=, xpath=, role=); the first match is used');
const ok = z.object({ ok: z.literal(true) });

export const browserNavigate = defineMethod({
  name: 'browser.navigate',
  description: "Open an http(s) URL in the session's page. The URL and every request the page makes must be allowed by the environment's network policy.",
  host: 'browser-daemon',
  params: z.object({
    url: z.string().min(1).max(8192),
    waitUntil: z.enum(['load', 'domcontentloaded', 'networkidle', 'commit']).optional(),
    timeoutMs,
  }).strict(),
  result: z.object({ url: z.string(), status: z.number().int().nullable(), title: z.string() }),
});

export const browserScreenshot = defineMethod({
  name: 'browser.screenshot',
  description: "PNG of the session's page (or of one element), saved as a session artifact under <home>/artifacts/<sessionId>/.",
  host: 'browser-daemon',
  params: z.object({ fullPage: z.boolean().optional(), selector: selector.optional(), timeoutMs }).strict().optional(),
  result: z.object({ path: z.string(), name: z.string(), bytes: z.number().int(), width: z.number().int(), height: z.number().int() }),
});

export const browserEvaluate = defineMethod({
  name: 'browser.evaluate',
  description: "Evaluate a JavaScript expression in the session's page (a promise is awaited); its JSON-serialisable value is returned.",
  host: 'browser-daemon',
  params: z.object({ expression: z.string().min(1).max(1024 * 1024), timeoutMs }).strict(),
  result: z.object({ value: z.unknown() }),
});

export const browserClick = defineMethod({
  name: 'browser.click',
  description: 'Click the first element matching a selector, waiting for it to be visible and enabled.',
  host: 'browser-daemon',
  params: z.object({ selector, button: z.enum(['left', 'right', 'middle']).optional(), timeoutMs }).strict(),
  result: ok,
});

export const browserType = defineMethod({
  name: 'browser.type',
  description: 'Focus the first element matching a selector and type text into it key by key (clear: true empties it first).',
  host: 'browser-daemon',
  params: z.object({ selector, text: z.string().max(64 * 1024), clear: z.boolean().optional(), timeoutMs }).strict(),
  result: ok,
});

export const browserText = defineMethod({
  name: 'browser.text',
  description: "The rendered text (innerText) of the first element matching a selector, or of the whole page's body.",
  host: 'browser-daemon',
  params: z.object({ selector: selector.optional(), timeoutMs }).strict().optional(),
  result: z.object({ text: z.string() }),
});

export const browserMethods = [browserNavigate, browserScreenshot, browserEvaluate, browserClick, browserType, browserText] as const;
