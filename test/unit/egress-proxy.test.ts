// The egress proxy in-process, with a resolver the test controls: the checked address is
// the one dialled (no second lookup), every resolved address is checked, resolution failures
// and stalls are answered, and the session lead line is read or refused.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { configSchema } from '../../src/config/schema.js';
import { encodeEgressLead, parseEgressLead } from '../../src/protocol/egress-lead.js';
import { EgressProxy } from '../../src/sandbox/egress-proxy.js';
import { EgressPolicy } from '../../src/sandbox/egress-rules.js';
import { openTunnel, rawExchange } from '../integration/support/egress.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ct-egress-'));
const socket = path.join(dir, 'egress.sock');
const logged: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
const lookups: string[] = [];
let server: http.Server;
let port: number;
let proxy: EgressProxy;

/** Names only this test's resolver knows: the system resolver can't find them. */
const answers: Record<string, string[] | 'hang' | 'fail'> = {
  'rebind.test': ['127.0.0.1'],
  'mixed.test': ['93.184.216.34', '127.0.0.1'],
  'slow.test': 'hang',
  'missing.test': 'fail',
};

before(async () => {
  server = http.createServer((req, res) => res.end(`origin ${req.headers.host} ${req.url}\n`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
  proxy = new EgressProxy({
    environment: 'unit',
    policy: EgressPolicy.of({ allow: [`rebind.test:${port}`, `127.0.0.1:${port}`, '*.test'] }),
    limits: { ...configSchema.parse({}).egress, connectTimeoutMs: 300 },
    log: (level, msg, fields) => logged.push({ level, msg, fields }),
    resolve: async (host) => {
      lookups.push(host);
      const a = answers[host];
      if (a === 'hang') return new Promise<string[]>(() => undefined);
      if (a === 'fail' || a === undefined) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      return a;
    },
  });
  await proxy.listen(socket);
});

after(async () => {
  await proxy.close();
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const get = (url: string, lead = '') => rawExchange(socket, `${lead}GET ${url} HTTP/1.1\r\nHost: ${new URL(url).host}\r\nConnection: close\r\n\r\n`);

test('a name is resolved once by the proxy and the checked address is dialled, not the name', async () => {
  lookups.length = 0;
  const r = await get(`http://rebind.test:${port}/a`, encodeEgressLead('s-1').toString());
  assert.match(r, /^HTTP\/1\.1 200 /);
  assert.match(r, new RegExp(`origin rebind\\.test:${port} /a\\n$`), 'the Host header is the name; the connection went to 127.0.0.1');
  assert.deepEqual(lookups, ['rebind.test']);
  const allowed = logged.find((l) => l.msg === 'egress allowed' && l.fields.host === 'rebind.test');
  assert.deepEqual(allowed?.fields, { sessionId: 's-1', method: 'GET', host: 'rebind.test', port, address: '127.0.0.1' });
});

test('every resolved address is checked: one internal address among public ones refuses the name', async () => {
  // (127.0.0.1 is allowlisted, but only on the origin server's port.)
  const r = await get('http://mixed.test:81/');
  assert.match(r, /^HTTP\/1\.1 403 Forbidden by egress policy\r\n/);
  assert.match(r, /mixed\.test resolves to 127\.0\.0\.1, refused: 127\.0\.0\.1 is an internal address/);
  const denial = logged.find((l) => l.msg === 'egress denied' && l.fields.host === 'mixed.test');
  assert.equal(denial?.fields.address, '127.0.0.1');
  assert.equal(denial?.fields.sessionId, undefined, 'no lead line, no session id');
});

test('resolution failing is a 502 and resolution stalling a 504, both logged', async () => {
  assert.match(await get('http://missing.test/'), /^HTTP\/1\.1 502 [\s\S]*cannot resolve missing\.test: ENOTFOUND/);
  assert.match(await get('http://slow.test/'), /^HTTP\/1\.1 504 [\s\S]*resolving slow\.test took over 300 ms/);
  assert.ok(logged.some((l) => l.level === 'warn' && l.msg === 'egress refused' && l.fields.status === 504));
});

test('the lead line: read when whole, waited for when partial, absent is fine, malformed is refused', async () => {
  assert.deepEqual(parseEgressLead(Buffer.from('CONTINUUM-SESS')), { kind: 'incomplete' });
  assert.deepEqual(parseEgressLead(Buffer.from('CONTINUUM-SESSION abc')), { kind: 'incomplete' });
  const lead = parseEgressLead(Buffer.from('CONTINUUM-SESSION abc\nGET'));
  assert.equal(lead.kind, 'lead');
  assert.equal(lead.kind === 'lead' && lead.sessionId, 'abc');
  assert.equal(lead.kind === 'lead' && lead.rest.toString(), 'GET');
  assert.equal(parseEgressLead(Buffer.from('GET http://x/')).kind, 'none');
  assert.equal(parseEgressLead(Buffer.from(`CONTINUUM-SESSION ${'a'.repeat(200)}`)).kind, 'invalid');
  assert.equal(parseEgressLead(Buffer.from('CONTINUUM-SESSION a b\n')).kind, 'invalid');
  assert.throws(() => encodeEgressLead('../x'), /not a session id/);
  assert.match(await get(`http://127.0.0.1:${port}/plain`), /^HTTP\/1\.1 200 [\s\S]*origin 127\.0\.0\.1:\d+ \/plain\n$/);
});

test('close() cuts open tunnels rather than waiting for them, and may be called again', async () => {
  const t = await openTunnel(socket, `127.0.0.1:${port}`);
  assert.equal(t.status, 'HTTP/1.1 200 Connection Established');
  const cut = new Promise((r) => t.socket.once('close', r));
  await proxy.close();
  await cut;
  await proxy.close();
  assert.equal(fs.existsSync(socket), false, 'the socket file is gone');
});
