// Workspaces belong to their environment's sandbox uid, so a confined executor (and each
// session's shell) can write them while nothing else of the host is theirs.
import fs from 'node:fs';
import path from 'node:path';

export interface Owner {
  uid: number;
  gid: number;
}

/** Makes `dir` (and missing parents below `base`) owned by `owner`; a no-op without one. */
export function ensureOwnedDir(dir: string, owner: Owner | undefined): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!owner) return;
  const st = fs.statSync(dir);
  if (st.uid !== owner.uid || st.gid !== owner.gid) fs.chownSync(dir, owner.uid, owner.gid);
}

/** chown -R without following symlinks (a fork's copy is made by root). */
export async function chownTree(root: string, owner: Owner): Promise<void> {
  await fs.promises.lchown(root, owner.uid, owner.gid);
  const st = await fs.promises.lstat(root);
  if (!st.isDirectory()) return;
  for (const entry of await fs.promises.readdir(root)) await chownTree(path.join(root, entry), owner);
}
