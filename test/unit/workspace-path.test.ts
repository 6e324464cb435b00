import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveInWorkspace } from '../../src/executor/workspace-path.js';

describe('workspace paths', () => {
  let root: string;
  let ws: string;
  before(() => {
    root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'ws-')));
    ws = path.join(root, 'ws');
    fs.mkdirSync(path.join(ws, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(root, 'secret'), 'x');
    fs.symlinkSync(path.join(root, 'secret'), path.join(ws, 'out-link'));
    fs.symlinkSync('sub', path.join(ws, 'in-link'));
    fs.symlinkSync(path.join(root, 'missing'), path.join(ws, 'dangling'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  const forbidden = (p: string) => assert.rejects(resolveInWorkspace(ws, p), (e: Error & { rpcCode?: number }) => e.rpcCode === -32002);

  it('keeps paths inside the workspace', async () => {
    assert.equal(await resolveInWorkspace(ws, 'a.txt'), path.join(ws, 'a.txt'));
    assert.equal(await resolveInWorkspace(ws, 'sub/../b'), path.join(ws, 'b'));
    assert.equal(await resolveInWorkspace(ws, 'in-link/new/file'), path.join(ws, 'sub', 'new', 'file'));
    assert.equal(await resolveInWorkspace(ws, path.join(ws, 'sub')), path.join(ws, 'sub'));
  });

  it('refuses .., absolute paths elsewhere, and symlinks out (dangling too)', async () => {
    await forbidden('../secret');
    await forbidden('sub/../../secret');
    await forbidden('/etc/passwd');
    await forbidden('out-link');
    await forbidden('dangling');
    await forbidden('dangling/x');
    await assert.rejects(resolveInWorkspace(ws, 'a\0b'), (e: Error & { rpcCode?: number }) => e.rpcCode === -32602);
  });
});
