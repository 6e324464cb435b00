// Escape attempts against the filesystem, from every confined environment, through shell.exec
// and fs.*: host secrets, writes outside the workspace, the environment's own log, another
// session's workspace, device nodes. Plus the positive side: the workspace is writable, tools
// work, fs.* and the shell see the same files, and `server` is not confined.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { ContinuumError } from '../../src/client/index.js';
import { assertFailed, bwrapMissing, CONFINED, record, useEscapeTree } from './support/escape.js';

const LIMIT = { timeout: 120_000 };
const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

describe('escape suite: filesystem', { skip: bwrapMissing() }, () => {
  const { tree, client, sh } = useEscapeTree('filesystem');
  const secret = `secret-${randomUUID()}`;
  let homeSecret: string;
  let projectSecret: string;

  test('host secrets are not readable: /etc/shadow, a file in <home>, a file in the project folder', LIMIT, async () => {
    homeSecret = path.join(tree().home, `planted-${randomUUID()}.txt`);
    projectSecret = path.join(projectRoot, `.planted-${randomUUID()}.txt`);
    fs.writeFileSync(homeSecret, secret);
    fs.writeFileSync(projectSecret, secret);
    try {
      for (const env of CONFINED) {
        const shadow = await sh(env, 'cat /etc/shadow');
        assertFailed(shadow, `${env}: cat /etc/shadow`, ['root:']);
        record('read /etc/shadow', env, true);
        for (const [name, file] of [['read a secret in <home>', homeSecret], ['read a secret in the project folder', projectSecret]] as const) {
          assertFailed(await sh(env, `cat ${file}`), `${env}: ${name}`, [secret]);
          const listing = await sh(env, `ls -la ${path.dirname(file)}`);
          assert.ok(!listing.stdout.includes(path.basename(file)), `${env}: ${name}: the file is listed`);
          const c = await client(env);
          const viaFs = await c.fs.read(file).then(() => undefined, (e: unknown) => e);
          assert.ok(viaFs instanceof ContinuumError && viaFs.rpcCode === -32002, `${env}: fs.read ${file} was not refused`);
          record(name, env, true);
        }
      }
      const server = await sh('server', `cat ${homeSecret}`);
      assert.equal(server.stdout, secret, 'the unconfined server environment reads host files');
      record(`read a secret in <home>`, 'server', false);
    } finally {
      fs.rmSync(projectSecret, { force: true });
    }
  });

  test('writes outside the workspace fail: /usr, the host /tmp, <home>/logs', LIMIT, async () => {
    for (const env of CONFINED) {
      const name = `escape-${randomUUID()}`;
      assertFailed(await sh(env, `echo x > /usr/${name}`), `${env}: write /usr`);
      assert.ok(!fs.existsSync(`/usr/${name}`));
      record('write /usr', env, true);
      // The shell's /tmp is its own: the write "works" there, and never reaches the host's.
      await sh(env, `echo x > /tmp/${name}`);
      assert.ok(!fs.existsSync(`/tmp/${name}`), `${env}: a file written to /tmp appeared in the host's /tmp`);
      record('write the host /tmp', env, true);
      const logs = path.join(tree().home, 'logs');
      assertFailed(await sh(env, `echo x > ${logs}/${name}.log`), `${env}: write <home>/logs`);
      assert.ok(!fs.existsSync(path.join(logs, `${name}.log`)));
      record('write <home>/logs', env, true);
    }
  });

  test("an environment can neither truncate nor forge its own log", LIMIT, async () => {
    for (const env of CONFINED) {
      const log = path.join(tree().home, 'logs', `${env}.log`);
      const before = fs.statSync(log).size;
      const forged = `forged-${randomUUID()}`;
      assertFailed(await sh(env, `: > ${log}`), `${env}: truncate its log`);
      assertFailed(await sh(env, `echo '{"level":30,"msg":"${forged}"}' >> ${log}`), `${env}: append to its log`);
      assert.ok(fs.statSync(log).size >= before, `${env}.log shrank`);
      assert.ok(!fs.readFileSync(log, 'utf8').split('\n').some((l) => l.startsWith(`{"level":30,"msg":"${forged}"`)), `${env}.log has a forged line`);
      record('truncate or forge its own log', env, true);
    }
  });

  test("one session can neither read nor change another session's workspace of the same environment", LIMIT, async () => {
    for (const env of CONFINED) {
      const a = await client(env, `victim-${env}`);
      await a.fs.write('private.txt', secret);
      const victimWs = path.join(tree().home, 'workspaces', env, `victim-${env}`);
      const r = await sh(env, `cat ${victimWs}/private.txt; ls ${path.dirname(victimWs)}; echo changed > ${victimWs}/private.txt`);
      assertFailed(r, `${env}: another session's workspace`, [secret]);
      assert.ok(!r.stdout.includes(`victim-${env}`), `${env}: another session's workspace is listed`);
      const viaFs = await (await client(env)).fs.read(`../victim-${env}/private.txt`).then(() => undefined, (e: unknown) => e);
      assert.ok(viaFs instanceof ContinuumError && viaFs.rpcCode === -32002, `${env}: fs.read of another workspace was not refused`);
      assert.equal((await a.fs.read('private.txt')).content, secret, `${env}: the victim's file changed`);
      record("read/change another session's workspace", env, true);
    }
  });

  test('creating a device node fails', LIMIT, async () => {
    for (const env of CONFINED) {
      assertFailed(await sh(env, 'mknod ./null c 1 3 && ls -l ./null'), `${env}: mknod`);
      assertFailed(await sh(env, 'mknod /tmp/sda b 8 0'), `${env}: mknod in /tmp`);
      record('create a device node', env, true);
    }
  });

  test('positive: the workspace is writable, normal tools work, and fs.* sees what the shell wrote', LIMIT, async () => {
    for (const env of CONFINED) {
      const r = await sh(env, "mkdir -p out && printf 'b\\na\\n' | sort > out/sorted.txt && sha256sum out/sorted.txt | cut -c1-8 && node -e 'console.log(1+1)' && grep -c . out/sorted.txt && echo tmp > /tmp/t && cat /tmp/t");
      assert.equal(r.exitCode, 0, `${env}: ${r.stderr}`);
      assert.match(r.stdout, /^[0-9a-f]{8}\n2\n2\ntmp\n$/);
      const c = await client(env);
      assert.equal((await c.fs.read('out/sorted.txt')).content, 'a\nb\n');
      await c.fs.write('from-fs.txt', 'written by fs.write');
      assert.equal((await sh(env, 'cat from-fs.txt')).stdout, 'written by fs.write');
      record('workspace writable, tools work (positive)', env, false);
    }
  });

  test('the server environment is not confined: root, host namespaces, the host filesystem', LIMIT, async () => {
    const c = await client('server');
    const info = await c.processInfo();
    assert.equal(info.sandbox.mechanism, 'unconfined by profile');
    assert.equal(info.namespaces.pid!.sharedWithSupervisor, true);
    assert.equal(info.namespaces.mnt!.sharedWithSupervisor, true);
    const r = await sh('server', `id -u; test -e ${path.join(tree().home, 'secrets.json')} && echo sees-home`);
    assert.equal(r.stdout, `${process.getuid!()}\nsees-home\n`);
    record('unconfined (server only)', 'server', false);
  });
});
