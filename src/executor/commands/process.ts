// process.info: what this executor really is, read from /proc rather than from config.
import fs from 'node:fs';
import { readNamespaces } from '../../sandbox/namespaces.js';
import type { CommandContext } from '../command.js';

function readLimits(): Record<string, unknown> {
  const rlimits: Record<string, { soft: string; hard: string }> = {};
  try {
    for (const line of fs.readFileSync('/proc/self/limits', 'utf8').split('\n').slice(1)) {
      const m = /^(.+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
      if (m) rlimits[m[1]!.trim()] = { soft: m[2]!, hard: m[3]! };
    }
  } catch {
    // /proc may be missing in exotic hosts; report what we have.
  }
  let cgroup: string[] = [];
  try {
    cgroup = fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  } catch {
    // As above.
  }
  return { rlimits, cgroup };
}

/** Also what the supervisor asks for (over IPC) to show each environment's sandbox on the dashboard. */
export function info(_params: unknown, ctx: Pick<CommandContext, 'env'>) {
  const { environment, boot, executor, attestation } = ctx.env;
  const profile = environment.sandbox;
  const confined = profile.isolation === 'confined';
  const warnings = boot.sandbox?.warnings ?? boot.sandboxWarnings ?? [];
  const own = readNamespaces();
  const namespaces: Record<string, { id: string; sharedWithSupervisor: boolean }> = {};
  for (const [ns, id] of Object.entries(own)) namespaces[ns] = { id, sharedWithSupervisor: boot.supervisorNamespaces[ns] === id };
  return {
    // Inside its pid namespace the executor doesn't know its host pid; the supervisor's is in `executor`.
    pid: process.pid,
    uid: process.getuid?.() ?? -1,
    gid: process.getgid?.() ?? -1,
    environment: environment.name,
    executor,
    sandbox: {
      profile: profile as unknown as Record<string, unknown>,
      enforced: confined ? Boolean(boot.sandbox) && warnings.length === 0 : true,
      mechanism: boot.sandbox ? boot.sandbox.mechanism : confined ? 'none' : 'unconfined by profile',
      warnings,
      attestation,
    },
    limits: readLimits(),
    namespaces,
  };
}
