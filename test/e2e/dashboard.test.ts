// The dashboard as a person uses it, in real headless Chromium (Debian's, never a
// downloaded one) against the real tree: log in through the printed link, watch the
// process tree, kill an executor and watch it come back, use the console, follow the
// logs, reload. Screenshots of each page go to docs/screenshots/ (linked from the README).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { cli, freePort, startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const SHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/screenshots');
const VIEWPORT = { width: 1400, height: 900 };

const missing = !fs.existsSync(CHROMIUM);
if (missing && process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium (apt-get install chromium)`);
if (missing) process.stderr.write(`\n!!! SKIPPING the dashboard e2e suite: ${CHROMIUM} is missing (apt-get install chromium) !!!\n\n`);

let tree: Tree;
let base: string;
let loginLink: string;
const contexts: BrowserContext[] = [];
const dirs: string[] = [];

/** A fresh browser profile: its own user-data-dir, cookies and storage. */
async function browser(): Promise<{ context: BrowserContext; page: Page }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ct-chromium-'));
  dirs.push(dir);
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: VIEWPORT });
  contexts.push(context);
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page };
}

async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** A logged-in browser, the way a person gets one: by opening a login link. */
let main: { context: BrowserContext; page: Page };

describe('dashboard (headless Chromium)', { skip: missing, timeout: 240_000 }, () => {
  before(async () => {
    tree = await startTree();
    base = `http://127.0.0.1:${tree.port}`;
    const m = /Dashboard\s+(http:\/\/\S+\/login\?token=\S+)/.exec(tree.stdout);
    assert.ok(m, `continuum start prints a login link:\n${tree.stdout}`);
    loginLink = m[1]!;
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    await stopTree(tree);
  });

  test('without the cookie there is a login page and nothing else', async () => {
    const { page } = await browser();
    const res = await page.goto(`${base}/`);
    assert.equal(res?.status(), 401);
    await page.locator('[data-page="login"]').waitFor();
    assert.doesNotMatch(await page.content(), /Process tree|continuum-supervisor|<script/);
    await shot(page, 'login');
    // No asset, artifact or data endpoint answers either, and the feed refuses to open.
    for (const p of ['/assets/app.js', '/index.html', '/artifacts/x/y.png', '/metrics']) {
      const r = await page.request.get(`${base}${p}`);
      assert.equal(r.status(), 401, p);
      assert.doesNotMatch(await r.text(), /continuum-supervisor|sessionId/);
    }
    // (The login page's CSP lets it open no connection at all; a client that could is refused.)
    for (const p of ['/dashboard/feed', '/ws']) assert.equal(await upgradeStatus(p, { origin: base }), 401, p);
  });

  test('the login link sets an HttpOnly, SameSite=Strict cookie, drops the token from the URL, and works once', async () => {
    main = await browser();
    const { context, page } = main;
    await page.goto(loginLink);
    assert.equal(page.url(), `${base}/`, 'redirected to the dashboard without the token');
    const cookie = (await context.cookies(base)).find((c) => c.name === 'continuum_dashboard');
    assert.ok(cookie, 'the session cookie is set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(await page.evaluate('document.cookie'), '', 'scripts cannot read it');
    await page.locator('header.top [data-feed="open"]').waitFor();
    // The same link in another browser is refused: it was for one login.
    const other = await browser();
    const again = await other.page.goto(loginLink);
    assert.equal(again?.status(), 401);
    assert.match(await other.page.content(), /already been used/);
    assert.equal((await other.context.cookies(base)).length, 0);
  });

  test('Processes lists every process of the tree with its pid', async () => {
    const { page } = main;
    await page.goto(`${base}/#/processes`);
    const rows = await tree.ps();
    assert.ok(rows.length >= 9, JSON.stringify(rows.map((r) => r.id)));
    for (const row of rows) {
      const tr = page.locator(`tr.proc[data-id="${row.id}"]`);
      await waitFor(async () => (await tr.getAttribute('data-pid')) === String(row.pid), 15_000, `${row.id} shows pid ${row.pid}`);
      assert.equal(await tr.getAttribute('data-state'), 'running');
      assert.match(await tr.locator('td.name').innerText(), new RegExp(row.id.endsWith('.standby') ? 'standby' : row.name));
    }
    // Each environment's sandbox, as its executor reports it.
    for (const env of ['browser', 'server', 'remote', 'agent', 'persona']) {
      await page.locator(`.env-card[data-environment="${env}"] dl`).waitFor({ timeout: 15_000 });
    }
    assert.match(await page.locator('.env-card[data-environment="server"]').innerText(), /isolation\s+none/);
    await waitFor(async () => (await page.locator('tr.proc[data-id="websocket-daemon"] polyline.spark-line').count()) === 2 || undefined, 15_000, 'its CPU and RSS charts');
  });

  test('killing an executor shows it restarting, then running with a new pid and one more restart', async () => {
    const { page } = main;
    await page.goto(`${base}/#/processes`);
    const row = page.locator('tr.proc[data-id="remote-0"]');
    await waitFor(async () => (await row.getAttribute('data-state')) === 'running' || undefined, 10_000, 'remote-0 running');
    const pid = Number(await row.getAttribute('data-pid'));
    const restarts = Number(await row.getAttribute('data-restarts'));
    assert.ok(pid > 1);
    process.kill(pid, 'SIGKILL');
    // The restart can take a few ms: the page shows each state change the supervisor pushed.
    await page.locator(`ol.events li[data-id="remote-0"][data-state="restarting"][data-restarts="${restarts + 1}"]`).waitFor({ timeout: 15_000 });
    const back = page.locator(`ol.events li[data-id="remote-0"][data-state="running"][data-restarts="${restarts + 1}"]`);
    await back.waitFor({ timeout: 15_000 });
    const newPid = Number(await back.getAttribute('data-pid'));
    assert.ok(newPid > 1 && newPid !== pid, `a new pid (${newPid}, was ${pid})`);
    await waitFor(async () => (await row.getAttribute('data-pid')) === String(newPid) && (await row.getAttribute('data-state')) === 'running' || undefined, 15_000, 'the row shows the new pid');
    assert.equal(Number(await row.getAttribute('data-restarts')), restarts + 1);
    assert.equal((await tree.row('remote-0')).pid, newPid, 'the page agrees with `continuum ps`');
  });

  test('a crash-looping environment is marked failed and stands out, until `continuum restart` clears it', async () => {
    const { page } = main;
    await page.goto(`${base}/#/processes`);
    // More exits than restart.intensity (5) within the period.
    let pid = (await tree.row('persona-0')).pid;
    for (let i = 0; i < 6; i++) {
      process.kill(pid!, 'SIGKILL');
      if (i < 5) pid = (await tree.waitRunning('persona-0', pid, 15_000)).pid;
    }
    const row = page.locator('tr.proc[data-id="persona-0"]');
    await waitFor(async () => (await row.getAttribute('data-state')) === 'failed' || undefined, 15_000, 'persona-0 failed on the page');
    assert.match(await row.getAttribute('class') ?? '', /is-failed/);
    assert.match(await row.innerText(), /crash loop/);
    assert.match(await page.locator('.alert-error').innerText(), /persona/);
    assert.match(await page.locator('.env-card[data-environment="persona"]').getAttribute('class') ?? '', /is-failed/);
    await page.locator('nav a[data-view="processes"] .dot-failed').waitFor();
    await page.locator('tr.proc[data-id="persona-0"]').scrollIntoViewIfNeeded();
    await shot(page, 'processes-failed');
    const r = await cli(['restart', 'persona', '--home', tree.home]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => (await row.getAttribute('data-state')) === 'running' || undefined, 15_000, 'persona-0 running again');
    assert.equal(await page.locator('.alert-error').count(), 0);
  });

  test('the console runs a command; its log line appears in Logs; a reload resumes the same session', async () => {
    const { page } = main;
    await page.goto(`${base}/#/console`);
    const idLocator = page.locator('[data-session-id]');
    await waitFor(async () => (await idLocator.getAttribute('data-session-id')) || undefined, 15_000, 'a console session');
    const sessionId = (await idLocator.getAttribute('data-session-id'))!;
    const mark = `e2e-${Date.now()}`;
    await page.fill('.composer input[name="input"]', `mkdir -p work && cd work && export MARK=${mark} && echo "hello $MARK" && ls -a`);
    await page.press('.composer input[name="input"]', 'Enter');
    const done = page.locator('.entry[data-status="ok"]').last();
    await done.waitFor({ timeout: 20_000 });
    assert.match(await done.innerText(), new RegExp(`hello ${mark}`));
    // The shell's state persists in the session: cwd and the exported variable.
    await page.fill('.composer input[name="input"]', 'echo "$MARK in $(basename $PWD)"');
    await page.press('.composer input[name="input"]', 'Enter');
    await page.locator('.entry[data-status="ok"]').nth(1).waitFor({ timeout: 20_000 });
    assert.match(await page.locator('.entry[data-status="ok"]').nth(1).innerText(), new RegExp(`${mark} in work`));
    await page.selectOption('.composer select[name="method"]', 'state.set');
    await page.fill('.composer input[name="input"]', 'greeting');
    await page.fill('.composer input[name="input2"]', '{"to":"dashboard"}');
    await page.press('.composer input[name="input2"]', 'Enter');
    await page.locator('.entry[data-method="state.set"][data-status="ok"]').waitFor({ timeout: 20_000 });
    await shot(page, 'console');

    // The edge's log line for that command, live in the Logs view, filtered to the session.
    await page.goto(`${base}/#/logs?env=browser&session=${encodeURIComponent(sessionId)}`);
    await page.locator(`.logline[data-session="${sessionId}"][data-method="shell.exec"]`).first().waitFor({ timeout: 20_000 });
    await page.locator(`.logline[data-session="${sessionId}"][data-method="state.set"]`).first().waitFor({ timeout: 20_000 });
    // A new command's line arrives while the page is open.
    const ws = await consoleCommandFromAnotherTab(sessionId);
    await page.locator(`.logline[data-session="${sessionId}"][data-method="fs.list"]`).first().waitFor({ timeout: 20_000 });
    ws.close();
    await shot(page, 'logs');

    // Reload: the same session, with its history.
    await page.goto(`${base}/#/console`);
    await page.reload();
    await waitFor(async () => (await idLocator.getAttribute('data-session-id')) === sessionId || undefined, 15_000, 'the same session after a reload');
    assert.match(await page.locator('.transcript').innerText(), new RegExp(`hello ${mark}`));
    await page.fill('.composer input[name="input"]', 'echo "still $MARK"');
    await page.press('.composer input[name="input"]', 'Enter');
    await waitFor(async () => (await page.locator('.transcript').innerText()).includes(`still ${mark}`) || undefined, 20_000, 'the session kept its shell state');
    await page.locator('.entry[data-status="ok"]', { hasText: `still $MARK` }).waitFor({ timeout: 20_000 });

    // The executor dies: the console says so, and its next command runs in the same session.
    const victim = (await tree.row('browser-0')).pid!;
    process.kill(victim, 'SIGKILL');
    await page.fill('.composer input[name="input"]', 'echo "after the restart: $MARK"');
    await page.press('.composer input[name="input"]', 'Enter');
    await page.locator('.entry[data-status="ok"]', { hasText: 'after the restart' }).waitFor({ timeout: 30_000 });
    assert.match(await page.locator('.transcript').innerText(), new RegExp(`after the restart: ${mark}`));
    await page.locator('.note-line', { hasText: 'executor was replaced' }).waitFor({ timeout: 15_000 });
    assert.notEqual((await tree.waitRunning('browser-0', victim)).pid, victim);

    // Sessions: the session, its executor's pid, and its recent commands.
    await page.goto(`${base}/#/sessions`);
    const srow = page.locator(`tr[data-session="${sessionId}"]`);
    await srow.waitFor({ timeout: 15_000 });
    // Six commands ran in it: four shell.exec, a state.set, an fs.list (from the other tab).
    // The one after the kill may have needed more than one try: each try has a log line, and
    // counts as run if the edge forwarded it (not if it was refused while the executor was down).
    const tries = Number(await page.locator('.entry', { hasText: 'after the restart' }).getAttribute('data-attempts'));
    const sent = 5 + tries;
    await waitFor(async () => {
      const n = Number(await srow.locator('td.commands').innerText());
      return n >= 6 && n <= sent ? n : undefined;
    }, 15_000, `the session counts its commands (6 to ${sent})`);
    await srow.click();
    const detail = page.locator(`.detail[data-session="${sessionId}"]`);
    await waitFor(async () => (await detail.locator('tr[data-method]').count()) === sent || undefined, 15_000, `its ${sent} recent commands`).catch(async (err: Error) => {
      throw new Error(`${err.message}; the page shows:\n${await detail.innerText()}`);
    });
    assert.equal(await page.locator(`.detail[data-session="${sessionId}"] tr[data-method="shell.exec"][data-outcome="ok"]`).count(), 4);
    const browserPid = (await tree.row('browser-0')).pid;
    assert.match(await page.locator(`.detail[data-session="${sessionId}"]`).innerText(), new RegExp(`pid ${browserPid}`));
    await shot(page, 'sessions');
  });

  test('a burst of log lines: the page keeps a bounded buffer, renders only the rows in view, and stays responsive', async () => {
    const { page } = main;
    await page.goto(`${base}/#/logs?env=agent`);
    await page.locator('.logs-status [data-count]').waitFor();
    // 3 000 log.write commands: each is its own line plus the edge's command line.
    const token = tree.token('agent');
    const ws = new WebSocket(`ws://127.0.0.1:${tree.port}/ws`, { headers: { authorization: `Bearer ${token}` } });
    await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
    let answered = 0;
    ws.on('message', () => answered++);
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'session.connect', params: { environment: 'agent', sessionId: 'burst' } }));
    const N = 3_000;
    for (let sent = 0; sent < N; ) {
      // Within the edge's in-flight limit per connection.
      const batch = Math.min(48, N - sent);
      const target = answered + batch;
      for (let i = 0; i < batch; i++, sent++) ws.send(JSON.stringify({ jsonrpc: '2.0', id: sent + 1, method: 'log.write', params: { level: 'info', message: `burst line ${sent}` } }));
      await waitFor(() => answered >= target || undefined, 20_000, 'answers');
    }
    ws.close();
    const count = page.locator('.logs-status [data-count]');
    await waitFor(async () => Number(await count.getAttribute('data-count')) === 5_000 || undefined, 30_000, 'the buffer to fill to its bound');
    await page.locator('.logline', { hasText: `burst line ${N - 1}` }).waitFor({ timeout: 20_000 });
    const rows = await page.locator('.vlist .vrow').count();
    assert.ok(rows < 120, `only the rows in view are in the DOM (${rows})`);
    const t0 = Date.now();
    await page.evaluate('1');
    assert.ok(Date.now() - t0 < 2_000, 'the page answers at once');

    // The processes page after all this, for the README: the restart is still listed.
    await page.goto(`${base}/#/processes`);
    await page.locator('ol.events li[data-id="remote-0"][data-state="restarting"]').waitFor();
    await shot(page, 'processes');
  });

  test('a WebSocket from a foreign origin is refused, with or without the cookie', async () => {
    // A page served from another origin on loopback tries both endpoints from a real browser.
    const port = await freePort();
    const foreign = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title>'));
    await new Promise<void>((r) => foreign.listen(port, '127.0.0.1', () => r()));
    try {
      const { page } = main;
      await page.goto(`http://localhost:${port}/`);
      for (const p of ['/ws', '/dashboard/feed']) {
        const outcome = await page.evaluate(
          (url) =>
            new Promise<string>((resolve) => {
              const ws = new WebSocket(url);
              ws.onopen = () => resolve('open');
              ws.onclose = () => resolve('refused');
            }),
          `ws://127.0.0.1:${tree.port}${p}`,
        );
        assert.equal(outcome, 'refused', p);
      }
    } finally {
      foreign.close();
    }
    // And at the HTTP level: 403, even carrying a valid dashboard cookie.
    const cookie = (await main.context.cookies(base)).find((c) => c.name === 'continuum_dashboard')!;
    for (const p of ['/ws', '/dashboard/feed']) {
      assert.equal(await upgradeStatus(p, { origin: 'http://evil.example', cookie: `${cookie.name}=${cookie.value}` }), 403, p);
      assert.equal(await upgradeStatus(p, { origin: base, cookie: `${cookie.name}=${cookie.value}` }), 101, `${p} from the dashboard's own origin`);
    }
  });
});

/** The HTTP status a WebSocket upgrade gets (101 when it opens). */
function upgradeStatus(p: string, headers: Record<string, string>): Promise<number> {
  return new Promise<number>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${tree.port}${p}`, { headers });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('error', () => undefined);
  });
}

/** Runs fs.list in the console's session over the cookie, as a second tab would. */
async function consoleCommandFromAnotherTab(sessionId: string): Promise<WebSocket> {
  const cookie = (await main.context.cookies(base)).find((c) => c.name === 'continuum_dashboard')!;
  const ws = new WebSocket(`ws://127.0.0.1:${tree.port}/ws`, { headers: { origin: base, cookie: `${cookie.name}=${cookie.value}` } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  const answers: Record<string, unknown>[] = [];
  ws.on('message', (d: Buffer) => answers.push(JSON.parse(d.toString()) as Record<string, unknown>));
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'session.join', params: { sessionId } }));
  await waitFor(() => answers.find((a) => a.id === 1), 10_000, 'join');
  assert.ok(!('error' in answers.find((a) => a.id === 1)!), JSON.stringify(answers));
  ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'fs.list', params: {} }));
  await waitFor(() => answers.find((a) => a.id === 2), 10_000, 'fs.list');
  return ws;
}
