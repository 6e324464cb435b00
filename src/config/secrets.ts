// <home>/secrets.json (0600): one token per environment, made at first start.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface Secrets {
  /** environment name → token */
  tokens: Record<string, string>;
}

export function readSecrets(file: string): Secrets | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<Secrets>;
    return { tokens: { ...(parsed.tokens ?? {}) } };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Adds a token for every environment that lacks one; never changes an existing token. */
export function ensureSecrets(file: string, environments: string[]): Secrets {
  const secrets = readSecrets(file) ?? { tokens: {} };
  let changed = false;
  for (const env of environments) {
    if (!secrets.tokens[env]) {
      secrets.tokens[env] = `ctm_${env}_${randomBytes(24).toString('base64url')}`;
      changed = true;
    }
  }
  if (changed || !fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
    fs.renameSync(tmp, file);
  }
  fs.chmodSync(file, 0o600);
  return secrets;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** token hash → environments it grants. Looking up by hash keeps the raw tokens out of maps. */
export function tokenGrants(secrets: Secrets): Map<string, Set<string>> {
  const grants = new Map<string, Set<string>>();
  for (const [env, token] of Object.entries(secrets.tokens)) {
    const h = hashToken(token);
    const set = grants.get(h) ?? new Set<string>();
    set.add(env);
    grants.set(h, set);
  }
  return grants;
}
