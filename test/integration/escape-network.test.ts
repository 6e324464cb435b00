// Escape attempts over the network from every confined environment: a TCP server the test
// runs on host loopback must be unreachable (own network namespace, only `lo`), by bash's
// /dev/tcp, curl and node alike; the unconfined server environment reaches it.
// (Egress through the allowlisting proxy has its own suite.)
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { assertFailed, bwrapMissing, CONFINED, record, useEscapeTree } from './support/escape.js';

const LIMIT = { timeout: 120_000 };

describe('escape suite: network', { skip: bwrapMissing() }, () => {
  const { sh } = useEscapeTree('network');
  let server: net.Server;
  let port = 0;
  let connections = 0;
  before(async () => {
    server = net.createServer((s) => {
      connections++;
      sockets.add(s);
      s.end('hello from the host\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  const sockets = new Set<net.Socket>();
  after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });

  test('a TCP server on host loopback is unreachable from confined environments', LIMIT, async () => {
    for (const env of CONFINED) {
      const before_ = connections;
      assertFailed(await sh(env, `exec 3<>/dev/tcp/127.0.0.1/${port} && cat <&3`), `${env}: /dev/tcp`, ['hello from the host']);
      // Direct (ignoring any proxy variables), and through the environment's egress proxy if it has one.
      assertFailed(await sh(env, `curl -sS --fail --noproxy '*' --max-time 5 http://127.0.0.1:${port}/`), `${env}: curl direct`, ['hello from the host']);
      assertFailed(await sh(env, `curl -sS --fail --max-time 5 http://127.0.0.1:${port}/`), `${env}: curl via proxy variables`, ['hello from the host']);
      assertFailed(await sh(env, `node -e "require('net').connect(${port},'127.0.0.1').on('data',d=>process.stdout.write(d)).on('error',e=>{console.error(e.code);process.exit(1)})"`), `${env}: node`, ['hello from the host']);
      assert.equal(connections, before_, `${env} reached the host server`);
      const link = await sh(env, 'ip -o link show | cut -d: -f2');
      assert.deepEqual(link.stdout.trim().split('\n').map((s) => s.trim()), ['lo'], `${env} has interfaces besides lo`);
      record('connect to a TCP server on host loopback', env, true);
    }
    const fromServer = await sh('server', `exec 3<>/dev/tcp/127.0.0.1/${port} && cat <&3`);
    assert.equal(fromServer.stdout, 'hello from the host\n');
    record('connect to a TCP server on host loopback', 'server', false);
  });
});
