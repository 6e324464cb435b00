// The browser daemon's URL checks: which URLs a caller may give, and how an environment's
// allowlist applies to them once names are resolved.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkUrl, parseNavigationUrl } from '../../src/daemons/browser/url-policy.js';
import { isContinuumError } from '../../src/protocol/errors.js';
import { EgressPolicy } from '../../src/sandbox/egress-rules.js';

test('only absolute http(s) URLs can be navigated to; the rest is -32602', () => {
  assert.equal(parseNavigationUrl('https://example.com/a?b=1').href, 'https://example.com/a?b=1');
  assert.equal(parseNavigationUrl('http://127.0.0.1:8080/').port, '8080');
  for (const bad of ['file:///etc/passwd', 'chrome://version', 'javascript:alert(1)', 'data:text/html,hi', 'about:blank', 'ws://x/', '/relative', 'not a url', '']) {
    assert.throws(() => parseNavigationUrl(bad), (e: unknown) => isContinuumError(e, 'INVALID_PARAMS'), bad);
  }
});

test('the allowlist applies by host and port, default ports included', async () => {
  const policy = EgressPolicy.of({ allow: ['example.com:443', '127.0.0.1:8080'] });
  assert.deepEqual(await checkUrl(new URL('http://127.0.0.1:8080/x'), policy), { allowed: true });
  assert.equal((await checkUrl(new URL('http://127.0.0.1:8081/'), policy)).allowed, false);
  assert.equal((await checkUrl(new URL('http://example.com/'), policy)).allowed, false, 'port 80 is not 443');
  assert.equal((await checkUrl(new URL('ws://127.0.0.1:8080/'), policy)).allowed, true, 'ws: takes the http rules');
  const none = await checkUrl(new URL('https://example.com/'), EgressPolicy.of('none'));
  assert.deepEqual(none, { allowed: false, reason: 'this environment has no network access' });
  assert.deepEqual(await checkUrl(new URL('http://10.0.0.1/'), EgressPolicy.of('host')), { allowed: true });
});

test('a name allowed by a rule but resolving to an internal address is refused', async () => {
  const byName = await checkUrl(new URL('http://localhost:8080/'), EgressPolicy.of({ allow: ['localhost:8080'] }));
  assert.equal(byName.allowed, false);
  assert.match((byName as { reason: string }).reason, /localhost resolves to a refused address .*internal/);
  // Named literally, an internal address is allowed.
  assert.equal((await checkUrl(new URL('http://[::1]:8080/'), EgressPolicy.of({ allow: ['[::1]:8080'] }))).allowed, true);
  assert.equal((await checkUrl(new URL('http://127.0.0.1:8080/'), EgressPolicy.of({ allow: ['*'] }))).allowed, false, '* means public hosts');
});
