// Where everything lives under <home> (DESIGN.md).
import path from 'node:path';

export interface HomePaths {
  home: string;
  logs: string;
  /** The audit trail: `<env>.jsonl`, hash-chained, written by the supervisor. */
  audit: string;
  run: string;
  state: string;
  workspaces: string;
  artifacts: string;
  secrets: string;
  supervisorSocket: string;
  sessionSocket: string;
  /** The session daemon's ledger thread; only the edge connects, so it is outside bus/, which sandboxes see. */
  ledgerSocket: string;
  /** Written by a running supervisor: pid, url, port. */
  runtimeFile: string;
  executorSocket(executorId: string): string;
  /** Where a system daemon that serves commands (renderer, browser) listens. */
  serviceSocket(daemonId: string): string;
  /** The egress proxy's socket for one environment with a network allowlist. */
  egressSocket(environment: string): string;
  /** The renderer daemon's HTTP server (dashboard pages and live feed), behind the edge. */
  dashboardSocket: string;
  workspace(environment: string, sessionId: string): string;
  envLog(environment: string): string;
}

export const SERVER_LOG = 'server';

export function homePaths(home: string): HomePaths {
  const root = path.resolve(home);
  const run = path.join(root, 'run');
  return {
    home: root,
    logs: path.join(root, 'logs'),
    audit: path.join(root, 'audit'),
    run,
    state: path.join(root, 'state'),
    workspaces: path.join(root, 'workspaces'),
    artifacts: path.join(root, 'artifacts'),
    secrets: path.join(root, 'secrets.json'),
    supervisorSocket: path.join(run, 'supervisor.sock'),
    // In folders of their own, so a sandbox can have just that folder bound in (a bound
    // socket file would go stale when its daemon restarts and makes a new one).
    sessionSocket: path.join(run, 'bus', 'session.sock'),
    ledgerSocket: path.join(run, 'ledger.sock'),
    runtimeFile: path.join(run, 'supervisor.json'),
    executorSocket: (id) => path.join(run, `exec-${id}`, 'exec.sock'),
    serviceSocket: (id) => path.join(run, `${id}.sock`),
    // In a folder of its own: the sandbox binds the folder, so a restarted proxy's new socket is seen inside.
    egressSocket: (environment) => path.join(run, `egress-${environment}`, 'proxy.sock'),
    dashboardSocket: path.join(run, 'dashboard.sock'),
    workspace: (environment, sessionId) => path.join(root, 'workspaces', environment, sessionId),
    envLog: (environment) => path.join(root, 'logs', `${environment}.log`),
  };
}

export function resolveHome(option?: string): string {
  return path.resolve(option ?? process.env.CONTINUUM_HOME ?? '.continuum');
}
