// What the browser-daemon-*.test.ts files share: a small web site served on loopback (the
// pages the daemon's Chromium visits), a second server the policy must keep it from
// reaching, the tree config that allowlists only the first, and finding Chromium's process.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe } from 'node:test';
import { childrenByParent } from '../../helpers/proc.js';
import { isAlive } from '../../helpers/tree.js';
import { cmdline } from './processes.js';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * `describe`, or — outside CI only, and loudly — a skip when Debian's Chromium is missing.
 * Under CI=true a missing Chromium fails the suite instead.
 */
export function describeWithChromium(name: string, fn: () => void): void {
  if (fs.existsSync(CHROMIUM) || process.env.CI === 'true') {
    describe(name, { timeout: 240_000 }, fn);
    return;
  }
  process.stderr.write(`\n*** SKIPPING "${name}": ${CHROMIUM} is missing (apt-get install chromium). Under CI=true this fails. ***\n\n`);
  describe(name, { skip: `${CHROMIUM} is missing (apt-get install chromium)` }, fn);
}

const HOME_PAGE = `<!doctype html><html><head><title>Home</title>
<style>body{font:16px sans-serif;background:linear-gradient(90deg,#fde68a,#93c5fd);margin:0;padding:24px}
h1{color:#7c2d12}.box{display:inline-block;width:120px;height:80px;margin:6px;border-radius:12px}</style></head>
<body><h1 id="title">Hello from the test site</h1>
<p><input id="name" placeholder="your name"> <button id="go">Greet</button></p>
<p id="out">nobody yet</p><p id="keys">0</p>
<div><span class="box" style="background:#ef4444"></span><span class="box" style="background:#22c55e"></span><span class="box" style="background:#3b82f6"></span></div>
<script>
  let keys = 0;
  document.getElementById('name').addEventListener('keydown', () => (document.getElementById('keys').textContent = String(++keys)));
  document.getElementById('go').addEventListener('click', () => {
    document.getElementById('out').textContent = 'Hi, ' + document.getElementById('name').value + '!';
  });
</script></body></html>`;

export interface Site {
  port: number;
  /** Cookie headers the site received, by path, in order. */
  cookies: { path: string; cookie: string | undefined }[];
  close(): Promise<void>;
}

/** The allowed site: pages that react to clicks and keys, one that reaches elsewhere, redirects. */
export async function startSite(elsewherePort: () => number): Promise<Site> {
  const cookies: Site['cookies'] = [];
  const server = http.createServer((req, res) => {
    cookies.push({ path: req.url ?? '', cookie: req.headers.cookie });
    const html = (body: string) => res.writeHead(200, { 'content-type': 'text/html' }).end(body);
    const other = `http://127.0.0.1:${elsewherePort()}`;
    if (req.url === '/') return html(HOME_PAGE);
    if (req.url === '/reaches-out') {
      return html(`<title>out</title><img src="${other}/pixel.png"><script>
        window.done = Promise.allSettled([fetch('${other}/data'), new Promise((r) => { const w = new WebSocket('${other.replace('http', 'ws')}/ws'); w.onerror = w.onclose = r; })]).then(() => true);
      </script>`);
    }
    if (req.url?.startsWith('/redirect-out')) return res.writeHead(302, { location: `${other}/landed` }).end();
    if (req.url === '/redirects-subresource') {
      // Same-origin URLs the routing allows, each redirected off the allowlist by the site.
      return html(`<title>sub</title><script>
        const img = new Image();
        window.done = Promise.all([
          new Promise((r) => { img.onload = () => r('loaded'); img.onerror = () => r('error'); img.src = '/redirect-out?img'; }),
          fetch('/redirect-out?fetch').then((r) => r.status, () => 'error'),
        ]);
      </script>`);
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not here');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    cookies,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A server the policy does not allow: it counts every connection that reaches it. */
export async function startElsewhere(): Promise<{ port: number; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const server = http.createServer((_req, res) => res.end('elsewhere'));
  server.on('connection', () => hits++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    hits: () => hits,
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** Chromium's browser process: the daemon's child running with Playwright's debugging pipe. */
export function chromiumOf(daemonPid: number): number | undefined {
  return (childrenByParent().get(daemonPid) ?? []).filter(isAlive).find((p) => {
    const cmd = cmdline(p);
    return cmd.includes('chromium') && cmd.includes('--remote-debugging-pipe');
  });
}

/** The PNG's signature and IHDR size. */
export function pngInfo(file: Buffer): { png: boolean; width: number; height: number } {
  const png = file.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) && file.subarray(12, 16).toString('latin1') === 'IHDR';
  return { png, width: file.readUInt32BE(16), height: file.readUInt32BE(20) };
}
