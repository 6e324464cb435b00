// Maps a client's path onto the session workspace, refusing anything that leaves it:
// `..`, absolute paths elsewhere, and symlinks (dangling ones too) that point outside.
import fs from 'node:fs/promises';
import path from 'node:path';
import { ContinuumError } from '../protocol/errors.js';

function isInside(root: string, candidate: string): boolean {
  return candidate === root || candidate.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

function leaves(p: string): ContinuumError {
  return new ContinuumError('FORBIDDEN', `path "${p}" leaves the session workspace; use a path inside it`);
}

/**
 * With `followFinal: false` the last component is not resolved, so a symlink inside the
 * workspace is itself what `fs.stat` describes and `fs.delete` removes.
 */
export async function resolveInWorkspace(workspace: string, requested: string, options: { followFinal?: boolean } = {}): Promise<string> {
  if (requested.includes('\0')) throw new ContinuumError('INVALID_PARAMS', 'invalid params: path contains a NUL byte', { issues: [{ path: ['path'], message: 'NUL byte' }] });
  const root = await fs.realpath(workspace);
  const target = path.resolve(root, requested);
  if (!isInside(root, target)) throw leaves(requested);
  if (options.followFinal === false && target !== root) {
    const parent = await resolveInWorkspace(root, path.dirname(target));
    return path.join(parent, path.basename(target));
  }
  const missing: string[] = [];
  let probe = target;
  for (;;) {
    try {
      const real = await fs.realpath(probe);
      if (!isInside(root, real)) throw leaves(requested);
      return missing.length ? path.join(real, ...missing.reverse()) : real;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // A dangling symlink can't be checked; writing through it could land anywhere.
      const isLink = await fs.lstat(probe).then((s) => s.isSymbolicLink(), () => false);
      if (isLink) throw new ContinuumError('FORBIDDEN', `path "${requested}" goes through a dangling symlink`);
      missing.push(path.basename(probe));
      probe = path.dirname(probe);
      if (!isInside(root, probe)) throw leaves(requested);
    }
  }
}
