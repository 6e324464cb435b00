// Dashboard login links work once and expire; session cookies can't be forged, altered or
// kept past their expiry.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { describe, test } from 'node:test';
import { COOKIE_NAME, DashboardAuth } from '../../src/daemons/websocket/dashboard-auth.js';
import { DashboardLogins } from '../../src/supervisor/dashboard-logins.js';

const request = (cookie?: string) => ({ headers: cookie === undefined ? {} : { cookie } }) as http.IncomingMessage;
const valueOf = (setCookie: string) => setCookie.split(';')[0]!.slice(COOKIE_NAME.length + 1);

describe('dashboard login links', () => {
  test('a link logs in once', () => {
    const logins = new DashboardLogins();
    const { token } = logins.mint();
    assert.equal(logins.consume(token), true);
    assert.equal(logins.consume(token), false);
  });

  test('unknown, malformed and expired tokens are refused', () => {
    const logins = new DashboardLogins();
    const now = Date.now();
    const { token, expiresAt } = logins.mint(now);
    assert.equal(logins.consume('ctl_guess'), false);
    assert.equal(logins.consume(42), false);
    assert.equal(logins.consume('x'.repeat(10_000)), false);
    assert.equal(logins.consume(token, expiresAt + 1), false);
    assert.ok(expiresAt > now);
  });

  test('minting in a loop keeps only the newest links', () => {
    const logins = new DashboardLogins();
    const first = logins.mint().token;
    for (let i = 0; i < 100; i++) logins.mint();
    const last = logins.mint().token;
    assert.equal(logins.consume(first), false);
    assert.equal(logins.consume(last), true);
  });
});

describe('dashboard session cookie', () => {
  const key = 'ab'.repeat(32);

  test('is HttpOnly, SameSite=Strict, for the whole site', () => {
    const set = new DashboardAuth(key).issue();
    assert.match(set, new RegExp(`^${COOKIE_NAME}=[^;]+; Path=/; HttpOnly; SameSite=Strict; Max-Age=\\d+$`));
  });

  test('verifies with the same key, not another', () => {
    const value = valueOf(new DashboardAuth(key).issue());
    assert.equal(new DashboardAuth(key).verify(request(`other=1; ${COOKIE_NAME}=${value}`)), true);
    assert.equal(new DashboardAuth('cd'.repeat(32)).verify(request(`${COOKIE_NAME}=${value}`)), false);
  });

  test('an altered, truncated or absent cookie is refused', () => {
    const auth = new DashboardAuth(key);
    const value = valueOf(auth.issue());
    const [exp, nonce, mac] = value.split('.');
    assert.equal(auth.verify(request()), false);
    assert.equal(auth.verify(request(`${COOKIE_NAME}=`)), false);
    assert.equal(auth.verify(request(`${COOKIE_NAME}=${Number(exp) + 3600}.${nonce}.${mac}`)), false, 'extended expiry');
    assert.equal(auth.verify(request(`${COOKIE_NAME}=${exp}.${nonce}`)), false);
    assert.equal(auth.verify(request(`${COOKIE_NAME}=${value.slice(0, -2)}`)), false);
  });

  test('expires', () => {
    const auth = new DashboardAuth(key);
    const now = Date.now();
    const value = valueOf(auth.issue(now));
    assert.equal(auth.verify(request(`${COOKIE_NAME}=${value}`), now + 3600_000), true);
    assert.equal(auth.verify(request(`${COOKIE_NAME}=${value}`), now + 13 * 3600_000), false);
  });
});
