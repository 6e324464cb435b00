// How the CLI finds a running Continuum: <home>/run/supervisor.json, checked against the
// live process so a stale file from a crash is not believed.
import fs from 'node:fs';
import { connectFrameSocket } from '../bus/frame-socket.js';
import { RpcLink } from '../bus/rpc-link.js';
import { homePaths } from '../config/paths.js';
import type { RuntimeInfo } from '../supervisor/supervisor.js';

export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

export function isSupervisorAlive(pid: number): boolean {
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.startsWith('continuum-supervisor');
  } catch {
    return false;
  }
}

export function readRuntime(home: string): RuntimeInfo | undefined {
  const file = homePaths(home).runtimeFile;
  let info: RuntimeInfo;
  try {
    info = JSON.parse(fs.readFileSync(file, 'utf8')) as RuntimeInfo;
  } catch {
    return undefined;
  }
  // A copied home (or a reused pid) must not make us talk to, or signal, another tree.
  return info.home === homePaths(home).home && isSupervisorAlive(info.pid) ? info : undefined;
}

export function requireRuntime(home: string): RuntimeInfo {
  const info = readRuntime(home);
  if (!info) throw new CliError(`Continuum is not running with home ${home}; start it with \`continuum start --home ${home}\``);
  return info;
}

export async function controlCall<T>(home: string, method: string, params?: unknown, timeoutMs = 10_000): Promise<T> {
  requireRuntime(home);
  let socket;
  try {
    socket = await connectFrameSocket(homePaths(home).supervisorSocket, 2_000);
  } catch (err) {
    throw new CliError(`cannot reach the supervisor's control socket: ${(err as Error).message}`);
  }
  const link = new RpcLink(socket, 'supervisor');
  try {
    return await link.call<T>(method, params, timeoutMs);
  } finally {
    link.close();
  }
}
