// The unprivileged host uid/gid each confined environment runs as. Derived from the name
// (not the config order), so adding an environment never changes another's owner, and
// workspaces stay owned by the same uid across restarts.
import type { EnvironmentConfig } from '../config/schema.js';

export const SANDBOX_UID_BASE = 61_000;
const RANGE = 3_000;

export interface SandboxIdentity {
  name: string;
  uid: number;
  gid: number;
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** name → identity, for every confined environment; collisions probe to the next free uid. */
export function sandboxIdentities(environments: readonly Pick<EnvironmentConfig, 'name' | 'sandbox'>[]): Map<string, SandboxIdentity> {
  const out = new Map<string, SandboxIdentity>();
  const taken = new Set<number>();
  for (const name of environments.filter((e) => e.sandbox.isolation === 'confined').map((e) => e.name).sort()) {
    let offset = fnv1a(name) % RANGE;
    while (taken.has(offset)) offset = (offset + 1) % RANGE;
    taken.add(offset);
    const id = SANDBOX_UID_BASE + offset;
    out.set(name, { name: `continuum-${name}`.slice(0, 32), uid: id, gid: id });
  }
  return out;
}
