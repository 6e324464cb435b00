// The persistent shell of a session against a real tree (shell.exec): cwd and exports that
// persist, stdin and exit codes, timeouts, streamed output and the per-environment output
// cap. PROTOCOL.md, "Commands", is the contract.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { waitFor, type Tree } from '../helpers/tree.js';
import { resultOf, sessionClients, useSessionTree } from './support/sessions.js';

let tree: Tree;
const { client, raw, closeAll, workspace } = sessionClients(() => tree);

describe('sessions', { timeout: 120_000 }, () => {
  useSessionTree((t) => (tree = t), () => tree, closeAll);

  test('shell.exec: cwd and exported variables persist across calls and a reconnect; per-call env does not', async () => {
    const ws = workspace('server', 'shell-1');
    const c = await client('server', { sessionId: 'shell-1' });
    const first = await c.exec('pwd');
    assert.equal(first.stdout, `${ws}\n`, 'the shell starts in the workspace');

    const r1 = await c.exec('mkdir -p a/b && cd a/b && export KEEP=kept');
    assert.equal(r1.exitCode, 0);
    assert.equal(r1.cwd, `${ws}/a/b`);

    const r2 = await c.exec('pwd; echo "$KEEP"');
    assert.equal(r2.stdout, `${ws}/a/b\nkept\n`);

    const once = await c.exec('echo "$ONCE|$KEEP"', { env: { ONCE: 'one-time', KEEP: 'override' } });
    assert.equal(once.stdout, 'one-time|override\n');
    const after1 = await c.exec('echo "$ONCE|$KEEP"');
    assert.equal(after1.stdout, '|kept\n', 'per-call env is for that call only');

    await c.close();
    const d = await client('server', { sessionId: 'shell-1', mode: 'join' });
    const r3 = await d.exec('pwd; echo "$KEEP"');
    assert.equal(r3.stdout, `${ws}/a/b\nkept\n`, 'cwd and exports survive a reconnect');
    assert.equal(r3.cwd, `${ws}/a/b`);

    await d.exec('cd .. && unset KEEP');
    const r4 = await d.exec('pwd; echo "[$KEEP]"');
    assert.equal(r4.stdout, `${ws}/a\n[]\n`);
  });

  test('shell.exec: stdin, exit codes, stdout and stderr', async () => {
    const c = await client('server', { sessionId: 'shell-2' });
    const cat = await c.exec('cat', { stdin: 'line1\nline2\n' });
    assert.equal(cat.stdout, 'line1\nline2\n');
    const big = await c.exec('wc -c', { stdin: 'x'.repeat(100_000) });
    assert.equal(big.stdout.trim(), '100000');
    const none = await c.exec('cat');
    assert.equal(none.stdout, '', 'no stdin is an empty stdin, not a hang');

    const three = await c.exec('exit 3');
    assert.equal(three.exitCode, 3);
    assert.equal(three.signal, null);
    assert.equal(three.timedOut, false);
    assert.equal((await c.exec('false')).exitCode, 1);
    assert.equal((await c.exec('true')).exitCode, 0);

    const mixed = await c.exec('echo out; echo err >&2; exit 2');
    assert.equal(mixed.stdout, 'out\n');
    assert.equal(mixed.stderr, 'err\n');
    assert.equal(mixed.exitCode, 2);
    assert.equal(mixed.truncated, false);

    const missing = await c.exec('definitely-not-a-command-xyz');
    assert.equal(missing.exitCode, 127);
    assert.match(missing.stderr, /not found/);
  });

  test('shell.exec: timeoutMs kills the command (timedOut true) and the shell stays usable', async () => {
    const c = await client('server', { sessionId: 'shell-3' });
    const r = await c.exec('echo before; sleep 37.25; echo after', { timeoutMs: 400 });
    assert.equal(r.timedOut, true);
    assert.equal(r.stdout, 'before\n');
    assert.ok(r.exitCode !== 0, `a killed command does not exit 0 (exitCode ${r.exitCode}, signal ${r.signal})`);
    const sleeping = () =>
      fs.readdirSync('/proc').some((p) => {
        if (!/^\d+$/.test(p)) return false;
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\x0037.25\x00';
        } catch {
          return false;
        }
      });
    await waitFor(() => !sleeping(), 5_000, 'the timed-out command to be gone');

    const next = await c.exec('echo alive');
    assert.equal(next.stdout, 'alive\n');
    assert.equal(next.timedOut, false);
  });

  test('shell.exec stream:true sends shell.output notifications with the request id before the result', async () => {
    const r = await raw('server');
    const bound = await r.call('session.connect', { environment: 'server', sessionId: 'stream-1' });
    resultOf(bound);

    const res = await r.call('shell.exec', { command: 'echo one; echo two >&2; sleep 0.2; echo three', stream: true });
    const result = resultOf<{ stdout: string; stderr: string; exitCode: number }>(res);
    assert.equal(result.exitCode, 0);
    const resultIndex = r.messages.indexOf(res);
    const notes = r.messages
      .map((m, i) => ({ m, i }))
      .filter(({ m }) => m.method === 'shell.output');
    assert.ok(notes.length >= 2, 'stdout and stderr each arrive as notifications');
    for (const { m, i } of notes) {
      assert.equal(m.id, undefined, 'a notification has no id');
      assert.equal(m.params?.requestId, res.id, 'the notification names the request');
      assert.ok(i < resultIndex, 'notifications come before the result');
    }
    const joined = (stream: string) => notes.filter(({ m }) => m.params?.stream === stream).map(({ m }) => m.params?.data as string).join('');
    assert.equal(joined('stdout'), 'one\nthree\n');
    assert.equal(joined('stderr'), 'two\n');
    assert.equal(result.stdout, 'one\nthree\n');
    assert.equal(result.stderr, 'two\n');

    // Without stream, no notifications.
    const before = r.messages.length;
    const quiet = await r.call('shell.exec', { command: 'echo silent' });
    assert.equal(resultOf<{ stdout: string }>(quiet).stdout, 'silent\n');
    assert.equal(r.messages.slice(before).filter((m) => m.method === 'shell.output').length, 0);
  });

  test('shell.exec output past the environment cap is cut and truncated is true', async () => {
    const remote = await client('remote', { sessionId: 'cap-1' });
    const over = await remote.exec("head -c 10000 /dev/zero | tr '\\0' a");
    assert.equal(over.truncated, true);
    assert.equal(over.stdout, 'a'.repeat(2048));
    const overErr = await remote.exec("head -c 5000 /dev/zero | tr '\\0' b >&2");
    assert.equal(overErr.truncated, true);
    assert.equal(overErr.stderr, 'b'.repeat(2048));
    const under = await remote.exec("head -c 1000 /dev/zero | tr '\\0' c");
    assert.equal(under.truncated, false);
    assert.equal(under.stdout, 'c'.repeat(1000));

    // The cap is per environment: server keeps its default.
    const server = await client('server', { sessionId: 'cap-2' });
    const full = await server.exec("head -c 10000 /dev/zero | tr '\\0' a");
    assert.equal(full.truncated, false);
    assert.equal(full.stdout.length, 10000);
  });
});
