// What the supervisor runs: OTP-style child specs, built from the config.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/schema.js';
import type { ChildRole } from '../protocol/internal.js';
import { SERVER_LOG } from '../config/paths.js';

export interface ChildSpec {
  /** Stable id: `session-daemon`, `websocket-daemon`, `<env>-<replica>`. */
  id: string;
  /** process.title, as `ps` shows it. */
  name: string;
  role: ChildRole;
  module: string;
  /** The log file its output goes to. */
  logTarget: string;
  environment?: string;
  replica?: number;
  /** Daemons route their own log lines; executors' lines are re-stamped. */
  trusted: boolean;
  /** SIGTERM, then SIGKILL after this many ms. */
  shutdownMs: number;
  /** A daemon that serves commands (methods declared with this host) on `run/<id>.sock`. */
  serves?: boolean;
  /** Extra Node flags. */
  execArgv?: string[];
}

const srcRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Environments whose executors reach the network only through the egress proxy. */
export function egressEnvironments(config: Config): string[] {
  return config.environments.filter((e) => typeof e.sandbox.network === 'object').map((e) => e.name);
}

export function daemonSpecs(config: Config): ChildSpec[] {
  const egress: ChildSpec[] = egressEnvironments(config).length
    ? [{ id: 'egress-proxy', name: 'continuum-egress-proxy', role: 'egress-proxy', module: path.join(srcRoot, 'daemons/egress/main.js'), logTarget: SERVER_LOG, trusted: true, shutdownMs: 1_500 }]
    : [];
  return [
    { id: 'session-daemon', name: 'continuum-session-daemon', role: 'session-daemon', module: path.join(srcRoot, 'daemons/session/main.js'), logTarget: SERVER_LOG, trusted: true, shutdownMs: 2_000 },
    { id: 'websocket-daemon', name: 'continuum-websocket-daemon', role: 'websocket-daemon', module: path.join(srcRoot, 'daemons/websocket/main.js'), logTarget: SERVER_LOG, trusted: true, shutdownMs: 1_500,
      // A young generation of a fixed size, 16 MiB semi-spaces from the start. Under load a
      // request lives tens of ms at the edge (and a ledgered one longer): with V8's small default
      // (it was capped at 4 MiB) a scavenge came every ~15 ms, so nearly every request's objects
      // were copied and promoted, and garbage collection was the ledger's largest cost on the
      // edge. Fixed, not left to grow: V8 grows it under bursts and the RSS with it, which is
      // what the cap was for; at this size from the start, and touched at start (the edge's
      // main.ts), the RSS is higher and stays put.
      // And a fixed growing factor for the old generation: left to itself V8 let it reach two
      // to three times the live data (10-15 MiB) between full collections under the chaos suite.
      execArgv: ['--min-semi-space-size=16', '--max-semi-space-size=16', '--heap-growing-percent=50'] },
    { id: 'renderer-daemon', name: 'continuum-renderer-daemon', role: 'renderer-daemon', module: path.join(srcRoot, 'daemons/renderer/main.js'), logTarget: SERVER_LOG, trusted: true, shutdownMs: 1_500, serves: true },
    { id: 'browser-daemon', name: 'continuum-browser-daemon', role: 'browser-daemon', module: path.join(srcRoot, 'daemons/browser/main.js'), logTarget: SERVER_LOG, trusted: true, shutdownMs: 5_000, serves: true },
    ...egress,
  ];
}

export function executorSpecs(config: Config): ChildSpec[] {
  return config.environments.flatMap((env) =>
    Array.from({ length: env.replicas }, (_, replica) => ({
      id: `${env.name}-${replica}`,
      name: `continuum-${env.name}-executor`,
      role: 'executor' as const,
      module: path.join(srcRoot, 'executor/main.js'),
      logTarget: env.name,
      environment: env.name,
      replica,
      trusted: false,
      shutdownMs: 1_500,
    })),
  );
}
