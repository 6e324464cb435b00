// The process tree as an operator sees it: real `ps`, the CLI's banner, tokens, ps,
// stop/start, a config-defined environment, config errors, doctor and run.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI, cli, continuumPids, freePort, isAlive, startTree, stopTree, tempHome, waitFor, type PsRow, type Tree } from '../helpers/tree.js';

/** A hang fails the test instead of blocking the run. */
const LIMIT = { timeout: 60_000 };
const EXPECTED_NAMES = [
  'continuum-supervisor',
  'continuum-session-daemon',
  'continuum-websocket-daemon',
  'continuum-renderer-daemon',
  'continuum-browser-daemon',
  'continuum-egress-proxy',
  'continuum-browser-executor',
  'continuum-server-executor',
  'continuum-remote-executor',
  'continuum-agent-executor',
  'continuum-persona-executor',
];

/** Every cgroup the tree at `home` made (named after a hash of its home), in every hierarchy. */
function treeCgroups(home: string): string[] {
  const prefix = `continuum-${createHash('sha256').update(home).digest('hex').slice(0, 10)}-`;
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (e.name.startsWith(prefix)) found.push(path.join(dir, e.name));
      else if (depth < 3 && !e.name.startsWith('continuum-')) walk(path.join(dir, e.name), depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return found;
}

/** Runs the real `ps -eo pid,args` and returns pid → args. */
function systemPs(): Map<number, string> {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  const map = new Map<number, string>();
  for (const line of out.split('\n').slice(1)) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (m) map.set(Number(m[1]), m[2]!);
  }
  return map;
}

function ppidOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Pids of every live process whose command line contains `marker`. */
function pidsWithMarker(marker: string): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker) && isAlive(Number(entry))) out.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return out;
}

function livePids(rows: PsRow[]): number[] {
  return rows.map((r) => r.pid).filter((p): p is number => p !== null);
}

function writeConfig(config: unknown): string {
  const dir = tempHome('ct-cfg-');
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

describe('the default process tree', () => {
  let tree: Tree;
  before(async () => {
    tree = await startTree();
  });
  after(async () => {
    await stopTree(tree);
  });

  test('ps -eo pid,args shows every process under its name, with the pids continuum ps reports', LIMIT, async () => {
    const rows = await tree.ps();
    assert.deepEqual(rows.map((r) => r.name).sort(), [...EXPECTED_NAMES].sort());
    const sys = systemPs();
    for (const row of rows) {
      assert.equal(row.state, 'running', `${row.id} is ${row.state}`);
      assert.ok(row.pid !== null, `${row.id} has no pid`);
      const args = sys.get(row.pid);
      assert.ok(args !== undefined, `pid ${row.pid} (${row.name}) is not in ps -eo pid,args`);
      assert.equal(args.split(/\s+/)[0], row.name, `ps shows pid ${row.pid} as "${args}", continuum ps as ${row.name}`);
    }
    // The supervisor is the `continuum start` process itself; every other process is its child,
    // except that a confined executor sits inside its sandbox: supervisor → bwrap (launcher) →
    // bwrap (the sandbox's init, pid 1 inside) → executor.
    const supervisor = rows.find((r) => r.id === 'supervisor')!;
    assert.equal(supervisor.pid, tree.proc!.pid);
    for (const row of rows.filter((r) => r.id !== 'supervisor')) {
      if (!row.sandbox?.confined) {
        assert.equal(ppidOf(row.pid!), supervisor.pid, `${row.name} is not a child of the supervisor`);
        continue;
      }
      const init = ppidOf(row.pid!)!;
      const launcher = ppidOf(init)!;
      assert.match(sys.get(init) ?? '', /^\S*bwrap /, `${row.name}'s parent is not its sandbox's init`);
      assert.match(sys.get(launcher) ?? '', /^\S*bwrap /, `${row.name}'s sandbox was not launched by bwrap`);
      assert.equal(ppidOf(launcher), supervisor.pid, `${row.name}'s sandbox is not a child of the supervisor`);
    }
  });

  test('the banner printed by start has the URL and the token hint', () => {
    assert.match(tree.stdout, /Continuum is running \(supervisor pid \d+/);
    assert.ok(tree.stdout.includes(`ws://127.0.0.1:${tree.port}/ws`), `banner lacks the URL:\n${tree.stdout}`);
    assert.ok(tree.stdout.includes(`continuum token <environment> --home ${tree.home}`), `banner lacks the token hint:\n${tree.stdout}`);
    assert.match(tree.stdout, /environments: browser, server, remote, agent, persona/);
  });

  test('continuum token remote prints only the token, and secrets.json is mode 0600', LIMIT, async () => {
    const r = await cli(['token', 'remote', '--home', tree.home]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${tree.token('remote')}\n`);
    assert.equal(r.stdout.split('\n').filter(Boolean).length, 1);
    assert.ok(tree.token('remote').length >= 16);
    assert.notEqual(tree.token('remote'), tree.token('agent'));
    const mode = fs.statSync(path.join(tree.home, 'secrets.json')).mode & 0o777;
    assert.equal(mode, 0o600, `secrets.json is mode ${mode.toString(8)}`);
  });

  test('a second start on the same home fails with a clear message and leaves the first running', LIMIT, async () => {
    const before_ = await tree.ps();
    const r = await cli(['start', '--home', tree.home, '--port', String(await freePort())]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /already running/);
    assert.ok(r.stderr.includes(String(tree.proc!.pid)), `message does not name the running supervisor:\n${r.stderr}`);
    assert.match(r.stderr, /continuum stop/);
    const after_ = await tree.ps();
    assert.deepEqual(after_.map((x) => [x.id, x.pid, x.state]), before_.map((x) => [x.id, x.pid, x.state]));
  });

  test('continuum doctor runs and mentions cgroups and bubblewrap', LIMIT, async () => {
    const r = await cli(['doctor']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /cgroups/);
    assert.match(r.stdout, /bubblewrap/);
  });

  test('continuum run --env remote passes output and the exit code through', LIMIT, async () => {
    const r = await cli(['run', '--home', tree.home, '--env', 'remote', '--', 'sh', '-c', 'echo hi; exit 7']);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, 'hi\n');
  });

  test('continuum run --session keeps the working directory across runs', LIMIT, async () => {
    const session = `cwd-${randomUUID().slice(0, 8)}`;
    const first = await cli(['run', '--home', tree.home, '--env', 'remote', '--session', session, '--', 'cd /tmp']);
    assert.equal(first.code, 0, first.stderr);
    const second = await cli(['run', '--home', tree.home, '--env', 'remote', '--session', session, '--', 'pwd']);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, '/tmp\n');
    // A different session starts in its own workspace, not in /tmp.
    const other = await cli(['run', '--home', tree.home, '--env', 'remote', '--session', `${session}-b`, '--', 'pwd']);
    assert.equal(other.code, 0, other.stderr);
    assert.notEqual(other.stdout, '/tmp\n');
  });
});

describe('stopping', () => {
  test('SIGTERM to the supervisor stops the whole tree and leaves no process', LIMIT, async () => {
    const tree = await startTree();
    try {
      const rows = await tree.ps();
      const pids = livePids(rows);
      assert.equal(pids.length, EXPECTED_NAMES.length);
      // A command running in a session must not outlive the tree either.
      const marker = `ct-marker-${randomUUID()}`;
      const client = await tree.client('remote', { reconnect: false });
      const pending = client.exec(`exec -a ${marker} sleep 60`).catch((e: Error) => e);
      const shellPids = await waitFor(() => {
        const p = pidsWithMarker(marker);
        return p.length ? p : undefined;
      }, 10_000, 'the session command to start');

      const code = await tree.stop();
      assert.equal(code, 0);
      await waitFor(() => pids.every((p) => !isAlive(p)), 6_000, 'every process of the tree to exit');
      const left = continuumPids();
      for (const p of pids) assert.ok(!left.has(p), `pid ${p} (${left.get(p)}) is still a continuum process`);
      await waitFor(() => shellPids.every((p) => !isAlive(p)), 6_000, 'the session command to be killed');
      assert.deepEqual(pidsWithMarker(marker), []);
      assert.ok((await pending) instanceof Error, 'the pending command should fail when the tree stops');
      await client.close();
      assert.ok(!fs.existsSync(path.join(tree.home, 'run', 'supervisor.json')), 'supervisor.json was left behind');
      assert.deepEqual(treeCgroups(tree.home), [], 'the tree left cgroups behind');
    } finally {
      await stopTree(tree);
    }
  });

  test('a foreground supervisor whose output pipe was closed still stops cleanly on SIGTERM', LIMIT, async () => {
    // As when whatever ran `continuum start` died: the supervisor's "stopping…" line meets EPIPE.
    const home = tempHome();
    const port = await freePort();
    const proc = spawn(process.execPath, [CLI, 'start', '--home', home, '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      await waitFor(() => out.includes('Continuum is running'), 20_000, 'the banner');
      const ps = await cli(['ps', '--home', home, '--json']);
      const pids = livePids((JSON.parse(ps.stdout) as { processes: PsRow[] }).processes);
      assert.ok(treeCgroups(home).length > 0 || !fs.existsSync('/sys/fs/cgroup'), 'the tree made cgroups');
      proc.stdout!.destroy();
      proc.stderr!.destroy();
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      proc.kill('SIGTERM');
      assert.equal(await exited, 0, 'the supervisor exits 0');
      await waitFor(() => pids.every((p) => !isAlive(p)), 6_000, 'every process of the tree to exit');
      assert.deepEqual(treeCgroups(home), [], 'the tree left cgroups behind');
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
  });

  test('an executor whose relaunch fails leaves no cgroup behind', LIMIT, async () => {
    // The seccomp programs gone from <home>/run/sandbox: every relaunch of a confined executor
    // fails before it starts (as when <home> is deleted under a running tree).
    const tree = await startTree();
    try {
      const sandboxDir = path.join(tree.home, 'run', 'sandbox');
      const programs = fs.existsSync(sandboxDir) ? fs.readdirSync(sandboxDir).filter((f) => f.endsWith('.bpf')) : [];
      if (programs.length === 0) return; // no seccomp on this host: nothing to break here
      for (const f of programs) fs.rmSync(path.join(sandboxDir, f));
      // Twice: the first death may be covered by its warm standby, which was already running.
      const serverLog = path.join(tree.home, 'logs', 'server.log');
      const failed = () => fs.readFileSync(serverLog, 'utf8').split('\n').filter((l) => l.includes('"child failed to start"') && l.includes('browser-0')).length;
      for (let i = 0; i < 2 && failed() === 0; i++) {
        const victim = (await tree.row('browser-0')).pid;
        if (victim) process.kill(victim, 'SIGKILL');
        await waitFor(() => failed() > 0 || undefined, 10_000, 'a failed relaunch of browser-0').catch(() => undefined);
      }
      assert.ok(failed() > 0, 'browser-0 was relaunched and failed');
      assert.equal(await tree.stop(), 0);
      assert.deepEqual(treeCgroups(tree.home), [], 'failed launches left cgroups behind');
    } finally {
      await stopTree(tree);
    }
  });

  test('start --detach, then continuum stop, stops it with nothing left', LIMIT, async () => {
    const home = tempHome();
    const port = await freePort();
    let pids: number[] = [];
    try {
      const r = await cli(['start', '--detach', '--home', home, '--port', String(port)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Continuum is running/);
      assert.ok(r.stdout.includes(`ws://127.0.0.1:${port}/ws`));
      assert.match(r.stdout, /continuum stop --home/);
      const ps = await cli(['ps', '--home', home, '--json']);
      assert.equal(ps.code, 0, ps.stderr);
      const rows = (JSON.parse(ps.stdout) as { processes: PsRow[] }).processes;
      pids = livePids(rows);
      assert.equal(pids.length, EXPECTED_NAMES.length);
      assert.ok(rows.every((row) => row.state === 'running'));

      const stop = await cli(['stop', '--home', home]);
      assert.equal(stop.code, 0, stop.stderr);
      assert.match(stop.stdout, /stopped Continuum/);
      await waitFor(() => pids.every((p) => !isAlive(p)), 6_000, 'every process of the detached tree to exit');
      const left = continuumPids();
      for (const p of pids) assert.ok(!left.has(p), `pid ${p} is still a continuum process`);
      const after_ = await cli(['ps', '--home', home]);
      assert.notEqual(after_.code, 0);
      assert.match(after_.stderr, /not running/);
    } finally {
      // Only if the test failed half-way: end what it started, by pid.
      const supervisorPid = pids[0];
      if (supervisorPid !== undefined && isAlive(supervisorPid)) process.kill(supervisorPid, 'SIGTERM');
    }
  });
});

describe('a sixth environment from config', () => {
  let tree: Tree;
  before(async () => {
    tree = await startTree({ config: { environments: [{ name: 'ci', replicas: 1 }] } });
  });
  after(async () => {
    await stopTree(tree);
  });

  test('gets its own executor process, log, token, and serves shell.exec', LIMIT, async () => {
    const rows = await tree.ps();
    const ci = rows.find((r) => r.id === 'ci-0');
    assert.ok(ci, `no ci-0 in ps: ${rows.map((r) => r.id).join(', ')}`);
    assert.equal(ci.name, 'continuum-ci-executor');
    assert.equal(ci.environment, 'ci');
    assert.equal(ci.state, 'running');
    assert.equal(rows.filter((r) => r.name.endsWith('-executor')).length, 6);
    assert.equal(systemPs().get(ci.pid!)?.split(/\s+/)[0], 'continuum-ci-executor');
    assert.match(tree.stdout, /environments: .*\bci\b/);

    const r = await cli(['token', 'ci', '--home', tree.home]);
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    assert.ok(token.length >= 16);
    assert.equal(token, tree.token('ci'));
    assert.notEqual(token, tree.token('remote'));

    const client = await tree.client('ci', { reconnect: false });
    try {
      assert.equal(client.session.environment, 'ci');
      assert.equal(client.session.executor.pid, ci.pid);
      const res = await client.exec('echo "env=$CONTINUUM_ENVIRONMENT"; exit 3');
      assert.equal(res.exitCode, 3);
      assert.equal(res.stdout, 'env=ci\n');
      const ping = await client.ping();
      assert.equal(ping.environment, 'ci');
      assert.equal(ping.executor.pid, ci.pid);
    } finally {
      await client.close();
    }
    // The ci token grants ci only.
    await assert.rejects(tree.client('remote', { token: token, reconnect: false }), (e: Error & { rpcCode?: number }) => e.rpcCode === -32001);

    const lines = await waitFor(() => {
      const l = tree.logLines('ci');
      return l.some((x) => x.method === 'shell.exec') ? l : undefined;
    }, 5_000, 'a shell.exec line in ci.log');
    assert.ok(lines.some((x) => x.msg === 'executor started' && x.pid === ci.pid));
    assert.ok(lines.every((x) => x.env === 'ci' || x.env === undefined), 'ci.log has lines of another environment');
    assert.ok(!tree.logLines('server').some((x) => x.method === 'shell.exec'), 'the ci command was logged in server.log');
  });
});

describe('a bad config', () => {
  async function startWith(config: unknown) {
    const home = tempHome();
    const r = await cli(['start', '--home', home, '--port', String(await freePort()), '--config', writeConfig(config)], { timeoutMs: 20_000 });
    return { ...r, home };
  }

  test('replicas: "two" makes start exit non-zero naming environments[0].replicas', LIMIT, async () => {
    const r = await startWith({ environments: [{ name: 'ci', replicas: 'two' }] });
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes('environments[0].replicas'), `stderr does not name the field:\n${r.stderr}`);
    assert.ok(!fs.existsSync(path.join(r.home, 'run', 'supervisor.json')));
  });

  test('an unknown field makes start exit non-zero naming where it is', LIMIT, async () => {
    const r = await startWith({ environments: [{ name: 'remote', replicas: 1, colour: 'red' }] });
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes('environments[0]'), `stderr does not name the path:\n${r.stderr}`);
    assert.ok(r.stderr.includes('colour'), `stderr does not name the field:\n${r.stderr}`);

    const top = await startWith({ logs: { maxBytes: 20_000, rotateDaily: true } });
    assert.notEqual(top.code, 0);
    assert.ok(top.stderr.includes('logs'), top.stderr);
    assert.ok(top.stderr.includes('rotateDaily'), top.stderr);
  });
});
