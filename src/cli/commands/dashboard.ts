// `continuum dashboard`: a fresh one-time login link for the web dashboard.
import type { DashboardLogin } from '../../protocol/control.js';
import type { RuntimeInfo } from '../../supervisor/supervisor.js';
import { controlCall, requireRuntime } from '../runtime.js';

/** The link a person opens; a wildcard listen address is reached on loopback. */
export function loginLink(info: Pick<RuntimeInfo, 'host' | 'port'>, login: DashboardLogin): string {
  const host = info.host === '0.0.0.0' || info.host === '::' ? '127.0.0.1' : info.host.includes(':') ? `[${info.host}]` : info.host;
  return `http://${host}:${info.port}/login?token=${encodeURIComponent(login.token)}`;
}

export async function dashboard(opts: { home: string }): Promise<string> {
  const info = requireRuntime(opts.home);
  const login = await controlCall<DashboardLogin>(opts.home, 'dashboardLogin');
  return `${loginLink(info, login)}\n(one-time link, valid until ${new Date(login.expiresAt).toISOString()}; opening it logs this browser in)`;
}
