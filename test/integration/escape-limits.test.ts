// Resource limits from the inside: a command that crosses the memory limit is killed by the
// kernel and the environment's log says "memory limit"; a fork bomb stops at `pids`; a busy
// loop is throttled to the `cpu` share. Each leaves the executor serving.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { RawClient } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/tree.js';
import { waitForCommand } from './support/processes.js';
import { bwrapMissing, CONFINED, record, useEscapeTree } from './support/escape.js';

const LIMIT = { timeout: 120_000 };
const MiB = 1024 * 1024;

/** The prefix of the cgroups of the tree at `home` (the launcher names them after a hash of its home). */
function treeCgroupPrefix(home: string): string {
  return `continuum-${createHash('sha256').update(home).digest('hex').slice(0, 10)}-`;
}

/** The host directory of an executor's cgroup of this test's tree, for a v1 controller (or the v2 one). */
function cgroupDir(home: string, controller: string, executorId: string): string | undefined {
  const prefix = treeCgroupPrefix(home);
  const own = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[1] === controller || (controller === '' && f[1] === ''));
  const base = controller ? path.join('/sys/fs/cgroup', controller, own?.[2] ?? '/') : path.join('/sys/fs/cgroup', own?.[2] ?? '/');
  const dir = fs.readdirSync(base).find((d) => d.startsWith(prefix) && d.startsWith(`${prefix}${executorId}-`) && fs.existsSync(path.join(base, d, 'cgroup.procs')) && fs.readFileSync(path.join(base, d, 'cgroup.procs'), 'utf8').trim() !== '');
  return dir ? path.join(base, dir) : undefined;
}

const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');

describe('escape suite: resource limits', { skip: bwrapMissing() }, () => {
  // Small limits keep the attempts cheap on a shared machine; standbys off for the same reason.
  // 256 MiB leaves the executor (~60 MiB) room while a command nears the limit: at 128 MiB the
  // kernel's reclaim could stall it past its heartbeat before the OOM killer chose the hog.
  const config = { environments: CONFINED.map((name) => ({ name, standby: false, sandbox: { memory: 256 * MiB, cpu: 0.25, pids: 64 } })) };
  const { tree, sh } = useEscapeTree('limits', config);

  test('memory: a command over the limit is OOM-killed, the log names the memory limit, the executor serves on', LIMIT, async () => {
    for (const env of CONFINED) {
      const r = await sh(env, 'head -c 400M /dev/zero | tail > /dev/null; echo "status ${PIPESTATUS[1]}"').catch((err: Error) => {
        // It failed in fresh-clone CI runs and never alone: say what the supervisor saw.
        const lines = tree().logLines('server').filter((l) => /heartbeat|memory limit|silent/.test(String(l.msg)));
        const kills = lines.filter((l) => /missed its heartbeat/.test(String(l.msg)));
        const seen = [...lines.filter((l) => !/missed its heartbeat/.test(String(l.msg))), ...kills.slice(0, 1), ...kills.slice(-1)];
        throw new Error(`${err.message}\n  the supervisor's lines (${kills.length} kill attempts): ${JSON.stringify(seen)}`);
      });
      assert.match(r.stdout, /status 137/, `${env}: the hog was not killed: ${JSON.stringify(r)}`);
      await waitFor(() => tree().logLines(env).find((l) => /memory limit \(256 MiB\) hit/.test(String(l.msg))), 10_000, `the memory-limit line in ${env}.log`);
      assert.equal((await sh(env, 'echo alive')).stdout, 'alive\n');
      record('exceed memory (OOM reported)', env, true);
    }
  });

  test('memory: an executor the kernel kills at its limit fails its in-flight requests with -32003 and the reason', LIMIT, async () => {
    const row = (await tree().ps()).find((r) => r.id === 'remote-0')!;
    // A raw client: the wire answer itself (the SDK would go on to ask the ledger, which says `lost` with the same reason).
    const raw = await RawClient.open(tree().url, tree().token('remote'));
    try {
      assert.equal((await raw.call('session.connect', { environment: 'remote' })).error, undefined);
      const pending = raw.call('shell.exec', { command: 'sleep 2; head -c 400M /dev/zero | tail > /dev/null' }, 60_000);
      // Once the command's shell runs (it keeps its own score), make the executor itself the
      // OOM killer's choice, as if it, not the command, had grown.
      await waitForCommand(row.pid!, 'sleep 2');
      fs.writeFileSync(`/proc/${row.pid}/oom_score_adj`, '1000');
      const answer = await pending;
      assert.equal(answer.error?.code, -32003, JSON.stringify(answer));
      assert.equal((answer.error?.data as { reason?: string } | undefined)?.reason, 'memory limit (256 MiB)', JSON.stringify(answer.error));
      const restarted = await waitFor(async () => (await tree().ps()).find((r) => r.id === 'remote-0' && r.pid !== row.pid && r.state === 'running'), 15_000, 'remote-0 restarted');
      assert.ok(restarted.restarts >= row.restarts + 1);
      assert.ok(tree().logLines('remote').some((l) => /executor memory limit \(256 MiB\)/.test(String(l.msg))), 'remote.log says the executor hit its memory limit');
    } finally {
      raw.close();
    }
  });

  test('pids: a fork bomb stops at the limit and ends with its command', LIMIT, async () => {
    for (const env of CONFINED) {
      // The bomb runs while bash waits; when the command ends, its sandbox (and the bomb) goes.
      await sh(env, ':(){ :|:& };: ; sleep 3', { timeoutMs: 10_000 });
      const dir = cgroupDir(tree().home, v2 ? '' : 'pids', `${env}-0`);
      assert.ok(dir, `${env}: the executor has a pids cgroup`);
      assert.equal(Number(fs.readFileSync(path.join(dir, 'pids.max'), 'utf8')), 64);
      assert.ok(Number(/max (\d+)/.exec(fs.readFileSync(path.join(dir, 'pids.events'), 'utf8'))?.[1] ?? 0) > 0, `${env}: the fork bomb never hit pids.max`);
      await waitFor(async () => (await sh(env, 'echo alive')).stdout === 'alive\n', 15_000, `${env} to serve again`);
      record('fork bomb (pids)', env, true);
    }
  });

  test('cpu: a busy loop is throttled to its share', LIMIT, async () => {
    for (const env of CONFINED) {
      const dir = cgroupDir(tree().home, v2 ? '' : 'cpu', `${env}-0`)!;
      const stat = () => Object.fromEntries(fs.readFileSync(path.join(dir, 'cpu.stat'), 'utf8').trim().split('\n').map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
      const before = stat();
      // Throttling shows once the loop has used its share of a period; on a busy machine the
      // loop may get little CPU at first, so watch for it, then stop the loop from the host.
      const sessionId = `cpu-${env}`;
      const loop = sh(env, 'rm -f stop; timeout 20 sh -c "while [ ! -e stop ]; do :; done"; true', { sessionId, timeoutMs: 30_000 });
      const stop = () => fs.writeFileSync(path.join(tree().home, 'workspaces', env, sessionId, 'stop'), '');
      const after = await waitFor(() => {
        const now = stat();
        return now.nr_throttled! > before.nr_throttled! ? now : undefined;
      }, 20_000, `${env}: throttling (before: ${JSON.stringify(before)})`).finally(() => waitFor(() => fs.existsSync(path.join(tree().home, 'workspaces', env, sessionId)) || undefined, 5_000, 'the workspace').then(stop, () => undefined));
      assert.ok(after.throttled_time! > before.throttled_time! || after.throttled_usec! > before.throttled_usec!, `${env}: throttled with no throttled time: ${JSON.stringify({ before, after })}`);
      await loop;
      record('busy loop (cpu throttled)', env, true);
    }
  });
});
