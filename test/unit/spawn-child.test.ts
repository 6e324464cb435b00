// A confined executor's lines are stamped with its own host pid, even the first ones, which
// can come before the supervisor has read that pid from the sandbox (bwrap's --info-fd).
// Here a stand-in launcher starts the "executor", which logs at once, and reports itself as
// the sandbox's init only later.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChildBoot } from '../../src/protocol/internal.js';
import type { ExecutorLaunch } from '../../src/sandbox/launcher.js';
import type { ChildSpec } from '../../src/supervisor/child-spec.js';
import type { LogRouter } from '../../src/supervisor/log-router.js';
import { spawnChild } from '../../src/supervisor/spawn-child.js';

const EXECUTOR = `process.stdout.write(JSON.stringify({ msg: 'executor ready', pid: process.pid }) + '\\n'); setTimeout(() => {}, 1500);`;
const LAUNCHER = `
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const executor = spawn(process.execPath, ['-e', ${JSON.stringify(EXECUTOR)}], { stdio: ['ignore', 'inherit', 'inherit'] });
setTimeout(() => { fs.writeSync(4, JSON.stringify({ 'child-pid': process.pid })); fs.closeSync(4); }, 300);
executor.on('exit', () => process.exit(0));`;

describe('spawnChild', () => {
  it("stamps a confined executor's first lines with its own pid, not the launcher's", async () => {
    const lines: { pid: number; line: string }[] = [];
    const logs = {
      executorLine: (_env: string, pid: number, _id: string, line: string) => lines.push({ pid, line }),
      stderr: () => undefined,
      write: () => undefined,
    } as unknown as LogRouter;
    const spec = { id: 'remote-0', name: 'continuum-remote-executor', role: 'executor', environment: 'remote', module: '', logTarget: 'remote', trusted: false } as unknown as ChildSpec;
    const launch: ExecutorLaunch = {
      command: process.execPath,
      args: ['-e', LAUNCHER],
      env: { PATH: process.env.PATH },
      extraStdio: ['pipe'],
      infoFd: 4,
      cgroup: undefined,
      boot: {} as ChildBoot,
      release: () => undefined,
    };
    const child = spawnChild(spec, {} as ChildBoot, {}, logs, launch);
    const launcherPid = child.proc.pid;
    await child.pidKnown;
    await new Promise<void>((resolve) => child.proc.once('exit', () => resolve()));
    assert.notEqual(child.pid, launcherPid, 'the executor is the launcher\'s child');
    assert.equal(lines.length, 1);
    const own = (JSON.parse(lines[0]!.line) as { pid: number }).pid;
    assert.equal(own, child.pid, 'the sandbox pid read is the executor\'s');
    assert.equal(lines[0]!.pid, child.pid, `stamped with ${lines[0]!.pid}, the launcher is ${launcherPid}`);
  });
});
