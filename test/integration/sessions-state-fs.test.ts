// A session's key-value state (state.*) and its workspace files (fs.*) against a real tree.
// PROTOCOL.md, "Commands", is the contract.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Tree } from '../helpers/tree.js';
import { rpcError, sessionClients, useSessionTree } from './support/sessions.js';

let tree: Tree;
const { client, joinById, closeAll, workspace } = sessionClients(() => tree);

describe('sessions', { timeout: 120_000 }, () => {
  useSessionTree((t) => (tree = t), () => tree, closeAll);

  test('state.*: absent key is null, set/get round trips, list is sorted, delete removes', async () => {
    const c = await client('server', { sessionId: 'state-1' });
    assert.deepEqual(await c.state.list(), []);
    assert.equal(await c.state.get('absent'), null);

    const values: Record<string, unknown> = {
      zeta: { nested: { list: [1, 'two', null, true] } },
      alpha: 'text with ünïcödé',
      mid: 42.5,
      Beta: false,
      '0num': [1, 2, 3],
    };
    for (const [k, v] of Object.entries(values)) assert.deepEqual(await c.state.set(k, v), { ok: true });
    for (const [k, v] of Object.entries(values)) assert.deepEqual(await c.state.get(k), v);
    assert.deepEqual(await c.state.list(), Object.keys(values).sort());

    await c.state.set('alpha', 'overwritten');
    assert.equal(await c.state.get('alpha'), 'overwritten');

    assert.deepEqual(await c.state.delete('mid'), { ok: true });
    assert.equal(await c.state.get('mid'), null);
    assert.deepEqual(await c.state.list(), ['0num', 'Beta', 'alpha', 'zeta']);

    // A new connection reads the same.
    const d = await joinById('state-1');
    assert.deepEqual(await d.state.list(), ['0num', 'Beta', 'alpha', 'zeta']);
    assert.deepEqual(await d.state.get('zeta'), values.zeta);
  });

  test('fs.*: write/read (utf8, base64), list, stat, delete inside the workspace; fs and shell see the same files', async () => {
    const c = await client('server', { sessionId: 'fs-1' });
    const ws = workspace('server', 'fs-1');
    const text = 'héllo wörld\n';
    assert.deepEqual(await c.fs.write('docs/readme.txt', text), { ok: true, bytes: Buffer.byteLength(text) });
    assert.deepEqual(await c.fs.read('docs/readme.txt'), { content: text, encoding: 'utf8', bytes: Buffer.byteLength(text) });
    assert.equal(fs.readFileSync(path.join(ws, 'docs/readme.txt'), 'utf8'), text, 'the file is in the session workspace');

    const bin = Buffer.from([0, 1, 2, 254, 255, 10, 13, 0x80, 0xc3]);
    assert.deepEqual(await c.fs.write('bin/data.bin', bin.toString('base64'), 'base64'), { ok: true, bytes: bin.length });
    const back = await c.fs.read('bin/data.bin', 'base64');
    assert.equal(back.encoding, 'base64');
    assert.equal(back.bytes, bin.length);
    assert.deepEqual(Buffer.from(back.content, 'base64'), bin);
    assert.equal((await c.fs.read('docs/readme.txt', 'base64')).content, Buffer.from(text).toString('base64'));

    const root = await c.fs.list();
    assert.deepEqual(root.entries.map((e) => [e.name, e.type]), [['bin', 'directory'], ['docs', 'directory']]);
    const docs = await c.fs.list('docs');
    assert.deepEqual(docs.entries.map((e) => [e.name, e.type, e.size]), [['readme.txt', 'file', Buffer.byteLength(text)]]);

    const st = await c.fs.stat('docs/readme.txt');
    assert.equal(st.type, 'file');
    assert.equal(st.size, Buffer.byteLength(text));
    assert.equal((await c.fs.stat('docs')).type, 'directory');

    // The shell sees what fs.* wrote...
    assert.equal((await c.exec('cat docs/readme.txt')).stdout, text);
    assert.equal((await c.exec('base64 -w0 bin/data.bin')).stdout, bin.toString('base64'));
    // ...and fs.* sees what the shell wrote.
    await c.exec('mkdir -p out && printf "from shell" > out/s.txt && ln -s ../docs/readme.txt out/link.txt');
    assert.equal((await c.fs.read('out/s.txt')).content, 'from shell');
    assert.equal((await c.fs.read('out/link.txt')).content, text, 'a symlink inside the workspace is followed');
    assert.deepEqual((await c.fs.list('out')).entries.map((e) => [e.name, e.type]), [['link.txt', 'symlink'], ['s.txt', 'file']]);

    // fs paths are relative to the workspace, wherever the shell has cd'd to.
    await c.exec('cd out');
    await c.fs.write('root.txt', 'at the root');
    assert.equal((await c.exec('cat ../root.txt; pwd')).stdout, `at the root${ws}/out\n`);

    assert.deepEqual(await c.fs.delete('docs/readme.txt'), { ok: true });
    await rpcError(c.fs.stat('docs/readme.txt'));
    assert.equal((await c.exec('test -e ../docs/readme.txt; echo $?')).stdout, '1\n');
    assert.deepEqual(await c.fs.delete('bin'), { ok: true });
    assert.deepEqual((await c.fs.list()).entries.map((e) => e.name), ['docs', 'out', 'root.txt']);
    await c.exec('rm s.txt');
    await rpcError(c.fs.read('out/s.txt'));
  });
});
