// The util-linux fallback (unshare + pivot_root + setpriv, used where bubblewrap is missing
// and we are root), forced on this host with CONTINUUM_SANDBOX_MECHANISM=unshare: what it
// still enforces, attacked through shell.exec, and the warnings for what it doesn't.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTree, stopTree, type Tree } from '../helpers/tree.js';
import { assertFailed, printTable, record, type ExecResult } from './support/escape.js';

const LIMIT = { timeout: 120_000 };
const root = process.getuid?.() === 0;
const skip = root ? undefined : 'SKIPPED: the util-linux fallback needs root';
if (skip) process.stderr.write(`\n*** ${skip} ***\n\n`);

describe('escape suite: util-linux fallback (no bubblewrap)', { skip }, () => {
  let tree: Tree;
  let server: net.Server;
  let port = 0;
  let connections = 0;
  before(async () => {
    process.env.CONTINUUM_SANDBOX_MECHANISM = 'unshare';
    try {
      tree = await startTree({
        config: {
          environments: [
            ...['browser', 'agent', 'persona'].map((name) => ({ name, enabled: false })),
            { name: 'remote', standby: false },
            // The same profile, but strict: what the fallback can't enforce must stop it.
            { name: 'strictenv', standby: false, sandbox: { strict: true } },
          ],
        },
      });
    } finally {
      delete process.env.CONTINUUM_SANDBOX_MECHANISM;
    }
    server = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  after(async () => {
    server.close();
    await stopTree(tree);
    printTable('fallback (util-linux)');
  });

  test('strict: an environment whose profile the host cannot enforce does not start, and says why', LIMIT, async () => {
    const row = (await tree.ps()).find((r) => r.id === 'strictenv-0')!;
    assert.equal(row.state, 'failed');
    assert.equal(row.pid, null);
    assert.match(row.reason ?? '', /can't be enforced on this host \(strict\).*seccomp filter not enforced/);
    assert.ok(tree.logLines('server').some((l) => /sandbox profile of strictenv not fully enforced \(strict: it will not start\)/.test(String(l.msg))));
    const err = await tree.client('strictenv', { reconnect: false }).then(
      async (c) => {
        await c.close();
        return undefined;
      },
      (e: unknown) => e as { rpcCode?: number; data?: { retryable?: boolean } },
    );
    assert.equal(err?.rpcCode, -32003);
    assert.equal(err?.data?.retryable, false);
  });

  const sh = async (command: string): Promise<ExecResult> => {
    const c = await tree.client('remote', { reconnect: false, sessionId: 'fallback' });
    try {
      return (await c.exec(command, { timeoutMs: 20_000 })) as ExecResult;
    } finally {
      await c.close();
    }
  };

  test('it says what it does not enforce, and attests the rest', LIMIT, async () => {
    const row = (await tree.ps()).find((r) => r.id === 'remote-0')!;
    assert.ok(row.sandbox?.warnings.some((w) => /no per-session isolation/.test(w)), JSON.stringify(row.sandbox));
    assert.ok(row.sandbox?.warnings.some((w) => /seccomp filter not enforced/.test(w)));
    const c = await tree.client('remote', { reconnect: false });
    const info = await c.processInfo();
    await c.close();
    assert.equal(info.sandbox.mechanism, 'unshare');
    assert.equal(info.sandbox.enforced, false);
    assert.ok(info.sandbox.attestation?.ok, JSON.stringify(info.sandbox.attestation));
    assert.equal(info.executor.pid, row.pid);
    for (const ns of ['pid', 'mnt', 'net', 'ipc', 'uts']) assert.equal(info.namespaces[ns]!.sharedWithSupervisor, false, ns);
    const st = fs.readFileSync(`/proc/${row.pid}/status`, 'utf8');
    assert.match(st, /NoNewPrivs:\s+1/);
    assert.doesNotMatch(st, /Uid:\s+0\s/);
  });

  test('host files, host processes, host loopback and the read-only root stay out of reach', LIMIT, async () => {
    const secret = path.join(tree.home, 'planted-fallback.txt');
    fs.writeFileSync(secret, 'fallback-secret');
    assertFailed(await sh('cat /etc/shadow'), 'cat /etc/shadow', ['root:']);
    assertFailed(await sh(`cat ${secret}`), 'read <home>', ['fallback-secret']);
    record('read /etc/shadow and <home>', 'remote', true);
    const ps = await sh('ps -eo pid,args');
    assert.ok(!/continuum-(supervisor|[a-z-]+-daemon)/.test(ps.stdout), ps.stdout);
    record('list host processes', 'remote', true);
    assertFailed(await sh(`exec 3<>/dev/tcp/127.0.0.1/${port}`), 'host loopback');
    assert.equal(connections, 0);
    record('connect to host loopback', 'remote', true);
    assertFailed(await sh('echo x > /usr/escape-fallback'), 'write /usr');
    assertFailed(await sh(`echo x >> ${path.join(tree.home, 'logs', 'remote.log')}`), 'append to its log');
    record('write outside the workspace / its log', 'remote', true);
    assertFailed(await sh('mount -t tmpfs none /tmp; id -u | grep -qx 0'), 'become root through setuid mount');
    record('gain root (setuid binary)', 'remote', true);
    const ok = await sh('echo hi > f && cat f && id -u');
    assert.equal(ok.exitCode, 0, ok.stderr);
    assert.match(ok.stdout, /^hi\n6\d{4}\n$/);
  });
});
