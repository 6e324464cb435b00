// The audit trail (issue 4): the supervisor appends every session event and command of an
// environment to <home>/audit/<env>.jsonl, each record carrying the SHA-256 of the one
// before it; `continuum audit verify` finds an edited, deleted or reordered record.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cli, startTree, stopTree, tempHome, type Tree } from '../helpers/tree.js';

const LIMIT = { timeout: 60_000 };
const SECRET = 'TOPSECRET-7f3a';

describe('audit trail', () => {
  let tree: Tree;
  let lines: string[];

  before(async () => {
    tree = await startTree();
    const client = await tree.client('remote', { sessionId: 'audited' });
    await client.exec(`echo ${SECRET}`);
    await client.exec('exit 4');
    await client.state.set('k', SECRET);
    await client.fs.read('missing').catch(() => undefined);
    await client.closeSession();
    await client.close();
    const agent = await tree.client('agent');
    await agent.ping();
    await agent.close();
    await stopTree(tree); // the trail is complete once the supervisor has stopped
    lines = fs.readFileSync(path.join(tree.home, 'audit', 'remote.jsonl'), 'utf8').split('\n').filter(Boolean);
  });
  after(() => stopTree(tree));

  test('records who, what, when and the outcome of every session event and command, never output or secrets', LIMIT, () => {
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      records.map((r) => [r.event, r.method ?? null, r.outcome]),
      [
        ['session.created', null, 'ok'],
        ['command', 'shell.exec', 'ok'],
        ['command', 'shell.exec', 'ok'],
        ['command', 'state.set', 'ok'],
        ['command', 'fs.read', 'error'],
        ['session.closed', null, 'ok'],
      ],
    );
    for (const r of records) {
      assert.equal(r.env, 'remote');
      assert.equal(r.sessionId, 'audited');
      assert.match(String(r.tokenId), /^[0-9a-f]{12}$/);
      assert.match(String(r.remote), /^127\.0\.0\.1:\d+$/);
      assert.equal(typeof r.time, 'number');
    }
    assert.equal(records[4]!.code, -32602);
    assert.deepEqual(records.map((r) => r.seq), [1, 2, 3, 4, 5, 6]);
    const all = fs.readdirSync(path.join(tree.home, 'audit')).map((f) => fs.readFileSync(path.join(tree.home, 'audit', f), 'utf8')).join('');
    assert.ok(!all.includes(SECRET), 'the audit holds neither output nor params');
    assert.ok(!all.includes(tree.token('remote')), 'the audit holds no token');
    assert.ok(fs.existsSync(path.join(tree.home, 'audit', 'agent.jsonl')), 'each environment has its own trail');
  });

  test('`continuum audit verify` passes an intact chain, also across a restart of the supervisor', LIMIT, async () => {
    const ok = await cli(['audit', 'verify', '--home', tree.home]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^agent: \d+ records, chain intact$/m);
    assert.match(ok.stdout, /^remote: 6 records, chain intact$/m);

    // The chain goes on where the previous supervisor left it.
    const again = await startTree({ home: tree.home });
    const client = await again.client('remote', { sessionId: 'later' });
    await client.ping();
    await client.close();
    await stopTree(again);
    const r = await cli(['audit', 'verify', 'remote', '--home', tree.home]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^remote: 8 records, chain intact$/m);
  });

  /** A copy of the trail, tampered with by `change`, verified by the CLI. */
  async function tampered(change: (lines: string[]) => string[]): Promise<{ code: number | null; stdout: string }> {
    const home = tempHome('ct-audit-');
    fs.mkdirSync(path.join(home, 'audit'));
    const src = path.join(tree.home, 'audit');
    fs.copyFileSync(path.join(src, 'remote.head'), path.join(home, 'audit', 'remote.head'));
    fs.writeFileSync(path.join(home, 'audit', 'remote.jsonl'), `${change([...lines]).join('\n')}\n`);
    const r = await cli(['audit', 'verify', 'remote', '--home', home]);
    return { code: r.code, stdout: r.stdout };
  }

  test('an edited record is caught', LIMIT, async () => {
    // The remote trail has grown by two records in the previous test; use that file as is.
    lines = fs.readFileSync(path.join(tree.home, 'audit', 'remote.jsonl'), 'utf8').split('\n').filter(Boolean);
    const r = await tampered((l) => {
      l[2] = l[2]!.replace('"outcome":"ok"', '"outcome":"error"');
      return l;
    });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /remote: BROKEN at record 4 of .*: its prev is not the SHA-256 of the record before it/);
  });

  test('a deleted record is caught', LIMIT, async () => {
    const r = await tampered((l) => l.filter((_, i) => i !== 3));
    assert.equal(r.code, 1);
    assert.match(r.stdout, /BROKEN at record 4 of /);
  });

  test('reordered records are caught', LIMIT, async () => {
    const r = await tampered((l) => {
      [l[1], l[2]] = [l[2]!, l[1]!];
      return l;
    });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /BROKEN at record 2 of /);
  });

  test('an edited or deleted last record is caught by the head', LIMIT, async () => {
    const edited = await tampered((l) => {
      l[l.length - 1] = l.at(-1)!.replace('"outcome":"ok"', '"outcome":"error"');
      return l;
    });
    assert.equal(edited.code, 1);
    assert.match(edited.stdout, new RegExp(`BROKEN at record ${lines.length} of .*edited`));
    const cut = await tampered((l) => l.slice(0, -1));
    assert.equal(cut.code, 1);
    assert.match(cut.stdout, /the tail was deleted/);
  });

  test('bad input gets a clear error', LIMIT, async () => {
    const r = await cli(['audit', 'verify', 'nosuchenv', '--home', tree.home]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no audit trail for nosuchenv/);
    const empty = await cli(['audit', 'verify', '--home', tempHome('ct-audit-empty-')]);
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /no audit trail in /);
  });
});
