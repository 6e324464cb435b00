// -32002 against a real tree over a bare WebSocket: fs paths that leave the session
// workspace (by .., absolute paths or symlinks), and command namespaces an environment's
// policy denies. Nothing outside the workspace may change.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RawClient } from '../helpers/raw-client.js';
import { startTree, stopTree, type Tree } from '../helpers/tree.js';
import { assertPong, CONFIG, errorOf, ok, plantSentinel, rawClients } from './support/protocol-errors.js';

let tree: Tree;
const opened: RawClient[] = [];
const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'ct-outside-'));
const { bound, workspace } = rawClients(() => tree, opened);

describe('protocol errors', { timeout: 120_000 }, () => {
  before(async () => {
    tree = await startTree({ config: CONFIG });
    // A neighbouring session, so that a path out of the workspace has a real file to reach.
    await plantSentinel(bound);
  });

  after(async () => {
    for (const r of opened.splice(0)) r.close();
    await stopTree(tree);
    fs.rmSync(outside, { recursive: true, force: true });
  });

  test('fs paths that leave the workspace → -32002 (.., absolute, symlinks out, dangling symlinks)', async () => {
    const r = await bound('server', 'pe-fs');
    const ws = workspace('server', 'pe-fs');
    fs.writeFileSync(path.join(outside, 'keep.txt'), 'outside');

    const denied: [string, Record<string, unknown>][] = [
      ['fs.read', { path: '../x' }],
      ['fs.read', { path: '../sentinel/guard.txt' }],
      ['fs.write', { path: '../x', content: 'escaped' }],
      ['fs.write', { path: 'sub/../../x', content: 'escaped' }],
      ['fs.read', { path: '../../../../../../../../etc/passwd' }],
      ['fs.read', { path: '/etc/passwd' }],
      ['fs.stat', { path: '/etc' }],
      ['fs.list', { path: '/' }],
      ['fs.list', { path: '..' }],
      ['fs.write', { path: path.join(outside, 'abs-new.txt'), content: 'escaped' }],
      ['fs.delete', { path: path.join(outside, 'keep.txt') }],
      ['fs.delete', { path: '..' }],
    ];
    for (const [method, params] of denied) errorOf(await r.call(method, params), -32002, `${method} ${JSON.stringify(params)}`);

    // Symlinks made by the shell that point out of the workspace.
    const made = await r.call('shell.exec', {
      command: `ln -s /etc leak && ln -s ${outside} out && ln -s ../../.. up && ln -s ${outside}/dangle-target.txt dangling && ln -s ${outside}/nodir ddir`,
    });
    assert.equal(ok<{ exitCode: number }>(made).exitCode, 0);
    const viaLinks: [string, Record<string, unknown>][] = [
      ['fs.read', { path: 'leak/passwd' }],
      ['fs.stat', { path: 'leak/passwd' }],
      ['fs.list', { path: 'leak' }],
      ['fs.read', { path: 'out/keep.txt' }],
      ['fs.write', { path: 'out/new.txt', content: 'escaped' }],
      ['fs.delete', { path: 'out/keep.txt' }],
      ['fs.read', { path: 'up/secrets.json' }],
      ['fs.write', { path: 'dangling', content: 'escaped' }],
      ['fs.write', { path: 'ddir/f.txt', content: 'escaped' }],
    ];
    for (const [method, params] of viaLinks) errorOf(await r.call(method, params), -32002, `${method} ${JSON.stringify(params)}`);

    // Nothing outside changed.
    assert.deepEqual(fs.readdirSync(outside).sort(), ['keep.txt']);
    assert.equal(fs.readFileSync(path.join(outside, 'keep.txt'), 'utf8'), 'outside');
    assert.equal(fs.existsSync(path.join(tree.home, 'workspaces', 'server', 'x')), false);
    // Paths inside still work.
    ok(await r.call('fs.write', { path: 'inside/ok.txt', content: 'fine' }));
    assert.equal(fs.readFileSync(path.join(ws, 'inside/ok.txt'), 'utf8'), 'fine');
    await assertPong(r);
  });

  test('a namespace denied by policy → -32002 and not listed by system.commands', async () => {
    const r = await bound('persona', 'pe-persona');
    const denied: [string, unknown][] = [
      ['shell.exec', { command: 'touch policy-breach' }],
      ['fs.read', { path: 'x' }],
      ['fs.write', { path: 'policy-breach', content: 'x' }],
      ['fs.list', {}],
      ['log.write', { level: 'info', message: 'x' }],
      ['process.info', undefined],
    ];
    for (const [method, params] of denied) errorOf(await r.call(method, params), -32002, method);
    assert.equal(fs.existsSync(path.join(workspace('persona', 'pe-persona'), 'policy-breach')), false);

    ok(await r.call('state.set', { key: 'allowed', value: true }));
    assert.equal(ok<{ value: unknown }>(await r.call('state.get', { key: 'allowed' })).value, true);
    await assertPong(r);

    const list = ok<{ name: string; description: string; params: unknown; result: unknown }[]>(await r.call('system.commands'));
    const names = list.map((c) => c.name);
    for (const name of ['system.ping', 'system.commands', 'state.get', 'state.set', 'state.delete', 'state.list']) assert.ok(names.includes(name), `${name} is listed`);
    const leaked = names.filter((n) => /^(shell|fs|log|process)\./.test(n));
    assert.deepEqual(leaked, [], 'denied commands are not listed');
    for (const c of list) {
      assert.equal(typeof c.description, 'string');
      assert.equal(typeof c.params, 'object');
      assert.equal(typeof c.result, 'object');
    }

    // The same list for an environment that allows everything does include them.
    const s = await bound('server', 'pe-commands');
    const all = ok<{ name: string }[]>(await s.call('system.commands')).map((c) => c.name);
    for (const name of ['shell.exec', 'fs.read', 'log.write', 'process.info']) assert.ok(all.includes(name), `${name} is listed for server`);
  });
});
