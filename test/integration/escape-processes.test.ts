// Escape attempts against processes and privileges, from every confined environment: the
// supervisor's environment and pid, host processes, mount/unshare/chroot/ptrace/modules,
// becoming root. And what the host sees: executors and their standbys confined, attested.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { isAlive, waitFor } from '../helpers/tree.js';
import { assertFailed, bwrapMissing, CONFINED, MARKER, record, useEscapeTree } from './support/escape.js';

const LIMIT = { timeout: 120_000 };
const PY = '/usr/bin/python3';

function status(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

describe('escape suite: processes and privileges', { skip: bwrapMissing() }, () => {
  const { tree, client, sh } = useEscapeTree('processes');

  test("the supervisor's environment is out of reach: /proc/1/environ and /proc/<supervisor>/environ", LIMIT, async () => {
    const sup = tree().proc!.pid!;
    assert.ok(fs.readFileSync(`/proc/${sup}/environ`, 'utf8').includes(MARKER), 'the marker is in the supervisor environment');
    for (const env of CONFINED) {
      const one = await sh(env, 'cat /proc/1/environ | tr "\\0" "\\n"');
      assert.ok(!one.stdout.includes(MARKER), `${env}: /proc/1/environ has the supervisor's environment`);
      record('read /proc/1/environ', env, true);
      assertFailed(await sh(env, `cat /proc/${sup}/environ`), `${env}: /proc/${sup}/environ`, [MARKER]);
      record("read the supervisor's /proc/PID/environ", env, true);
    }
  });

  test("host processes are invisible: only the sandbox's own", LIMIT, async () => {
    for (const env of CONFINED) {
      const r = await sh(env, 'ps -eo pid,args');
      assert.equal(r.exitCode, 0, r.stderr);
      assert.ok(!/continuum-(supervisor|[a-z-]+-(executor|daemon))|node /.test(r.stdout), `${env}: ps shows host processes:\n${r.stdout}`);
      const rows = r.stdout.trim().split('\n').slice(1);
      assert.ok(rows.length <= 4, `${env}: ${rows.length} processes visible:\n${r.stdout}`);
      record('list host processes', env, true);
    }
  });

  test('kill -9 of the supervisor fails, and it lives on', LIMIT, async () => {
    const sup = tree().proc!.pid!;
    for (const env of CONFINED) {
      assertFailed(await sh(env, `kill -9 ${sup}`), `${env}: kill -9 ${sup}`);
      assert.ok(isAlive(sup));
      record('kill -9 the supervisor', env, true);
    }
  });

  test('mount, unshare, chroot, ptrace and loading a kernel module all fail', LIMIT, async () => {
    const attempts: [string, string][] = [
      ['mount', 'mount -t tmpfs none /tmp'],
      ['unshare', 'unshare -Ur true || unshare -m true'],
      ['chroot', 'chroot / true'],
      ['ptrace another process', 'sleep 30 & strace -p $! -e trace=none -o /dev/null & S=$!; sleep 1; kill -0 $S 2>/dev/null && exit 0; exit 1'],
      ['load a kernel module', `${PY} -c "import ctypes,os; l=ctypes.CDLL(None,use_errno=True); r=l.syscall(175, None, 0, b''); print(r, os.strerror(ctypes.get_errno())); raise SystemExit(0 if r==0 else 1)"`],
    ];
    for (const env of CONFINED) {
      for (const [name, cmd] of attempts) {
        assertFailed(await sh(env, cmd), `${env}: ${name}`);
        record(name, env, true);
      }
    }
  });

  test('gaining root fails: setuid(0) and a setuid-root binary (mount)', LIMIT, async () => {
    assert.ok((fs.statSync('/usr/bin/mount').mode & 0o4000) !== 0, 'this host has a setuid-root mount');
    for (const env of CONFINED) {
      assertFailed(await sh(env, `${PY} -c "import os; os.setuid(0); print(os.getuid())"`), `${env}: setuid(0)`);
      const viaSetuid = await sh(env, 'mount -t tmpfs none /tmp; id -u');
      assert.ok(!/^0$/m.test(viaSetuid.stdout), `${env}: became root`);
      assert.match(viaSetuid.stderr, /must be superuser|permission denied|not permitted/i);
      assertFailed(await sh(env, 'su -c id root </dev/null'), `${env}: su`);
      record('gain root (setuid, setuid binary)', env, true);
    }
  });

  test('executors and their warm standbys run confined (host view), and attest it from the inside', LIMIT, async () => {
    const supNs = fs.readlinkSync(`/proc/${tree().proc!.pid}/ns/pid`);
    const rows = await tree().ps();
    const standbys = await tree().standbys();
    for (const env of CONFINED) {
      const row = rows.find((r) => r.id === `${env}-0`)!;
      const spare = standbys.find((r) => r.id === `${env}-0.standby`);
      for (const p of [row, ...(spare ? [spare] : [])]) {
        const st = status(p.pid!);
        assert.notEqual(st.Uid!.split(/\s+/)[0], '0', `${p.id} runs as root`);
        assert.equal(st.NoNewPrivs, '1', `${p.id} NoNewPrivs`);
        assert.equal(st.Seccomp, '2', `${p.id} Seccomp`);
        assert.match(st.CapEff!, /^0+$/, `${p.id} CapEff`);
        assert.notEqual(fs.readlinkSync(`/proc/${p.pid}/ns/pid`), supNs, `${p.id} shares the supervisor's pid namespace`);
      }
      const info = await (await client(env)).processInfo();
      assert.equal(info.executor.pid, row.pid, 'process.info reports the host pid that ps shows');
      assert.equal(info.sandbox.enforced, true);
      assert.equal(info.sandbox.mechanism, 'bubblewrap');
      assert.deepEqual(info.sandbox.warnings, []);
      assert.ok(info.sandbox.attestation?.ok, `${env} attestation: ${JSON.stringify(info.sandbox.attestation)}`);
      const names = info.sandbox.attestation!.checks.map((c) => c.name);
      for (const n of ['executor.seccomp', 'shell.seccomp', 'shell.no_new_privs', 'cgroup.memory', 'root.read-only', 'network.isolated']) assert.ok(names.includes(n), `${env} attestation lacks ${n}`);
      for (const ns of ['pid', 'mnt', 'net', 'ipc', 'uts']) assert.equal(info.namespaces[ns]!.sharedWithSupervisor, false, `${env} shares ${ns}`);
      assert.ok(row.sandbox?.attestation?.ok, `continuum ps shows ${env}'s attestation`);
    }
  });

  test('killing the pid ps reports ends the whole sandbox, commands in flight included', LIMIT, async () => {
    const before = (await tree().ps()).find((r) => r.id === 'remote-0')!;
    const sleepers = () =>
      fs.readdirSync('/proc').filter((p) => {
        try {
          return /^\d+$/.test(p) && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\x00301\x00';
        } catch {
          return false;
        }
      });
    const inFlight = (await client('remote', 'in-flight')).exec('sleep 301', { timeoutMs: 60_000 }).catch((e: unknown) => e);
    await waitFor(() => sleepers().length > 0, 10_000, 'the command to run');
    process.kill(before.pid!, 'SIGKILL');
    assert.ok((await inFlight) instanceof Error, 'the in-flight command did not fail');
    await waitFor(() => sleepers().length === 0, 5_000, 'every process of the killed sandbox to be gone');
    const after = await tree().waitRunning('remote-0', before.pid);
    assert.notEqual(status(after.pid!).Uid!.split(/\s+/)[0], '0');
  });
});
