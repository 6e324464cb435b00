// The browser daemon end to end: real headless Chromium driven through the edge by SDK
// clients, visiting pages a loopback server of the test serves, under each environment's
// network policy, with one isolated context per session.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';
import { describeWithChromium, pngInfo, startElsewhere, startSite, type Site } from './support/browser.js';
import { rpcError, sessionClients } from './support/sessions.js';

let tree: Tree;
let site: Site;
let elsewhere: Awaited<ReturnType<typeof startElsewhere>>;
/** Allowed by the policy, but nothing listens there. */
let closedPort: number;
const { client, closeAll } = sessionClients(() => tree);
const home = () => `http://127.0.0.1:${site.port}/`;

describeWithChromium('browser daemon: commands, isolation and policy', () => {
  before(async () => {
    elsewhere = await startElsewhere();
    site = await startSite(() => elsewhere.port);
    closedPort = await freePort();
    const allow = { allow: [`127.0.0.1:${site.port}`, `127.0.0.1:${closedPort}`] };
    tree = await startTree({
      config: {
        environments: [
          { name: 'agent', sandbox: { network: allow } },
          // Short-lived sessions, to see a context closed when its session expires.
          { name: 'persona', sessionIdleMs: 2_000, sandbox: { network: allow } },
        ],
      },
    });
  });
  after(async () => {
    await closeAll();
    await stopTree(tree);
    await site?.close();
    await elsewhere?.close();
  });

  test('is a supervised process of the tree, with its title', async () => {
    const row = (await tree.ps()).find((r) => r.name === 'continuum-browser-daemon');
    assert.ok(row, 'ps lists continuum-browser-daemon');
    assert.equal(row.state, 'running');
    assert.match(fs.readFileSync(`/proc/${row.pid}/cmdline`, 'utf8'), /^continuum-browser-daemon/);
  });

  test('navigates to a loopback page and reads its text', async () => {
    const c = await client('agent');
    const nav = await c.browser.navigate(home());
    assert.deepEqual(nav, { url: home(), status: 200, title: 'Home' });
    assert.equal(await c.browser.text('#title'), 'Hello from the test site');
    assert.match(await c.browser.text(), /Hello from the test site[\s\S]*nobody yet/);
  });

  test('a screenshot is a real PNG saved under artifacts/<sessionId>/', async () => {
    const c = await client('agent');
    await c.browser.navigate(home());
    const shot = await c.browser.screenshot();
    const dir = path.join(tree.home, 'artifacts', c.session.sessionId);
    assert.equal(path.dirname(shot.path), dir);
    assert.equal(path.basename(shot.path), shot.name);
    const file = fs.readFileSync(shot.path);
    assert.equal(file.length, shot.bytes);
    const info = pngInfo(file);
    assert.ok(info.png, 'PNG signature and IHDR');
    assert.deepEqual({ width: info.width, height: info.height }, { width: 1280, height: 800 });
    assert.deepEqual({ width: shot.width, height: shot.height }, { width: 1280, height: 800 });
    // A gradient, text and coloured boxes: far more than a blank page's few hundred bytes.
    assert.ok(shot.bytes > 10_000, `screenshot of ${shot.bytes} bytes`);
    const element = await c.browser.screenshot({ selector: '#title' });
    assert.ok(element.width < 1280 && element.height < 200, `element shot ${element.width}x${element.height}`);
    assert.deepEqual(fs.readdirSync(dir).sort(), [shot.name, element.name].sort());
  });

  test('evaluates expressions, awaiting promises; an exception is -32602', async () => {
    const c = await client('agent');
    await c.browser.navigate(home());
    assert.equal(await c.browser.evaluate('1 + 2'), 3);
    assert.equal(await c.browser.evaluate('document.title'), 'Home');
    assert.deepEqual(await c.browser.evaluate('Promise.resolve({ a: [1, "two", null] })'), { a: [1, 'two', null] });
    const thrown = await rpcError(c.browser.evaluate('(() => { throw new Error("boom") })()'));
    assert.equal(thrown.rpcCode, -32602);
    assert.match(thrown.message, /boom/);
  });

  test("typing and clicking drive the page's own scripts", async () => {
    const c = await client('agent');
    await c.browser.navigate(home());
    await c.browser.type('#name', 'Ada');
    assert.equal(await c.browser.text('#keys'), '3', 'one keydown per character');
    await c.browser.click('#go');
    assert.equal(await c.browser.text('#out'), 'Hi, Ada!');
    await c.browser.type('#name', 'Grace', { clear: true });
    await c.browser.click('text=Greet');
    assert.equal(await c.browser.evaluate('document.getElementById("out").textContent'), 'Hi, Grace!');
  });

  test("two sessions don't share cookies", async () => {
    const a = await client('agent');
    const b = await client('agent');
    await a.browser.navigate(home());
    await b.browser.navigate(home());
    assert.equal(await a.browser.evaluate('document.cookie = "who=a; path=/", document.cookie'), 'who=a');
    assert.equal(await b.browser.evaluate('document.cookie'), '');
    site.cookies.length = 0;
    await a.browser.navigate(home());
    await b.browser.navigate(home());
    assert.deepEqual(site.cookies.map((x) => x.cookie), ['who=a', undefined], 'the site saw the cookie from a only');
  });

  test('a host outside the environment policy is -32002, subresources included', async () => {
    const c = await client('agent');
    for (const url of [`http://127.0.0.1:${elsewhere.port}/`, `http://localhost:${site.port}/`, 'https://example.com/']) {
      const err = await rpcError(c.browser.navigate(url));
      assert.equal(err.rpcCode, -32002, `${url}: ${err.message}`);
      assert.match(String(err.data?.reason), /allowlist/);
    }
    // The browser environment has no network at all by default.
    const human = await client('browser');
    const none = await rpcError(human.browser.navigate(home()));
    assert.equal(none.rpcCode, -32002);
    assert.match(none.message, /no network access/);

    const before = elsewhere.hits();
    const nav = await c.browser.navigate(`${home()}reaches-out`);
    assert.equal(nav.status, 200);
    assert.equal(await c.browser.evaluate('window.done'), true);
    assert.equal(elsewhere.hits(), before, 'no image, fetch or WebSocket of the page reached the other server');
    const refused = await waitFor(() => {
      const lines = tree.logLines('agent').filter((l) => l.event === 'browser.request.refused' && l.sessionId === c.session.sessionId);
      return lines.length >= 3 ? lines : undefined;
    }, 10_000, 'refusals in agent.log');
    assert.ok(refused.some((l) => String(l.url).startsWith('ws://')), 'the WebSocket was refused too');

    // A redirect off the allowlist is caught where it lands (the page is not kept).
    const redirected = await rpcError(c.browser.navigate(`${home()}redirect-out`));
    assert.equal(redirected.rpcCode, -32002);
    assert.equal(await c.browser.evaluate('location.href'), 'about:blank');
  });

  test("redirects off the allowlist are refused by the environment's egress proxy before they reach the host", async () => {
    const c = await client('agent');
    const sessionId = c.session.sessionId;
    const before = elsewhere.hits();
    const nav = await rpcError(c.browser.navigate(`${home()}redirect-out`));
    assert.equal(nav.rpcCode, -32002, nav.message);
    assert.match(nav.message, new RegExp(`127\\.0\\.0\\.1:${elsewhere.port}/landed.*redirected there from`));
    assert.equal(await c.browser.evaluate('location.href'), 'about:blank');

    const page = await c.browser.navigate(`${home()}redirects-subresource`);
    assert.equal(page.status, 200);
    assert.deepEqual(await c.browser.evaluate('window.done'), ['error', 'error'], 'the image and the fetch both failed');
    assert.equal(elsewhere.hits(), before, 'no connection reached the other server, navigation or subresource');

    const record = (fields: Record<string, unknown>) => (l: Record<string, unknown>) => Object.entries(fields).every(([k, v]) => l[k] === v);
    // The proxy denied each redirected request (the navigation, the image, the fetch), naming the session.
    const denied = record({ component: 'egress-proxy', msg: 'egress denied', sessionId, method: 'GET', host: '127.0.0.1', port: elsewhere.port, status: 403 });
    await waitFor(() => (tree.logLines('agent').filter(denied).length >= 3 ? true : undefined), 10_000, 'three egress denials for the session in agent.log');
    // The loopback site itself went through the proxy too (Chromium did not bypass it for loopback).
    const allowed = record({ component: 'egress-proxy', msg: 'egress allowed', sessionId, host: '127.0.0.1', port: site.port });
    assert.ok(tree.logLines('agent').some(allowed), 'the allowed loopback site was reached through the egress proxy');
  });

  test('remote and server policies leave browser.* out by default', async () => {
    for (const env of ['remote', 'server']) {
      const c = await client(env);
      const err = await rpcError(c.browser.navigate(home()));
      assert.equal(err.rpcCode, -32002, env);
      assert.ok(!(await c.commands()).some((m) => m.name.startsWith('browser.')), `${env} does not list browser.*`);
    }
    const agent = await client('agent');
    const names = (await agent.commands()).map((m) => m.name);
    for (const n of ['navigate', 'screenshot', 'evaluate', 'click', 'type', 'text']) assert.ok(names.includes(`browser.${n}`), n);
  });

  test('bad URLs and selectors are -32602', async () => {
    const c = await client('agent');
    for (const url of ['file:///etc/passwd', 'chrome://version', 'javascript:alert(1)', 'not a url', `ftp://127.0.0.1:${site.port}/`]) {
      const err = await rpcError(c.browser.navigate(url));
      assert.equal(err.rpcCode, -32602, `${url}: ${err.message}`);
    }
    await c.browser.navigate(home());
    for (const call of [c.browser.click('div[['), c.browser.type('##', 'x'), c.browser.text('xpath=//[')]) {
      const err = await rpcError(call);
      assert.equal(err.rpcCode, -32602, err.message);
      assert.match(err.message, /invalid selector/);
    }
    const missingParam = await rpcError(c.request('browser.click', {}));
    assert.equal(missingParam.rpcCode, -32602);
    // Allowed, but nothing listens there: the page can't load, and the caller is told why.
    const refused = await rpcError(c.browser.navigate(`http://127.0.0.1:${closedPort}/`));
    assert.equal(refused.rpcCode, -32602, refused.message);
    assert.equal(refused.data?.reason, 'net::ERR_CONNECTION_REFUSED');
  });

  test('timeouts are -32004; a page that stopped answering is replaced, the session kept', async () => {
    const c = await client('agent');
    await c.browser.navigate(home());
    await c.browser.evaluate('document.cookie = "kept=yes; path=/"');
    const missing = await rpcError(c.browser.click('#does-not-exist', { timeoutMs: 500 }));
    assert.equal(missing.rpcCode, -32004, missing.message);
    assert.equal(await c.browser.text('#title'), 'Hello from the test site', 'a wait that timed out leaves the page as it was');

    const never = await rpcError(c.browser.evaluate('new Promise(() => {})', { timeoutMs: 1_000 }));
    assert.equal(never.rpcCode, -32004);
    const busy = await rpcError(c.browser.evaluate('for (;;) {}', { timeoutMs: 1_000 }));
    assert.equal(busy.rpcCode, -32004);
    assert.equal(busy.data?.pageReset, true);
    await c.browser.navigate(home());
    assert.equal(await c.browser.evaluate('document.cookie'), 'kept=yes', "the session's context (cookies) survived");
  });

  test('closing or expiring a session closes its browser context', async () => {
    const closedLine = (sessionId: string, env: string) =>
      tree.logLines(env).find((l) => l.event === 'browser.context.closed' && l.sessionId === sessionId);
    const c = await client('agent');
    await c.browser.navigate(home());
    const id = c.session.sessionId;
    assert.equal(closedLine(id, 'agent'), undefined);
    await c.closeSession();
    const line = await waitFor(() => closedLine(id, 'agent'), 10_000, 'context closed after session.close');
    assert.equal(line.reason, 'session ended');
    assert.equal(line.closed, true);

    const p = await client('persona');
    await p.browser.navigate(home());
    const pid = p.session.sessionId;
    await p.close(); // idle from now on: the session expires after 2 s
    const expired = await waitFor(() => closedLine(pid, 'persona'), 15_000, 'context closed after expiry');
    assert.equal(expired.closed, true);
  });
});
