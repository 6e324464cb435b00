// Logs (DESIGN.md rule 5): one NDJSON file per environment, written outside the executors:
// a line per command, session events, log.write, executor stderr and crashes in the env's
// log; daemon and supervisor events in server.log; size-based rotation; `continuum logs`.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RawClient, type RpcMessage } from '../helpers/raw-client.js';
import { cli, startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';

/** A hang fails the test instead of blocking the run. */
const LIMIT = { timeout: 60_000 };
const ENV_LOGS = ['browser', 'server', 'remote', 'agent', 'persona'];

// --- helpers of this file -------------------------------------------------------------

/** A request with an id of our choosing, so its log line can be found. */
async function rpc(raw: RawClient, id: string, method: string, params?: unknown): Promise<RpcMessage> {
  raw.sendRaw(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }));
  return raw.wait((m) => m.id === id && m.method === undefined, 15_000);
}

async function ok(raw: RawClient, id: string, method: string, params?: unknown): Promise<unknown> {
  const m = await rpc(raw, id, method, params);
  assert.equal(m.error, undefined, `${method} failed: ${JSON.stringify(m.error)}`);
  return m.result;
}

async function openSession(tree: Tree, environment: string, sessionId: string): Promise<RawClient> {
  const raw = await RawClient.open(tree.url, tree.token(environment));
  await ok(raw, `${sessionId}-connect`, 'session.connect', { environment, sessionId, mode: 'new' });
  return raw;
}

function logText(tree: Tree, file: string): string {
  const p = path.join(tree.home, 'logs', `${file}.log`);
  return fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : '';
}

/** Waits until `file`.log has a line matching `match`; returns the matching lines. */
function waitForLines(tree: Tree, file: string, match: (l: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>[]> {
  return waitFor(() => {
    const lines = tree.logLines(file).filter(match);
    return lines.length ? lines : undefined;
  }, 10_000, what);
}

function shortId(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

// --- content and routing ------------------------------------------------------------------

describe('what goes into which log', () => {
  let tree: Tree;
  let remote: RawClient;
  let agent: RawClient;
  const remoteSession = shortId('lr');
  const agentSession = shortId('la');
  let remotePid: number;
  let agentPid: number;

  before(async () => {
    tree = await startTree();
    remote = await openSession(tree, 'remote', remoteSession);
    agent = await openSession(tree, 'agent', agentSession);
    remotePid = (await tree.row('remote-0')).pid!;
    agentPid = (await tree.row('agent-0')).pid!;
  });
  after(async () => {
    remote?.close();
    agent?.close();
    await stopTree(tree);
  });

  test('each command makes one line in its environment log, with every field', LIMIT, async () => {
    await ok(remote, 'r-ping', 'system.ping');
    await ok(remote, 'r-exec', 'shell.exec', { command: 'echo one' });
    await ok(remote, 'r-set', 'state.set', { key: 'k', value: 1 });
    const failed = await rpc(remote, 'r-fail', 'fs.read', { path: 'does-not-exist.txt' });
    assert.ok(failed.error, 'fs.read of a missing file should fail');
    await ok(agent, 'a-ping', 'system.ping');
    await ok(agent, 'a-exec', 'shell.exec', { command: 'echo two' });

    const expected: [string, string, string, string][] = [
      ['remote', 'r-ping', 'system.ping', 'ok'],
      ['remote', 'r-exec', 'shell.exec', 'ok'],
      ['remote', 'r-set', 'state.set', 'ok'],
      ['remote', 'r-fail', 'fs.read', 'error'],
      ['agent', 'a-ping', 'system.ping', 'ok'],
      ['agent', 'a-exec', 'shell.exec', 'ok'],
    ];
    for (const [env, requestId, method, outcome] of expected) {
      const sessionId = env === 'remote' ? remoteSession : agentSession;
      await waitForLines(tree, env, (l) => l.requestId === requestId && l.sessionId === sessionId, `the ${requestId} line in ${env}.log`);
      const lines = tree.logLines(env).filter((l) => l.requestId === requestId && l.sessionId === sessionId);
      assert.equal(lines.length, 1, `${requestId}: ${lines.length} lines in ${env}.log`);
      const line = lines[0]!;
      assert.equal(typeof line.time, 'number');
      assert.ok(Math.abs(Number(line.time) - Date.now()) < 10 * 60_000, 'time is not a current epoch-ms timestamp');
      assert.equal(typeof line.level, 'number');
      assert.equal(line.level, outcome === 'ok' ? 30 : 40);
      assert.equal(typeof line.msg, 'string');
      assert.equal(line.env, env);
      assert.equal(line.method, method);
      assert.equal(typeof line.durationMs, 'number');
      assert.ok(Number(line.durationMs) >= 0);
      assert.equal(line.outcome, outcome);
      assert.equal(line.pid, env === 'remote' ? remotePid : agentPid);
      if (outcome === 'error') assert.equal(line.code, failed.error!.code);
    }

    // The remote session appears in remote.log only, the agent session in agent.log only.
    for (const file of ENV_LOGS) {
      if (file !== 'remote') assert.ok(!logText(tree, file).includes(remoteSession), `the remote session appears in ${file}.log`);
      if (file !== 'agent') assert.ok(!logText(tree, file).includes(agentSession), `the agent session appears in ${file}.log`);
    }
  });

  test('session created, joined and closed are logged in the environment log', LIMIT, async () => {
    const sessionId = shortId('ls');
    const first = await openSession(tree, 'remote', sessionId);
    const second = await RawClient.open(tree.url, tree.token('remote'));
    try {
      const joined = (await ok(second, 'join-1', 'session.join', { sessionId })) as { action: string };
      assert.equal(joined.action, 'joined');
      await ok(second, 'close-1', 'session.close');
      for (const event of ['session.created', 'session.joined', 'session.closed']) {
        const lines = await waitForLines(tree, 'remote', (l) => l.event === event && l.sessionId === sessionId, `${event} in remote.log`);
        assert.equal(lines.length, 1, `${event}: ${lines.length} lines`);
        assert.equal(lines[0]!.env, 'remote');
        assert.equal(typeof lines[0]!.time, 'number');
        assert.equal(typeof lines[0]!.msg, 'string');
      }
      for (const file of ENV_LOGS.filter((f) => f !== 'remote')) assert.ok(!logText(tree, file).includes(sessionId), `session events of a remote session in ${file}.log`);
    } finally {
      first.close();
      second.close();
    }
  });

  test('log.write lands in the environment log with its level; a forged env in data does not move it', LIMIT, async () => {
    const warnText = `note-${randomUUID()}`;
    const errorText = `oops-${randomUUID()}`;
    await ok(remote, 'lw-1', 'log.write', { level: 'warn', message: warnText, data: { env: 'agent', pid: 1, sessionId: 'forged', n: 7 } });
    await ok(remote, 'lw-2', 'log.write', { level: 'error', message: errorText });

    const [warn] = await waitForLines(tree, 'remote', (l) => l.msg === warnText, 'the warn line in remote.log');
    assert.equal(warn!.level, 40);
    assert.equal(warn!.env, 'remote');
    assert.equal(warn!.sessionId, remoteSession);
    assert.equal(warn!.pid, remotePid);
    assert.deepEqual(warn!.data, { env: 'agent', pid: 1, sessionId: 'forged', n: 7 });
    const [error] = await waitForLines(tree, 'remote', (l) => l.msg === errorText, 'the error line in remote.log');
    assert.equal(error!.level, 50);
    assert.equal(error!.env, 'remote');
    assert.equal(error!.sessionId, remoteSession);

    for (const file of ENV_LOGS.filter((f) => f !== 'remote')) {
      assert.ok(!logText(tree, file).includes(warnText), `log.write line in ${file}.log`);
      assert.ok(!logText(tree, file).includes(errorText), `log.write line in ${file}.log`);
    }
  });

  test('daemon and supervisor events go to server.log', LIMIT, async () => {
    const supervisorPid = tree.proc!.pid;
    const server = await waitFor(() => {
      const lines = tree.logLines('server');
      return lines.some((l) => l.msg === 'supervisor ready') ? lines : undefined;
    }, 5_000, 'the "supervisor ready" line');
    assert.ok(server.some((l) => l.component === 'supervisor' && l.msg === 'supervisor ready' && l.pid === supervisorPid), 'no "supervisor ready" in server.log');
    const started = server.filter((l) => l.component === 'supervisor' && l.msg === 'child started').map((l) => l.id);
    for (const id of ['session-daemon', 'websocket-daemon', 'browser-0', 'server-0', 'remote-0', 'agent-0', 'persona-0']) assert.ok(started.includes(id), `no "child started" for ${id}`);
    assert.ok(server.some((l) => l.component === 'websocket-daemon' && /listening/.test(String(l.msg))), 'no websocket daemon line in server.log');
    assert.ok(server.some((l) => l.component === 'session-daemon'), 'no session daemon line in server.log');
    for (const file of ['remote', 'agent', 'browser', 'persona']) {
      const lines = tree.logLines(file);
      assert.ok(!lines.some((l) => l.component === 'supervisor' || l.msg === 'child started' || l.msg === 'supervisor ready'), `supervisor events in ${file}.log`);
      assert.ok(!lines.some((l) => l.component === 'websocket-daemon' && l.sessionId === undefined), `websocket daemon events in ${file}.log`);
    }
  });

  test("an executor's raw stderr is captured into its env log, a daemon's into server.log", LIMIT, async () => {
    // SIGUSR1 makes Node open its inspector and say so (or that it could not) on stderr:
    // real output on the process's own stderr, which nothing but the supervisor reads.
    process.kill(remotePid, 'SIGUSR1');
    const [line] = await waitForLines(tree, 'remote', (l) => l.stream === 'stderr' && l.pid === remotePid, 'stderr of the remote executor in remote.log');
    assert.match(String(line!.msg), /inspector|Debugger/i);
    assert.equal(line!.env, 'remote');
    assert.equal(line!.child, 'continuum-remote-executor');
    assert.equal(line!.level, 50);
    for (const file of ENV_LOGS.filter((f) => f !== 'remote')) {
      assert.ok(!tree.logLines(file).some((l) => l.stream === 'stderr' && l.pid === remotePid), `remote executor stderr in ${file}.log`);
    }

    const edgePid = (await tree.row('websocket-daemon')).pid!;
    process.kill(edgePid, 'SIGUSR1');
    const [edge] = await waitForLines(tree, 'server', (l) => l.stream === 'stderr' && l.pid === edgePid, 'stderr of the websocket daemon in server.log');
    assert.match(String(edge!.msg), /inspector|Debugger/i);
    assert.equal(edge!.child, 'continuum-websocket-daemon');
    for (const file of ENV_LOGS.filter((f) => f !== 'server')) {
      assert.ok(!tree.logLines(file).some((l) => l.stream === 'stderr' && l.pid === edgePid), `websocket daemon stderr in ${file}.log`);
    }
  });

  test("a SIGKILLed executor leaves an 'executor killed by SIGKILL' line in its env log", LIMIT, async () => {
    const pid = (await tree.row('remote-0')).pid!;
    process.kill(pid, 'SIGKILL');
    const [line] = await waitForLines(tree, 'remote', (l) => l.msg === 'executor killed by SIGKILL' && l.pid === pid, 'the crash line in remote.log');
    assert.equal(line!.env, 'remote');
    assert.equal(line!.level, 50);
    assert.equal(line!.executorId, 'remote-0');
    await waitForLines(tree, 'server', (l) => l.msg === 'child exited' && l.childPid === pid && l.signal === 'SIGKILL', 'the exit in server.log');
    for (const file of ENV_LOGS.filter((f) => f !== 'remote')) {
      assert.ok(!tree.logLines(file).some((l) => /executor killed/.test(String(l.msg)) && l.pid === pid), `the remote crash in ${file}.log`);
    }
    const row = await tree.waitRunning('remote-0', pid);
    remotePid = row.pid!;
    await waitForLines(tree, 'remote', (l) => l.msg === 'executor started' && l.pid === row.pid, 'the new executor in remote.log');
    // The session carries on, and its commands are logged with the new pid.
    await waitRestarted(remote);
    await ok(remote, 'r-after-kill', 'system.ping');
    const [after_] = await waitForLines(tree, 'remote', (l) => l.requestId === 'r-after-kill', 'the command after the restart');
    assert.equal(after_!.pid, row.pid);
  });

  test('continuum logs remote --session prints only that session, readably; --json prints raw lines', LIMIT, async () => {
    const otherSession = shortId('lo');
    const other = await openSession(tree, 'remote', otherSession);
    try {
      await ok(other, 'o-exec', 'shell.exec', { command: 'echo other' });
      await ok(remote, 'r-exec-2', 'shell.exec', { command: 'echo mine' });
      await waitForLines(tree, 'remote', (l) => l.requestId === 'o-exec', 'the other session line');
      await waitForLines(tree, 'remote', (l) => l.requestId === 'r-exec-2', 'our session line');

      const expectedRaw = logText(tree, 'remote')
        .split('\n')
        .filter((l) => l && (JSON.parse(l) as { sessionId?: string }).sessionId === remoteSession);
      assert.ok(expectedRaw.length >= 5);

      const readable = await cli(['logs', 'remote', '--home', tree.home, '--session', remoteSession]);
      assert.equal(readable.code, 0, readable.stderr);
      const lines = readable.stdout.split('\n').filter(Boolean);
      assert.equal(lines.length, expectedRaw.length);
      for (const l of lines) {
        assert.ok(!l.startsWith('{'), `not readable: ${l}`);
        assert.ok(l.includes(`[${remoteSession}]`), `line of another session: ${l}`);
        assert.ok(!l.includes(otherSession), `line of the other session: ${l}`);
      }
      assert.ok(lines.some((l) => l.includes('shell.exec') && l.includes('id=r-exec-2')));
      assert.ok(lines.some((l) => /\bWARN\b/.test(l) && l.includes('note-')));

      const json = await cli(['logs', 'remote', '--home', tree.home, '--session', remoteSession, '--json']);
      assert.equal(json.code, 0, json.stderr);
      const raw = json.stdout.split('\n').filter(Boolean);
      assert.deepEqual(raw, expectedRaw);
      for (const l of raw) assert.equal((JSON.parse(l) as { sessionId: string }).sessionId, remoteSession);
    } finally {
      other.close();
    }
  });
});

async function waitRestarted(raw: RawClient): Promise<void> {
  await raw.wait((m) => m.method === 'session.executorRestarted', 10_000);
}

// --- rotation -----------------------------------------------------------------------------

describe('log rotation', () => {
  const maxBytes = 20_000;
  let tree: Tree;
  before(async () => {
    tree = await startTree({ config: { logs: { maxBytes, maxFiles: 2 } } });
  });
  after(async () => {
    await stopTree(tree);
  });

  test('remote.log rotates to .1 and .2, never .3; every file within maxBytes and valid NDJSON', LIMIT, async () => {
    const raw = await openSession(tree, 'remote', shortId('rot'));
    const total = 400;
    try {
      // ~100 KB of command lines: five rotations of 20 KB.
      for (let start = 0; start < total; start += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, i) => ok(raw, `rot-${start + i}`, 'system.ping')));
      }
    } finally {
      raw.close();
    }
    const file = path.join(tree.home, 'logs', 'remote.log');
    await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes(`"requestId":"rot-${total - 1}"`), 10_000, 'the last line in remote.log');

    const files = [file, `${file}.1`, `${file}.2`];
    for (const f of files) assert.ok(fs.existsSync(f), `${path.basename(f)} does not exist`);
    assert.ok(!fs.existsSync(`${file}.3`), 'remote.log.3 exists with maxFiles 2');
    const kept = new Set<number>();
    for (const f of files) {
      const text = fs.readFileSync(f, 'utf8');
      const size = Buffer.byteLength(text);
      assert.ok(size <= maxBytes, `${path.basename(f)} is ${size} bytes, over ${maxBytes}`);
      assert.ok(size > 0, `${path.basename(f)} is empty`);
      assert.ok(text.endsWith('\n'), `${path.basename(f)} ends with a partial line`);
      for (const line of text.split('\n').filter(Boolean)) {
        let rec: { requestId?: unknown; env?: unknown };
        try {
          rec = JSON.parse(line) as typeof rec;
        } catch {
          assert.fail(`${path.basename(f)} has a line that is not JSON: ${line.slice(0, 200)}`);
        }
        assert.equal(rec.env, 'remote');
        const m = /^rot-(\d+)$/.exec(String(rec.requestId));
        if (m) kept.add(Number(m[1]));
      }
    }
    // It rotated more than twice (the oldest lines are gone), and lost nothing it kept.
    assert.ok(!kept.has(0), 'the first command line is still there: fewer than three rotations');
    assert.ok(kept.has(total - 1));
    const oldest = Math.min(...kept);
    for (let i = oldest; i < total; i++) assert.ok(kept.has(i), `rot-${i} is missing between rot-${oldest} and rot-${total - 1}`);
    assert.ok(!fs.readFileSync(`${file}.2`, 'utf8').includes('"msg":"executor started"'), 'the first lines of remote.log were never rotated away');

    // Only remote.log rotated; nothing was lost.
    assert.ok(!fs.existsSync(path.join(tree.home, 'logs', 'agent.log.1')));
    const ps = await cli(['ps', '--home', tree.home, '--json']);
    assert.deepEqual((JSON.parse(ps.stdout) as { lostLogLines: Record<string, number> }).lostLogLines, {});
  });

  test('a restart on the same home keeps remote.log within maxBytes', LIMIT, async () => {
    const file = path.join(tree.home, 'logs', 'remote.log');
    const size = () => fs.statSync(file).size;
    // Fill remote.log up to a few bytes short of maxBytes with log.write lines of measured size.
    const raw = await openSession(tree, 'remote', shortId('fill'));
    try {
      let n = 0;
      const write = async (messageLength: number) => {
        const before_ = size();
        const requestId = `fill-${String(n++).padStart(4, '0')}`;
        const message = `${requestId}-`.padEnd(messageLength, 'x');
        await ok(raw, requestId, 'log.write', { level: 'info', message });
        // Two lines: the log.write line and the edge's command line.
        const both = () => [file, `${file}.1`].map((f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '')).join('');
        await waitFor(() => both().split(`"requestId":"${requestId}"`).length === 3, 5_000, `${requestId} lines in remote.log`);
        return { before: before_, after: size() };
      };
      await write(20); // after the session's own lines
      let probe = await write(20);
      if (probe.after < probe.before) probe = await write(20);
      assert.ok(probe.after > probe.before);
      const overhead = probe.after - probe.before - 20;
      for (let i = 0; i < 20; i++) {
        const room = maxBytes - size();
        if (room >= 0 && room < 60) break;
        const want = room - 30 - overhead;
        await write(want >= 20 ? want : Math.floor(maxBytes / 2));
      }
      const room = maxBytes - size();
      assert.ok(room >= 0 && room < 60, `could not fill remote.log (room ${room})`);
    } finally {
      raw.close();
    }

    // Stop, and start again on the same home: its first lines must not overfill remote.log.
    const { home, port } = tree;
    await stopTree(tree);
    tree = await startTree({ home, port, config: { logs: { maxBytes, maxFiles: 2 } } });
    const pid = (await tree.row('remote-0')).pid!;
    // Its first lines may already have rotated on (the file was nearly full), and a confined
    // executor's start on a loaded CI machine takes seconds: look in every file, and wait long.
    const all = () => [file, `${file}.1`, `${file}.2`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'utf8')).join('');
    await waitFor(() => all().includes(`"pid":${pid},"msg":"executor started"`) && all().includes(`"msg":"executor ready","pid":${pid}`), 30_000, `the new executor's lines (pid ${pid}) in remote.log`).catch(async (err: Error) => {
      // Failed once in a full run and never alone: say what the files and the tree looked like.
      const rows = (await tree.ps().catch(() => [])).map((r) => `${r.id} pid ${r.pid} ${r.state} restarts ${r.restarts}`).join(', ');
      const sizes = [file, `${file}.1`, `${file}.2`, `${file}.3`].map((f) => `${path.basename(f)} ${fs.existsSync(f) ? fs.statSync(f).size : '-'}`).join(', ');
      const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').slice(0, 3000) : '(none)';
      const lost = await cli(['ps', '--home', tree.home, '--json']).then((r) => JSON.stringify((JSON.parse(r.stdout) as { lostLogLines?: unknown }).lostLogLines), () => '?');
      throw new Error(`${err.message}\n  tree: ${rows}\n  files: ${sizes}; lost lines ${lost}\n  remote.log:\n${current}`);
    });
    for (const f of [file, `${file}.1`, `${file}.2`]) {
      const bytes = fs.statSync(f).size;
      assert.ok(bytes <= maxBytes, `${path.basename(f)} is ${bytes} bytes after the restart, over maxBytes ${maxBytes}`);
    }
    assert.ok(!fs.existsSync(`${file}.3`));
  });
});
