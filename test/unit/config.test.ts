import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, resolveConfig } from '../../src/config/load.js';

describe('config', () => {
  it('defaults to the five environments of DESIGN.md', () => {
    const c = resolveConfig({});
    assert.deepEqual(c.environments.map((e) => e.name), ['browser', 'server', 'remote', 'agent', 'persona']);
    assert.equal(c.port, 7070);
    assert.equal(c.environments.find((e) => e.name === 'server')!.sandbox.isolation, 'none');
    assert.equal(c.environments.find((e) => e.name === 'remote')!.sandbox.isolation, 'confined');
  });

  it('merges entries by name and adds new environments', () => {
    const c = resolveConfig({ environments: [{ name: 'remote', replicas: 3 }, { name: 'ci' }, { name: 'persona', enabled: false }] });
    assert.deepEqual(c.environments.map((e) => e.name), ['browser', 'server', 'remote', 'agent', 'ci']);
    const remote = c.environments.find((e) => e.name === 'remote')!;
    assert.equal(remote.replicas, 3);
    assert.equal(remote.sandbox.memory, 512 * 1024 * 1024, 'a partial entry keeps the default sandbox');
    assert.equal(c.environments.find((e) => e.name === 'ci')!.replicas, 1);
  });

  it('names the bad field with its path', () => {
    assert.throws(() => resolveConfig({ environments: [{ name: 'ci' }, { name: 'remote', replicas: 'two' }] }, 'c.json'), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /c\.json/);
      assert.match(err.message, /environments\[1\]\.replicas/);
      return true;
    });
    assert.throws(() => resolveConfig({ limits: { frameSoftBytes: 'x' } }), /limits\.frameSoftBytes/);
    assert.throws(() => resolveConfig({ prot: 1 }), /prot|unrecognized/i);
    assert.throws(() => resolveConfig({ environments: [{ name: 'Bad Name' }] }), /environments\[0\]\.name/);
    assert.throws(() => resolveConfig({ environments: [{ name: 'ci', commands: ['nope'] }] }), /environments\[0\]\.commands\[0\]/);
    assert.throws(() => resolveConfig({ environments: [{ name: 'ci', sandbox: { network: { allow: ['bad host!'] } } }] }), /sandbox\.network/);
    assert.throws(() => resolveConfig({ environments: [{ replicas: 2 }] }), /environments\[0\]\.name/);
  });

  it('refuses duplicate names, a null sandbox, and a default shell timeout over the maximum', () => {
    assert.throws(() => resolveConfig({ environments: [{ name: 'ci' }, { name: 'ci', replicas: 2 }] }), /environments\[1\]\.name: "ci" is listed twice/);
    assert.throws(() => resolveConfig({ environments: [{ name: 'ci', sandbox: null }] }), /environments\[0\]\.sandbox/);
    assert.throws(() => resolveConfig({ environments: [{ name: 'ci' }, { name: 'x', shell: { defaultTimeoutMs: 10, maxTimeoutMs: 5 } }] }), /environments\[1\]\.shell\.defaultTimeoutMs/);
  });

  it('refuses a soft frame limit over the hard one, and no environments at all', () => {
    assert.throws(() => resolveConfig({ limits: { frameSoftBytes: 10_000, frameHardBytes: 5_000 } }), /frameSoftBytes/);
    const off = ['browser', 'server', 'remote', 'agent', 'persona'].map((name) => ({ name, enabled: false }));
    assert.throws(() => resolveConfig({ environments: off }), /disabled/);
  });
});
