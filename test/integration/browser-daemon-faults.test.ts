// The browser daemon when things break: Chromium killed or hung (detected, restarted, the
// daemon stays up and the next call works), the daemon itself killed (restarted by the
// supervisor, its Chromium gone with it), and Chromium not installed at all.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { cli, isAlive, startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';
import { chromiumOf, describeWithChromium, startElsewhere, startSite, type Site } from './support/browser.js';
import { kill9 } from './support/processes.js';
import { rpcError, sessionClients } from './support/sessions.js';

let tree: Tree;
let site: Site;
const { client, closeAll } = sessionClients(() => tree);
const home = () => `http://127.0.0.1:${site.port}/`;
const daemonRow = async () => (await tree.ps()).find((r) => r.name === 'continuum-browser-daemon')!;
const seenChromium: number[] = [];

async function chromiumPid(daemonPid: number): Promise<number> {
  const pid = await waitFor(() => chromiumOf(daemonPid), 10_000, 'chromium under the browser daemon');
  seenChromium.push(pid);
  return pid;
}

describeWithChromium('browser daemon: Chromium crashes and hangs', () => {
  before(async () => {
    site = await startSite(() => 1);
    tree = await startTree({ config: { environments: [{ name: 'agent', sandbox: { network: { allow: [`127.0.0.1:${site.port}`] } } }] } });
  });
  after(async () => {
    await closeAll();
    await stopTree(tree);
    await site?.close();
    // No Chromium outlives the tree.
    await waitFor(() => seenChromium.every((p) => !isAlive(p)), 10_000, 'every chromium to exit');
  });

  test('Chromium starts at first use, headless with the fixed flags and a profile under <home>/run', async () => {
    const daemon = await daemonRow();
    assert.equal(chromiumOf(daemon.pid!), undefined, 'no Chromium before anyone browses');
    const c = await client('agent');
    await c.browser.navigate(home());
    const pid = await chromiumPid(daemon.pid!);
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    for (const flag of ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']) {
      assert.ok(args.includes(flag), `${flag} in ${args.join(' ')}`);
    }
    const profile = args.find((a) => a.startsWith('--user-data-dir='))?.slice('--user-data-dir='.length);
    assert.ok(profile?.startsWith(`${tree.home}/run/browser/`), `profile ${profile}`);
  });

  test('killing Chromium does not take the daemon down; the next call works on a fresh context', async () => {
    const daemon = await daemonRow();
    const c = await client('agent');
    await c.browser.navigate(home());
    await c.browser.evaluate('document.cookie = "before=crash; path=/"');
    const first = await chromiumPid(daemon.pid!);
    kill9(first);
    await c.browser.navigate(home());
    assert.equal(await c.browser.text('#title'), 'Hello from the test site');
    assert.equal(await c.browser.evaluate('document.cookie'), '', 'the context is a fresh one');
    const second = await chromiumPid(daemon.pid!);
    assert.notEqual(second, first);
    assert.ok(!isAlive(first));
    const now = await daemonRow();
    assert.equal(now.pid, daemon.pid, 'the daemon kept running');
    assert.equal(now.restarts, daemon.restarts);
    assert.ok(tree.logLines('server').some((l) => l.msg === 'chromium is gone; it is launched again at the next browser call'));
  });

  test('a hung Chromium is detected by the watchdog, killed and replaced', async () => {
    const daemon = await daemonRow();
    const c = await client('agent');
    await c.browser.navigate(home());
    const hung = await chromiumPid(daemon.pid!);
    process.kill(hung, 'SIGSTOP');
    const killed = await waitFor(
      () => tree.logLines('server').find((l) => l.msg === 'killing chromium' && l.chromiumPid === hung),
      30_000,
      'the watchdog to kill the stopped chromium',
    );
    assert.match(String(killed.reason), /unresponsive/);
    await waitFor(() => !isAlive(hung), 10_000, 'the hung chromium to be gone');
    await c.browser.navigate(home());
    assert.equal(await c.browser.text('#title'), 'Hello from the test site');
    assert.equal((await daemonRow()).pid, daemon.pid);
  });

  test('a killed daemon is restarted by the supervisor, and its Chromium goes with it', async () => {
    const daemon = await daemonRow();
    const c = await client('agent');
    await c.browser.navigate(home());
    const old = await chromiumPid(daemon.pid!);
    kill9(daemon.pid);
    await tree.waitRunning('browser-daemon', daemon.pid, 15_000);
    await waitFor(() => !isAlive(old), 10_000, "the old daemon's chromium to exit");
    const text = await waitFor(async () => {
      await c.browser.navigate(home()).catch((e: unknown) => {
        assert.equal((e as { rpcCode?: number }).rpcCode, -32003, String(e));
        throw e;
      });
      return c.browser.text('#title');
    }, 15_000, 'browser calls to work again');
    assert.equal(text, 'Hello from the test site');
    await chromiumPid((await daemonRow()).pid!);
  });
});

describe('browser daemon: Chromium not installed', { timeout: 60_000 }, () => {
  const missing = '/nonexistent/chromium';
  before(async () => {
    tree = await startTree({ env: { CONTINUUM_CHROMIUM: missing } });
  });
  after(async () => {
    await closeAll();
    await stopTree(tree);
  });

  test('the daemon stays up and browser.* answers -32003 naming the package', async () => {
    const c = await client('agent');
    for (let i = 0; i < 2; i++) {
      const err = await rpcError(c.browser.navigate('https://example.com/'));
      assert.equal(err.rpcCode, -32003, err.message);
      assert.equal(err.data?.retryable, false);
      assert.equal(err.data?.install, 'apt-get install chromium');
      assert.match(err.message, /apt-get install chromium/);
    }
    const row = (await tree.ps()).find((r) => r.name === 'continuum-browser-daemon');
    assert.equal(row?.state, 'running');
    assert.equal(row?.restarts, 0);
    assert.ok(tree.logLines('server').some((l) => String(l.msg).startsWith('Chromium is not installed')));
  });

  test('continuum doctor says so, with the package to install', async () => {
    const r = await cli(['doctor'], { env: { CONTINUUM_CHROMIUM: missing } });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /MISS\s+chromium\s+\/nonexistent\/chromium not found.*apt-get install chromium/);
    const ok = await cli(['doctor']);
    assert.match(ok.stdout, /ok\s+chromium\s+\/usr\/bin\/chromium/);
  });
});
