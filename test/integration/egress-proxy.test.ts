// The egress proxy against a real tree, through the public protocol: shell.exec runs curl
// and a Node program using undici's EnvHttpProxyAgent, with the proxy variables Continuum
// sets. Loopback servers stand in for the internet: allowlisted HTTP and HTTPS (127.0.0.1:<port>), one
// not. Denials must reach the environment's log with the session id.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ContinuumClient } from '../../src/client/index.js';
import { startTree, stopTree, tempHome, waitFor, type Tree } from '../helpers/tree.js';
import { missingTools, openTunnel, rawExchange, targetServer, tlsTargetServer, type TargetServer } from './support/egress.js';

const skip = missingTools(['curl', 'node', 'openssl']);
const CAP = 3;

let tree: Tree;
let allowed: TargetServer;
let other: TargetServer;
let secure: TargetServer & { certFile: string };
const clients: ContinuumClient[] = [];

async function session(environment: string, sessionId: string): Promise<ContinuumClient> {
  const c = await tree.client(environment, { sessionId, reconnect: false });
  clients.push(c);
  return c;
}

/** Waits for a record of `environment`'s log matching every field given. */
function logRecord(environment: string, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
  return waitFor(() => tree.logLines(environment).find((r) => Object.entries(fields).every(([k, v]) => r[k] === v)), 10_000, `a ${environment}.log record ${JSON.stringify(fields)}`);
}

const curl = (args: string) => `curl -sS --max-time 20 ${args}`;

describe('egress proxy', { timeout: 240_000, skip }, () => {
  before(async () => {
    allowed = await targetServer();
    other = await targetServer();
    secure = await tlsTargetServer(tempHome('ct-tls-'));
    tree = await startTree({
      config: {
        egress: { maxConnectionsPerEnvironment: CAP },
        environments: [
          { name: 'agent', standby: false, sandbox: { network: { allow: [`127.0.0.1:${allowed.port}`, `127.0.0.1:${secure.port}`] } } },
          { name: 'persona', standby: false, sandbox: { network: { allow: ['*'] } } },
          { name: 'remote', standby: false },
          { name: 'browser', enabled: false },
          { name: 'server', enabled: false },
        ],
      },
    });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stopTree(tree);
    allowed?.close();
    other?.close();
    secure?.close();
  });

  test('an allowlisted host works through the proxy: plain HTTP (curl) and CONNECT (curl -p, curl https://, undici EnvHttpProxyAgent for http and https)', async () => {
    const c = await session('agent', 'eg-allow');
    const vars = await c.exec('echo "$http_proxy|$HTTP_PROXY|$https_proxy|$HTTPS_PROXY"');
    const url = vars.stdout.trim().split('|')[0]!;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(vars.stdout.trim(), [url, url, url, url].join('|'), 'all four proxy variables point at the forwarder');

    const plain = await c.exec(curl(`http://127.0.0.1:${allowed.port}/plain`));
    assert.equal(plain.stderr, '');
    assert.equal(plain.exitCode, 0);
    assert.equal(plain.stdout, 'hello /plain\n');
    const hit = allowed.hits.find((h) => h.url === '/plain');
    assert.ok(hit, 'the server saw the request in origin-form');
    assert.equal(hit.headers['proxy-connection'], undefined, 'hop-by-hop proxy headers are not passed on');
    await logRecord('agent', { msg: 'egress allowed', sessionId: 'eg-allow', method: 'GET', host: '127.0.0.1', port: allowed.port, address: '127.0.0.1' });

    const tunnel = await c.exec(curl(`-p http://127.0.0.1:${allowed.port}/tunnel`));
    assert.equal(tunnel.exitCode, 0, tunnel.stderr);
    assert.equal(tunnel.stdout, 'hello /tunnel\n');
    await logRecord('agent', { msg: 'egress allowed', sessionId: 'eg-allow', method: 'CONNECT', host: '127.0.0.1', port: allowed.port });

    // https:// URLs use https_proxy: a CONNECT tunnel, TLS end to end (the proxy sees host:port only).
    fs.copyFileSync(secure.certFile, path.join(tree.home, 'workspaces', 'agent', 'eg-allow', 'ca.pem'));
    const tls = await c.exec(curl(`--cacert ca.pem https://127.0.0.1:${secure.port}/tls`));
    assert.equal(tls.exitCode, 0, tls.stderr);
    assert.equal(tls.stdout, 'secure hello /tls\n');
    await logRecord('agent', { msg: 'egress allowed', sessionId: 'eg-allow', method: 'CONNECT', host: '127.0.0.1', port: secure.port });

    // Node with undici's EnvHttpProxyAgent, which reads the same variables; undici is put in
    // the workspace as a user would install it.
    const u = await session('agent', 'eg-undici');
    const undiciDir = path.dirname(createRequire(import.meta.url).resolve('undici/package.json'));
    const ws = path.join(tree.home, 'workspaces', 'agent', 'eg-undici');
    fs.cpSync(undiciDir, path.join(ws, 'node_modules', 'undici'), { recursive: true });
    const program = `const { fetch, EnvHttpProxyAgent } = require('undici');
fetch('http://127.0.0.1:${allowed.port}/undici', { dispatcher: new EnvHttpProxyAgent() }).then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { console.error(e.cause ?? e); process.exit(3); });`;
    const uUrl = (await u.exec('echo "$https_proxy"')).stdout.trim();
    assert.match(uUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(uUrl, url, 'each session has its own forwarder port (that is how the proxy knows the session)');
    const node = await u.exec(`node -e "$PROGRAM"`, { env: { PROGRAM: program } });
    assert.equal(node.exitCode, 0, node.stderr);
    assert.equal(node.stdout, 'hello /undici\n');
    fs.copyFileSync(secure.certFile, path.join(ws, 'ca.pem'));
    const secureNode = await u.exec(`node -e "$PROGRAM"`, { env: { PROGRAM: program.replace(`http://127.0.0.1:${allowed.port}/undici`, `https://127.0.0.1:${secure.port}/undici`), NODE_EXTRA_CA_CERTS: 'ca.pem' } });
    assert.equal(secureNode.exitCode, 0, secureNode.stderr);
    assert.equal(secureNode.stdout, 'secure hello /undici\n');
    await logRecord('agent', { msg: 'egress allowed', sessionId: 'eg-undici', host: '127.0.0.1', port: allowed.port });
  });

  test('a host not on the allowlist is refused by name and by IP, with the reason, and logged with the session id', async () => {
    const c = await session('agent', 'eg-deny');
    const before = allowed.hits.length;

    const byName = await c.exec(curl(`-w '|%{http_code}' http://blocked.example.com:${allowed.port}/x`));
    assert.equal(byName.stdout, `Continuum egress proxy: blocked.example.com:${allowed.port} is not in this environment's network allowlist\n|403`);
    await logRecord('agent', { msg: 'egress denied', sessionId: 'eg-deny', method: 'GET', host: 'blocked.example.com', port: allowed.port, status: 403 });

    const byIp = await c.exec(curl(`-w '|%{http_code}' http://127.0.0.1:${other.port}/x`));
    assert.match(byIp.stdout, /is not in this environment's network allowlist\n\|403$/);
    await logRecord('agent', { msg: 'egress denied', sessionId: 'eg-deny', method: 'GET', host: '127.0.0.1', port: other.port, status: 403 });
    // Its own answers say so (RFC 9209), so a client can tell them from the origin's.
    const headers = await c.exec(curl(`-D - -o /dev/null http://127.0.0.1:${other.port}/x`));
    assert.match(headers.stdout, new RegExp(`^proxy-status: continuum-egress; error=destination_ip_prohibited; details="127\\.0\\.0\\.1:${other.port} is not in this environment's network allowlist"\r$`, 'mi'));
    const tunnelByIp = await c.exec(curl(`-p http://127.0.0.1:${other.port}/x`));
    assert.notEqual(tunnelByIp.exitCode, 0);
    assert.match(tunnelByIp.stderr, /CONNECT tunnel failed, response 403/);
    await logRecord('agent', { msg: 'egress denied', sessionId: 'eg-deny', method: 'CONNECT', host: '127.0.0.1', port: other.port, status: 403 });

    const publicIp = await c.exec(curl(`-w '|%{http_code}' http://203.0.113.7/x`));
    assert.match(publicIp.stdout, /203\.0\.113\.7:80 is not in this environment's network allowlist\n\|403$/);
    assert.equal(other.hits.length, 0, 'the non-allowlisted server was never reached');
    assert.equal(allowed.hits.length, before);
  });

  test('a name that resolves to 127.0.0.1 is refused even under a "*" rule, and so is an unnamed internal IP', async () => {
    const c = await session('persona', 'eg-dns');
    const before = allowed.hits.length;
    const byName = await c.exec(curl(`-w '|%{http_code}' http://localhost:${allowed.port}/x`));
    assert.match(byName.stdout, /localhost resolves to (127\.0\.0\.1|::1), refused: .* is an internal address; only a rule naming it literally allows it\n\|403$/);
    const denial = await logRecord('persona', { msg: 'egress denied', sessionId: 'eg-dns', method: 'GET', host: 'localhost', status: 403 });
    assert.match(String(denial.address), /^(127\.0\.0\.1|::1)$/);

    const tunnel = await c.exec(curl(`-p http://localhost:${allowed.port}/x`));
    assert.match(tunnel.stderr, /CONNECT tunnel failed, response 403/);
    await logRecord('persona', { msg: 'egress denied', sessionId: 'eg-dns', method: 'CONNECT', host: 'localhost', status: 403 });

    const ip = await c.exec(curl(`-w '|%{http_code}' http://127.0.0.1:${allowed.port}/x`));
    assert.match(ip.stdout, /127\.0\.0\.1 is an internal address; only a rule naming it literally allows it\n\|403$/);
    assert.equal(allowed.hits.length, before, 'nothing reached the loopback server');
  });

  test('garbage on the proxy socket and through the forwarder gets a 4xx, and the proxy keeps serving', async () => {
    const proxyBefore = await tree.row('egress-proxy');
    const socket = path.join(tree.home, 'run', 'egress-agent', 'proxy.sock');
    const noise = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256));
    assert.match(await rawExchange(socket, noise), /^HTTP\/1\.1 400 /);
    assert.match(await rawExchange(socket, 'CONTINUUM-SESSION ../../etc\nGET http://x/ HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*malformed session id/);
    assert.match(await rawExchange(socket, `GET http://127.0.0.1:${allowed.port}/ HTTP/1.1\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
    assert.match(await rawExchange(socket, 'GET /origin-form HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 400 [\s\S]*this is a forward proxy/);
    assert.match(await rawExchange(socket, 'CONNECT nonsense HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 [\s\S]*CONNECT needs host:port/);

    // The same from inside, through the executor's forwarder (bash's /dev/tcp).
    const c = await session('agent', 'eg-garbage');
    const r = await c.exec(`port=\${http_proxy##*:}; exec 3<>/dev/tcp/127.0.0.1/$port; printf '\\x00\\xff\\xfe garbage\\r\\n\\r\\n' >&3; cat <&3`);
    assert.match(r.stdout, /^HTTP\/1\.1 400 /);

    const ok = await c.exec(curl(`http://127.0.0.1:${allowed.port}/after-garbage`));
    assert.equal(ok.stdout, 'hello /after-garbage\n');
    const proxyAfter = await tree.row('egress-proxy');
    assert.equal(proxyAfter.pid, proxyBefore.pid, 'the proxy did not crash');
    assert.equal(proxyAfter.restarts, proxyBefore.restarts);
  });

  test(`at most ${CAP} connections per environment at once; the next is refused with 503 until one closes`, async () => {
    const socket = path.join(tree.home, 'run', 'egress-agent', 'proxy.sock');
    const open = [];
    for (let i = 0; i < CAP; i++) open.push(await openTunnel(socket, `127.0.0.1:${allowed.port}`));
    for (const t of open) assert.equal(t.status, 'HTTP/1.1 200 Connection Established');
    try {
      const over = await rawExchange(socket, `CONNECT 127.0.0.1:${allowed.port} HTTP/1.1\r\n\r\n`);
      assert.match(over, /^HTTP\/1\.1 503 [\s\S]*limit is 3/);
    } finally {
      for (const t of open) t.socket.destroy();
    }
    const again = await waitFor(async () => {
      const t = await openTunnel(socket, `127.0.0.1:${allowed.port}`);
      t.socket.destroy();
      return t.status.includes(' 200 ') ? t : undefined;
    }, 10_000, 'a tunnel once the others closed');
    assert.match(again.status, / 200 /);
  });

  test('an environment with network "none" gets no proxy variables, and exported ones are not kept', async () => {
    const none = await session('remote', 'eg-none');
    const r = await none.exec('env | grep -i _proxy');
    assert.equal(r.stdout, '');
    assert.equal(r.exitCode, 1);
    assert.equal(fs.existsSync(path.join(tree.home, 'run', 'egress-remote')), false);

    const c = await session('agent', 'eg-keep');
    const url = (await c.exec('echo "$https_proxy"')).stdout.trim();
    await c.exec('export https_proxy=http://elsewhere:1 HTTP_PROXY=http://elsewhere:2');
    assert.equal((await c.exec('echo "$https_proxy|$HTTP_PROXY"')).stdout.trim(), `${url}|${url}`);
  });

  test('killing the proxy: it is restarted, and the next request works', async () => {
    const before = await tree.row('egress-proxy');
    assert.equal(before.state, 'running');
    process.kill(before.pid!, 'SIGKILL');
    const restarted = await tree.waitRunning('egress-proxy', before.pid);
    assert.equal(restarted.restarts, before.restarts + 1);
    const c = await session('agent', 'eg-restart');
    const r = await c.exec(curl(`http://127.0.0.1:${allowed.port}/after-restart`));
    assert.equal(r.stdout, 'hello /after-restart\n', r.stderr);
  });
});
