// The renderer daemon: a supervised system daemon that serves render.html to every
// environment's sessions through the edge (the same one hop as an executor).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ContinuumError } from '../../src/client/index.js';
import { startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';
import { rpcError, sessionClients } from './support/sessions.js';
import { kill9 } from './support/processes.js';

let tree: Tree;
const { client, closeAll } = sessionClients(() => tree);
const CONFIG = { environments: [{ name: 'remote', commands: ['system', 'state'] }] };

describe('renderer daemon', { timeout: 90_000 }, () => {
  before(async () => (tree = await startTree({ config: CONFIG })));
  after(async () => {
    await closeAll();
    await stopTree(tree);
  });

  test('is a supervised process of the tree, with its title', async () => {
    const rows = await tree.ps();
    const row = rows.find((r) => r.name === 'continuum-renderer-daemon');
    assert.ok(row, `ps lists the renderer daemon: ${JSON.stringify(rows.map((r) => r.name))}`);
    assert.equal(row.state, 'running');
  });

  test('markdown renders to HTML with scripts, handlers and javascript: URLs removed', async () => {
    const c = await client('agent');
    const html = await c.render.html({ markdown: '# Title\n\n*hi* [x](javascript:alert(1)) <script>alert(1)</script> <img src=x onerror=alert(1)>\n\n- [x] done' });
    assert.match(html, /<h1>Title<\/h1>/);
    assert.match(html, /<em>hi<\/em>/);
    assert.doesNotMatch(html, /script|onerror|javascript:/i, html);
    assert.match(html, /<img src="x" \/>/);
  });

  test('templates are logic-less and escape data', async () => {
    const c = await client('browser');
    const html = await c.render.html({ template: '<p>{{name}}</p><ul>{{#items}}<li>{{.}}</li>{{/items}}</ul>', data: { name: '<b onclick=x>bob</b>', items: ['a', 'b'] } });
    assert.equal(html, '<p>&lt;b onclick=x&gt;bob&lt;/b&gt;</p><ul><li>a</li><li>b</li></ul>');
    const bad = await rpcError(c.render.html({ template: '{{#open}}never closed', data: {} }));
    assert.equal(bad.rpcCode, -32602);
    assert.match(bad.message, /invalid template/);
  });

  test('bad params are -32602; a policy without render is -32002', async () => {
    const c = await client('agent');
    const bad = await rpcError(c.call({ name: 'render.html' } as never, { markdown: 42 } as never));
    assert.equal(bad.rpcCode, -32602);
    const both = await rpcError(c.call({ name: 'render.html' } as never, { markdown: 'x', template: 'y' } as never));
    assert.equal(both.rpcCode, -32602);
    const remote = await client('remote');
    const forbidden = await rpcError(remote.render.html({ markdown: 'x' }));
    assert.equal(forbidden.rpcCode, -32002);
  });

  test('killed, it is restarted; meanwhile calls get a retryable -32003, then work again', async () => {
    const c = await client('agent');
    const before = (await tree.ps()).find((r) => r.name === 'continuum-renderer-daemon')!;
    kill9(before.pid);
    // Either the restart already happened, or the call is told to retry.
    const outcome = await c.render.html({ markdown: 'x' }).then(() => undefined, (e: unknown) => e);
    if (outcome !== undefined) {
      assert.ok(outcome instanceof ContinuumError, String(outcome));
      assert.equal(outcome.rpcCode, -32003, String(outcome));
      assert.equal(outcome.data?.retryable, true);
    }
    await waitFor(async () => {
      const row = (await tree.ps()).find((r) => r.name === 'continuum-renderer-daemon');
      return row && row.state === 'running' && row.pid !== before.pid ? row : undefined;
    }, 15_000, 'renderer restarted');
    const html = await waitFor(() => c.render.html({ markdown: '**back**' }).catch(() => undefined), 10_000, 'render works again');
    assert.equal(html.trim(), '<p><strong>back</strong></p>');
  });
});
