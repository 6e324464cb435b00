// The cgroup code against a fake cgroupfs in a temporary folder: the v2 paths (memory.max,
// memory.swap.max, cpu.max, pids.max, cgroup.kill, delegation and the no-internal-processes
// rule) that this v1 host can't run live, and the v1 layout with per-controller parents.
// A fake directory does not enforce anything; these tests check what is written where.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CgroupError, CgroupManager, detectCgroups } from '../../src/sandbox/cgroups.js';

function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ct-cgfs-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function put(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

const read = (file: string) => fs.readFileSync(file, 'utf8');
const PREFIX = 'continuum-abc-';

/** Empties a fake cgroup so rmdir works (the kernel's files vanish with the directory). */
function emptyDir(dir: string): void {
  for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
}

describe('cgroups v2 (fake cgroupfs)', () => {
  function v2Host(otherProcs = '') {
    const root = tmp();
    put(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    const base = path.join(root, 'system.slice/continuum.service');
    put(path.join(base, 'cgroup.controllers'), 'cpu memory pids\n');
    put(path.join(base, 'cgroup.procs'), otherProcs);
    put(path.join(base, 'cgroup.subtree_control'), '');
    const self = path.join(root, 'self-cgroup');
    put(self, '0::/system.slice/continuum.service\n');
    const host = detectCgroups(root, self);
    assert.ok(host);
    return { host, base, manager: CgroupManager.for(host, PREFIX) };
  }

  test('detects v2 and where the supervisor sits', () => {
    const { host } = v2Host();
    assert.equal(host.version, 2);
    assert.equal(host.own[''], '/system.slice/continuum.service');
  });

  test('delegation: the supervisor moves into a leaf, then controllers are enabled for children', () => {
    const { manager, base } = v2Host();
    manager.prepare([4242]);
    assert.equal(read(path.join(base, `${PREFIX}supervisor/cgroup.procs`)), '4242');
    assert.equal(read(path.join(base, 'cgroup.subtree_control')), '+memory +cpu +pids');
  });

  test('the no-internal-processes rule: processes that are not ours in the cgroup make prepare fail clearly', () => {
    const { manager, base } = v2Host('999\n');
    assert.throws(() => manager.prepare([4242]), (err: Error) => err instanceof CgroupError && /Delegate=yes/.test(err.message) && /999/.test(err.message));
    assert.equal(read(path.join(base, 'cgroup.subtree_control')), '', 'controllers were enabled anyway');
  });

  test('create writes memory.max, memory.swap.max, cpu.max and pids.max; oom kills come from memory.events, the limit from memory.current', async () => {
    const { manager, base } = v2Host();
    assert.deepEqual(manager.supports(), { memory: true, cpu: true, pids: true, kill: true });
    const cg = manager.create('remote-0-1', { memory: 256 * 1024 * 1024, cpu: 0.5, pids: 128 });
    const dir = path.join(base, `${PREFIX}remote-0-1`);
    assert.deepEqual(cg.dirs, { unified: dir });
    assert.deepEqual(cg.procsFiles, [path.join(dir, 'cgroup.procs')]);
    assert.equal(read(path.join(dir, 'memory.max')), String(256 * 1024 * 1024));
    assert.equal(read(path.join(dir, 'memory.swap.max')), '0');
    assert.equal(read(path.join(dir, 'cpu.max')), '50000 100000');
    assert.equal(read(path.join(dir, 'pids.max')), '128');
    assert.equal(cg.oomKills(), 0);
    put(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n');
    assert.equal(cg.oomKills(), 2);
    // At its memory limit: it hit memory.max since the last ask (memory.events "max" rose),
    // or memory.current is within a few MiB of memory.max ("max": no limit).
    put(path.join(dir, 'memory.current'), String(100 * 1024 * 1024));
    assert.equal(cg.atMemoryLimit(), true, 'the limit was hit 7 times, and 2 processes OOM-killed, since it was made');
    assert.equal(cg.atMemoryLimit(), false, 'and not since the last ask');
    put(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n');
    assert.equal(cg.atMemoryLimit(), true, 'hit again while usage swung below the limit');
    put(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\n');
    assert.equal(cg.atMemoryLimit(), true, 'an OOM kill since the last ask');
    put(path.join(dir, 'memory.current'), String(255 * 1024 * 1024));
    assert.equal(cg.atMemoryLimit(), true);
    put(path.join(dir, 'memory.max'), 'max');
    assert.equal(cg.atMemoryLimit(), false);
    put(path.join(dir, 'cgroup.kill'), '');
    cg.kill();
    assert.equal(read(path.join(dir, 'cgroup.kill')), '1', 'kill goes through cgroup.kill');
    emptyDir(dir);
    await cg.remove();
    assert.ok(!fs.existsSync(dir));
    await cg.remove(); // idempotent
  });

  test('a controller not delegated to us is reported, and its limit is not written', () => {
    const { manager, base } = v2Host();
    put(path.join(base, 'cgroup.controllers'), 'memory\n');
    assert.deepEqual(manager.supports(), { memory: true, cpu: false, pids: false, kill: true });
    manager.create('agent-0-1', { memory: 64 * 1024 * 1024, cpu: 1, pids: 10 });
    const dir = path.join(base, `${PREFIX}agent-0-1`);
    assert.ok(fs.existsSync(path.join(dir, 'memory.max')));
    assert.ok(!fs.existsSync(path.join(dir, 'cpu.max')));
    assert.ok(!fs.existsSync(path.join(dir, 'pids.max')));
  });

  test('stale cgroups of ours (same prefix) are removed; the supervisor leaf and others are kept', async () => {
    const { manager, base } = v2Host();
    fs.mkdirSync(path.join(base, `${PREFIX}remote-0-3`));
    fs.mkdirSync(path.join(base, `${PREFIX}supervisor`));
    fs.mkdirSync(path.join(base, 'continuum-otherhome-remote-0-1'));
    fs.mkdirSync(path.join(base, 'unrelated'));
    const removed = await manager.removeStale();
    assert.deepEqual(removed, [path.join(base, `${PREFIX}remote-0-3`)]);
    for (const kept of [`${PREFIX}supervisor`, 'continuum-otherhome-remote-0-1', 'unrelated']) assert.ok(fs.existsSync(path.join(base, kept)), kept);
  });
});

describe('cgroups v1 (fake cgroupfs)', () => {
  function v1Host() {
    const root = tmp();
    for (const c of ['memory', 'cpu', 'pids', 'freezer']) fs.mkdirSync(path.join(root, c));
    fs.mkdirSync(path.join(root, 'memory/process_api/abc'), { recursive: true });
    const self = path.join(root, 'self-cgroup');
    put(self, '8:pids:/\n6:freezer:/\n4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/\n');
    const host = detectCgroups(root, self);
    assert.ok(host);
    return { root, host, manager: CgroupManager.for(host, PREFIX) };
  }

  test('detects v1 and the per-controller paths (cpu,cpuacct split)', () => {
    const { host } = v1Host();
    assert.equal(host.version, 1);
    assert.equal(host.own.memory, '/process_api/abc');
    assert.equal(host.own.cpu, '/');
    assert.equal(host.own.cpuacct, '/');
  });

  test('create makes one child per controller under the supervisor\'s own cgroup, with the limits', async () => {
    const { root, manager } = v1Host();
    const cg = manager.create('remote-0-1', { memory: 128 * 1024 * 1024, cpu: 0.25, pids: 64 });
    const dirs = {
      memory: path.join(root, `memory/process_api/abc/${PREFIX}remote-0-1`),
      cpu: path.join(root, `cpu/${PREFIX}remote-0-1`),
      pids: path.join(root, `pids/${PREFIX}remote-0-1`),
      freezer: path.join(root, `freezer/${PREFIX}remote-0-1`),
    };
    assert.deepEqual(Object.keys(cg.dirs).sort(), Object.keys(dirs).sort());
    for (const [c, d] of Object.entries(dirs)) assert.equal(cg.dirs[c], d);
    assert.equal(read(path.join(dirs.memory, 'memory.limit_in_bytes')), String(128 * 1024 * 1024));
    assert.equal(read(path.join(dirs.cpu, 'cpu.cfs_quota_us')), '25000');
    assert.equal(read(path.join(dirs.cpu, 'cpu.cfs_period_us')), '100000');
    assert.equal(read(path.join(dirs.pids, 'pids.max')), '64');
    put(path.join(dirs.memory, 'memory.usage_in_bytes'), String(60 * 1024 * 1024));
    assert.equal(cg.atMemoryLimit(), false);
    put(path.join(dirs.memory, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 3\n');
    assert.equal(cg.oomKills(), 3);
    assert.equal(cg.atMemoryLimit(), true, 'an OOM kill since the last ask');
    assert.equal(cg.atMemoryLimit(), false);
    // v1 counts the limit's hits in memory.failcnt: a rise since the last ask counts, whatever the usage.
    put(path.join(dirs.memory, 'memory.failcnt'), '12\n');
    assert.equal(cg.atMemoryLimit(), true);
    assert.equal(cg.atMemoryLimit(), false);
    put(path.join(dirs.memory, 'memory.usage_in_bytes'), String(127 * 1024 * 1024));
    assert.equal(cg.atMemoryLimit(), true);
    cg.kill();
    assert.equal(read(path.join(dirs.freezer, 'freezer.state')), 'THAWED', 'frozen for the kill, thawed after');
    for (const d of Object.values(dirs)) emptyDir(d);
    await cg.remove();
    for (const d of Object.values(dirs)) assert.ok(!fs.existsSync(d));
  });

  test('no hierarchy at all: detect says so', () => {
    const root = tmp();
    const self = path.join(root, 'self-cgroup');
    put(self, '0::/\n');
    assert.equal(detectCgroups(root, self), undefined);
  });
});
