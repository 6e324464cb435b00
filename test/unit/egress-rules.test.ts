import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EgressPolicy, isInternalAddress, parseEgressRule } from '../../src/sandbox/egress-rules.js';

test('rules: host, *.domain, *, with and without port; bad rules are refused with the reason', () => {
  assert.deepEqual(parseEgressRule('API.Anthropic.com:443'), { host: 'api.anthropic.com', port: 443 });
  assert.deepEqual(parseEgressRule('*.github.com'), { host: '*.github.com', port: undefined });
  assert.deepEqual(parseEgressRule('[::1]:8080'), { host: '::1', port: 8080 });
  assert.throws(() => parseEgressRule('a b'), /invalid egress rule/);
  assert.throws(() => parseEgressRule('host:70000'), /out of range/);
  assert.throws(() => parseEgressRule('http://x.com'), /invalid egress rule/);
});

test('host matching: exact, subdomain wildcard (not the bare domain), port, case and trailing dot', () => {
  const p = EgressPolicy.of({ allow: ['api.anthropic.com:443', '*.github.com', '127.0.0.1:8080'] });
  assert.equal(p.allowsHost('api.anthropic.com', 443).allowed, true);
  assert.equal(p.allowsHost('API.ANTHROPIC.COM.', 443).allowed, true);
  assert.equal(p.allowsHost('api.anthropic.com', 80).allowed, false);
  assert.equal(p.allowsHost('evil-api.anthropic.com', 443).allowed, false);
  assert.equal(p.allowsHost('codeload.github.com', 22).allowed, true);
  assert.equal(p.allowsHost('a.b.github.com', 443).allowed, true);
  assert.equal(p.allowsHost('github.com', 443).allowed, false);
  assert.equal(p.allowsHost('notgithub.com', 443).allowed, false);
  assert.equal(p.allowsHost('127.0.0.1', 8080).allowed, true);
  const denied = p.allowsHost('example.com', 443);
  assert.equal(denied.allowed, false);
  assert.match(denied.allowed ? '' : denied.reason, /example\.com:443 is not in this environment's network allowlist/);
});

test('internal addresses are refused after resolution unless a rule names the address', () => {
  const p = EgressPolicy.of({ allow: ['*', '127.0.0.1:8080'] });
  assert.equal(p.allowsAddress('93.184.216.34', 443).allowed, true);
  for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1']) {
    assert.equal(p.allowsAddress(a, 443).allowed, false, a);
  }
  assert.equal(p.allowsAddress('127.0.0.1', 8080).allowed, true, 'named literally, on its port');
  assert.equal(p.allowsAddress('127.0.0.1', 8081).allowed, false, 'not on another port');
  assert.equal(isInternalAddress('8.8.8.8'), false);
  assert.equal(isInternalAddress('2606:4700::1111'), false);
});

test('none and host modes', () => {
  assert.equal(EgressPolicy.of('none').allowsHost('example.com', 443).allowed, false);
  assert.equal(EgressPolicy.of('none').allowsAddress('8.8.8.8', 443).allowed, false);
  assert.equal(EgressPolicy.of('host').allowsHost('anything', 1).allowed, true);
  assert.equal(EgressPolicy.of('host').allowsAddress('127.0.0.1', 1).allowed, true);
});
