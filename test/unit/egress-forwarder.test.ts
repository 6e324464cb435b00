// The executor's egress forwarders: a loopback port per session, the session lead line in
// front of the client's bytes, and a 503 the client understands while the proxy is away.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { EgressForwarders } from '../../src/bus/egress-forwarder.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ct-fwd-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Connects to a forwarder URL, writes `bytes`, resolves with everything read until close. */
function exchange(url: string, bytes: string): Promise<string> {
  const port = Number(new URL(url).port);
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (c: Buffer) => (out += c.toString()));
    s.on('error', reject);
    s.on('close', () => resolve(out));
    s.write(bytes);
  });
}

test('each session gets its own port, kept across calls; the proxy sees the lead line, then the bytes', async () => {
  const socketPath = path.join(dir, 'proxy.sock');
  const seen: string[] = [];
  const proxy = net.createServer((s) => {
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString();
      if (!got.endsWith('\r\n\r\n')) return;
      seen.push(got);
      s.end('HTTP/1.1 204 No Content\r\n\r\n');
    });
  });
  await new Promise<void>((r) => proxy.listen(socketPath, r));
  const fwd = new EgressForwarders(socketPath);
  try {
    const a = await fwd.proxyUrl('sess-a');
    const b = await fwd.proxyUrl('sess-b');
    assert.match(a, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(a, b);
    assert.equal(await fwd.proxyUrl('sess-a'), a);
    assert.equal(await exchange(a, 'GET http://x/ HTTP/1.1\r\n\r\n'), 'HTTP/1.1 204 No Content\r\n\r\n');
    assert.equal(await exchange(b, 'CONNECT x:443 HTTP/1.1\r\n\r\n'), 'HTTP/1.1 204 No Content\r\n\r\n');
    assert.deepEqual(seen, ['CONTINUUM-SESSION sess-a\nGET http://x/ HTTP/1.1\r\n\r\n', 'CONTINUUM-SESSION sess-b\nCONNECT x:443 HTTP/1.1\r\n\r\n']);

    await fwd.release('sess-a');
    await assert.rejects(
      () => new Promise((resolve, reject) => net.connect(Number(new URL(a).port), '127.0.0.1').once('connect', resolve).once('error', reject)),
      /ECONNREFUSED/,
      'a released session no longer listens',
    );
  } finally {
    fwd.closeAll();
    proxy.close();
  }
});

test('while the proxy is away the client gets a 503 saying so', async () => {
  const fwd = new EgressForwarders(path.join(dir, 'absent.sock'));
  try {
    const reply = await exchange(await fwd.proxyUrl('sess-c'), 'GET http://x/ HTTP/1.1\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*egress proxy unavailable/);
  } finally {
    fwd.closeAll();
  }
});
