// The one headless Chromium of the browser daemon: launched on first use, watched (its
// `disconnected` event for a crash, a CDP round trip on a timer for a hang), and launched
// again at the next use after it died. A browser that is gone never takes the daemon down.
import fs from 'node:fs';
import type { Browser, CDPSession } from 'playwright-core';
import type { Logger } from '../../logging/child-log.js';
import { ContinuumError } from '../../protocol/errors.js';
import { CHROMIUM_PACKAGE_HINT, chromiumInstalled } from './chromium-path.js';
import { withDeadline } from './deadline.js';

// Playwright adds --headless (headless: true) and --remote-debugging-pipe; its temporary
// profile (a fresh user-data-dir) lives in os.tmpdir(), which the daemon points under <home>/run.
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

export interface ChromiumOptions {
  executablePath: string;
  launchTimeoutMs: number;
  /** How often the browser must answer a CDP round trip, and how long it may take. */
  watchdogIntervalMs: number;
  watchdogTimeoutMs: number;
}

export class ChromiumHost {
  private browser: Browser | undefined;
  private pid: number | undefined;
  private launching: Promise<Browser> | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly lostHandlers: ((reason: string) => void)[] = [];
  private closed = false;
  /** Chromium processes started so far (the first, then one per restart). */
  launches = 0;

  constructor(private readonly opts: ChromiumOptions, private readonly log: Logger) {}

  /** Called once per browser that died or was killed; its contexts are gone with it. */
  onLost(handler: (reason: string) => void): void {
    this.lostHandlers.push(handler);
  }

  /** The running browser, launching it if there is none. */
  get(): Promise<Browser> {
    if (this.closed) return Promise.reject(new ContinuumError('EXECUTOR_UNAVAILABLE', 'the browser daemon is stopping; retry shortly', { retryable: true, retryAfterMs: 500 }));
    if (this.browser?.isConnected()) return Promise.resolve(this.browser);
    this.launching ??= this.launch().finally(() => (this.launching = undefined));
    return this.launching;
  }

  /** Kills a browser that stopped answering; the next `get()` launches another. */
  kill(reason: string): void {
    const browser = this.browser;
    if (!browser) return;
    this.log.warn('killing chromium', { chromiumPid: this.pid, reason });
    if (this.pid !== undefined) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    this.lost(browser, reason);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.watchdog);
    const browser = this.browser ?? (await this.launching?.catch(() => undefined));
    if (!browser) return;
    this.browser = undefined;
    await withDeadline(browser.close(), 3_000, () => new Error('close timed out')).catch(() => {
      if (this.pid !== undefined) process.kill(this.pid, 'SIGKILL');
    });
  }

  private async launch(): Promise<Browser> {
    const { executablePath } = this.opts;
    if (!chromiumInstalled(executablePath)) {
      throw new ContinuumError('EXECUTOR_UNAVAILABLE', `Chromium is not installed (${executablePath} is missing): install it with \`${CHROMIUM_PACKAGE_HINT}\`, then retry`, {
        retryable: false,
        reason: 'chromium-missing',
        install: CHROMIUM_PACKAGE_HINT,
        executablePath,
      });
    }
    // Loaded on first use: most trees never browse, and playwright-core takes a while to load.
    const { chromium } = await import('playwright-core');
    const before = new Set(chromiumChildren());
    let browser: Browser;
    try {
      browser = await chromium.launch({ executablePath, headless: true, args: ARGS, timeout: this.opts.launchTimeoutMs, handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false });
    } catch (err) {
      const why = (err as Error).message.split('\n')[0];
      this.log.error('chromium failed to start', { error: why, executablePath });
      throw new ContinuumError('EXECUTOR_UNAVAILABLE', `Chromium failed to start (${why}); retry shortly`, { retryable: true, retryAfterMs: 1_000, reason: 'chromium-launch-failed' }, { cause: err });
    }
    if (this.closed) {
      await browser.close().catch(() => undefined);
      throw new ContinuumError('EXECUTOR_UNAVAILABLE', 'the browser daemon is stopping; retry shortly', { retryable: true, retryAfterMs: 500 });
    }
    this.launches++;
    this.browser = browser;
    this.pid = chromiumChildren().find((p) => !before.has(p));
    browser.on('disconnected', () => this.lost(browser, 'chromium exited'));
    this.log.info('chromium started', { chromiumPid: this.pid, version: browser.version(), launches: this.launches });
    this.watch(browser);
    return browser;
  }

  private lost(browser: Browser, reason: string): void {
    if (this.browser !== browser) return;
    this.browser = undefined;
    clearTimeout(this.watchdog);
    if (!this.closed) this.log.warn('chromium is gone; it is launched again at the next browser call', { chromiumPid: this.pid, reason });
    this.pid = undefined;
    browser.close().catch(() => undefined);
    for (const h of this.lostHandlers) h(reason);
  }

  /** A hung browser (stopped, deadlocked) still has its pipe open: only a round trip tells. */
  private watch(browser: Browser): void {
    let cdp: CDPSession | undefined;
    const timeout = () => new Error(`no answer within ${this.opts.watchdogTimeoutMs} ms`);
    const tick = async () => {
      if (this.browser !== browser) return;
      try {
        cdp ??= await withDeadline(browser.newBrowserCDPSession(), this.opts.watchdogTimeoutMs, timeout);
        await withDeadline(cdp.send('Browser.getVersion'), this.opts.watchdogTimeoutMs, timeout);
      } catch (err) {
        if (this.browser === browser) this.kill(`unresponsive: ${(err as Error).message.split('\n')[0]}`);
        return;
      }
      if (this.browser === browser) schedule();
    };
    const schedule = () => {
      this.watchdog = setTimeout(() => void tick(), this.opts.watchdogIntervalMs);
      this.watchdog.unref();
    };
    schedule();
  }
}

/** This process's children that are Chromium (Playwright spawns it directly). */
function chromiumChildren(): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('--remote-debugging-pipe')) out.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return out;
}
