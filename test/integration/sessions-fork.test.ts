// session.connect mode "fork" against a real tree: what a fork copies (key-value state,
// shell cwd and exports, workspace files), that the source stays unchanged, and its errors.
// PROTOCOL.md, "Sessions", is the contract.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { ContinuumClient } from '../../src/client/index.js';
import type { Tree } from '../helpers/tree.js';
import { rpcError, SESSION_ID, sessionClients, useSessionTree } from './support/sessions.js';

let tree: Tree;
const { client, joinById, raw, closeAll, workspace } = sessionClients(() => tree);

describe('sessions', { timeout: 120_000 }, () => {
  useSessionTree((t) => (tree = t), () => tree, closeAll);

  /** A source session with state, a cwd below its workspace, an export and files. */
  async function forkSource(id: string): Promise<ContinuumClient> {
    const src = await client('server', { sessionId: id, mode: 'new' });
    await src.state.set('k1', { deep: [1, 2, 3] });
    await src.state.set('k2', 'two');
    await src.exec('mkdir -p proj/sub && cd proj/sub && export FORKVAR=from-source && echo data > here.txt');
    await src.fs.write('top.txt', 'top of source');
    return src;
  }

  test('fork: a new session (new id) starts with a copy of key-value state, shell cwd, exported variables and workspace files', async () => {
    await forkSource('fork-src');
    const f = await client('server', { sessionId: 'fork-src', mode: 'fork' });
    assert.equal(f.session.action, 'forked');
    assert.equal(f.session.environment, 'server');
    assert.match(f.session.sessionId, SESSION_ID);
    assert.notEqual(f.session.sessionId, 'fork-src', 'a fork gets a new id');
    const forkWs = workspace('server', f.session.sessionId);
    assert.ok(fs.existsSync(forkWs), 'the fork has its own workspace folder');

    const f2 = await client('server', { sessionId: 'fork-src', mode: 'fork' });
    assert.equal(f2.session.action, 'forked');
    assert.notEqual(f2.session.sessionId, f.session.sessionId, 'every fork gets its own id');

    assert.deepEqual(await f.state.list(), ['k1', 'k2']);
    assert.deepEqual(await f.state.get('k1'), { deep: [1, 2, 3] });
    assert.equal(await f.state.get('k2'), 'two');
    assert.equal((await f.fs.read('top.txt')).content, 'top of source');
    assert.equal((await f.fs.read('proj/sub/here.txt')).content, 'data\n');
    assert.equal(fs.readFileSync(path.join(forkWs, 'proj/sub/here.txt'), 'utf8'), 'data\n', 'the files are copied into the fork workspace');
    const shell = await f.exec('pwd; echo "$FORKVAR"');
    // The same cwd relative to the workspace, in the fork's own workspace: not the source's.
    assert.equal(shell.stdout, `${forkWs}/proj/sub\nfrom-source\n`, 'the fork shell runs at the copied cwd inside its own workspace');
    assert.equal(shell.cwd, `${forkWs}/proj/sub`);
  });

  test('fork: changes in the fork leave the source unchanged', async () => {
    const src = await forkSource('fork-src2');
    const srcWs = workspace('server', 'fork-src2');
    const f = await client('server', { sessionId: 'fork-src2', mode: 'fork' });
    assert.equal(f.session.action, 'forked');

    await f.state.set('k1', 'changed');
    await f.state.delete('k2');
    await f.state.set('k3', 'only in fork');
    // Relative paths, from wherever the fork's shell is.
    await f.exec('echo forked > here.txt; echo new > only-fork.txt; rm -f ../../top.txt; cd .. && export FORKVAR=changed');
    await f.fs.write('proj/fork-file.txt', 'fork');

    assert.deepEqual(await src.state.list(), ['k1', 'k2']);
    assert.deepEqual(await src.state.get('k1'), { deep: [1, 2, 3] });
    assert.equal(await src.state.get('k2'), 'two');
    const s = await src.exec('pwd; echo "$FORKVAR"');
    assert.equal(s.stdout, `${srcWs}/proj/sub\nfrom-source\n`, 'the source shell is unchanged');
    const files = (await src.exec('find . -type f | sort')).stdout;
    assert.equal(files, './here.txt\n', 'no file of the fork appears in the source');
    assert.equal(fs.readFileSync(path.join(srcWs, 'proj/sub/here.txt'), 'utf8'), 'data\n', 'the source file is unchanged');
    assert.equal(fs.readFileSync(path.join(srcWs, 'top.txt'), 'utf8'), 'top of source', 'the source file still exists');
    assert.deepEqual((await src.fs.list('proj')).entries.map((e) => e.name), ['sub']);

    // A new connection to the source sees the original too.
    const j = await joinById('fork-src2');
    assert.deepEqual(await j.state.list(), ['k1', 'k2']);
  });

  test('fork errors: unknown source → -32010, no source id → -32602', async () => {
    const unknown = await rpcError(client('server', { sessionId: 'no-such-source', mode: 'fork' }));
    assert.equal(unknown.rpcCode, -32010);
    const r = await raw('server');
    const m = await r.call('session.connect', { environment: 'server', mode: 'fork' });
    assert.equal(m.error?.code, -32602);
  });
});
