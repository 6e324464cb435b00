// Fault injection, log disk full (issue 4): <home>/logs is a small tmpfs that fills up.
// Commands keep working; the lost lines are counted (`continuum ps`), no file is left with
// a half-written line, and when space returns the gap is written into the log that lost
// lines and into server.log.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RawClient, type RpcMessage } from '../helpers/raw-client.js';
import { skipWithoutMounts, TestDisk } from '../helpers/tmpfs.js';
import { cli, startTree, stopTree, tempHome, waitFor, type Tree } from '../helpers/tree.js';

const LIMIT = { timeout: 120_000 };
const COMMANDS = 300;

function lostLogLines(psJson: string): Record<string, number> {
  return (JSON.parse(psJson) as { lostLogLines: Record<string, number> }).lostLogLines;
}

describe('faults: log disk full', skipWithoutMounts(), () => {
  let tree: Tree;
  let disk: TestDisk;
  let raw: RawClient | undefined;
  before(async () => {
    const home = tempHome();
    disk = new TestDisk(path.join(home, 'logs'), 1024 * 1024).mount();
    tree = await startTree({ home });
  });
  after(async () => {
    raw?.close();
    await stopTree(tree);
    disk.unmount();
  });

  test(`commands go on while the log disk is full; the loss is counted, and reported when space returns`, LIMIT, async () => {
    raw = await RawClient.open(tree.url, tree.token('remote'));
    assert.equal((await raw.call('session.connect', { environment: 'remote', sessionId: 'logfull' })).error, undefined);
    const pidsBefore = (await tree.ps()).map((r) => `${r.id}:${r.pid}`);
    const filled = disk.fill();

    // Every kind of command: each one logs a line (edge) and some log more (executor).
    const started = Date.now();
    let okCount = 0;
    for (let i = 0; i < COMMANDS; i++) {
      const m: RpcMessage = i % 3 === 0
        ? await raw.call('shell.exec', { command: `echo ${i}` })
        : i % 3 === 1
          ? await raw.call('state.set', { key: `k${i % 10}`, value: i })
          : await raw.call('log.write', { level: 'info', message: `line ${i} `.padEnd(200, 'x') });
      assert.equal(m.error, undefined, `command ${i} failed with the log disk full: ${JSON.stringify(m.error)}`);
      okCount++;
    }
    const fullMs = Date.now() - started;

    const lost = await waitFor(async () => {
      const r = await cli(['ps', '--home', tree.home, '--json']);
      const l = lostLogLines(r.stdout);
      return (l.remote ?? 0) > 0 ? l : undefined;
    }, 10_000, 'continuum ps to count lost remote.log lines');
    const text = (await cli(['ps', '--home', tree.home])).stdout;
    assert.match(text, new RegExp(`! ${lost.remote} lines could not be written to remote\\.log`));

    // Space returns: the next lines land, and the gap is written down.
    disk.free();
    assert.deepEqual((await raw.call('state.set', { key: 'after', value: true })).result, { ok: true });
    const gap = await waitFor(() => tree.logLines('remote').find((l) => /log lines could not be written to remote\.log/.test(String(l.msg))), 10_000, 'the loss line in remote.log');
    assert.equal(gap.error, 'ENOSPC');
    assert.ok(Number(gap.lostLines) > 0);
    assert.ok(Number(gap.until) >= Number(gap.since));
    await waitFor(() => tree.logLines('server').some((l) => l.file === 'remote.log' && l.error === 'ENOSPC'), 10_000, 'the loss line in server.log');
    await waitFor(() => tree.logLines('remote').some((l) => l.method === 'state.set' && l.outcome === 'ok' && Number(l.time) > Number(gap.since)), 10_000, 'new command lines in remote.log');

    // Every file holds whole NDJSON lines only (logLines parses each one).
    for (const name of fs.readdirSync(disk.dir).filter((f) => f.endsWith('.log'))) {
      const body = fs.readFileSync(path.join(disk.dir, name), 'utf8');
      assert.ok(body === '' || body.endsWith('\n'), `${name} ends with a partial line`);
      tree.logLines(name.replace(/\.log$/, ''));
    }
    assert.deepEqual((await tree.ps()).map((r) => `${r.id}:${r.pid}`), pidsBefore, 'a process was restarted');
    const finalLost = lostLogLines((await cli(['ps', '--home', tree.home, '--json'])).stdout);
    console.log(`# log disk full: tmpfs 1 MiB, filler ${filled} bytes; ${okCount}/${COMMANDS} commands ok in ${fullMs} ms while full; lost lines ${JSON.stringify(finalLost)}; gap line: ${gap.msg}`);
  });
});
