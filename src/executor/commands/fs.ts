import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ContinuumError } from '../../protocol/errors.js';
import type { CommandContext } from '../command.js';
import { resolveInWorkspace } from '../workspace-path.js';

type Encoding = 'utf8' | 'base64';

function typeOf(s: Stats): 'file' | 'directory' | 'symlink' | 'other' {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'directory';
  if (s.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** fs errors become protocol errors with a sentence that says what to do. */
function fsError(err: unknown, p: string): never {
  if (err instanceof ContinuumError) throw err;
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      throw new ContinuumError('INVALID_PARAMS', `no such file or folder: "${p}"`, { issues: [{ path: ['path'], message: 'not found' }], errno: code });
    case 'EISDIR':
      throw new ContinuumError('INVALID_PARAMS', `"${p}" is a folder; use fs.list`, { issues: [{ path: ['path'], message: 'is a directory' }], errno: code });
    case 'ENOTDIR':
      throw new ContinuumError('INVALID_PARAMS', `a part of "${p}" is not a folder`, { issues: [{ path: ['path'], message: 'not a directory' }], errno: code });
    case 'ENAMETOOLONG':
      throw new ContinuumError('INVALID_PARAMS', `the path "${p.slice(0, 100)}…" is too long for the file system`, { issues: [{ path: ['path'], message: 'too long' }], errno: code });
    case 'ERR_INVALID_ARG_VALUE':
    case 'ERR_INVALID_ARG_TYPE':
      throw new ContinuumError('INVALID_PARAMS', 'invalid path: it contains a NUL byte', { issues: [{ path: ['path'], message: 'contains a NUL byte' }], errno: code });
    case 'EACCES':
    case 'EPERM':
    case 'ELOOP':
      throw new ContinuumError('FORBIDDEN', `access to "${p}" is not allowed (${code})`, { errno: code });
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EROFS':
      throw new ContinuumError('STORAGE_UNAVAILABLE', `cannot write "${p}": the workspace's disk is ${code === 'EROFS' ? 'read-only' : 'full'} (${code}); reads still work; retry once the disk is fixed`, {
        retryable: true,
        retryAfterMs: 1_000,
        reason: code === 'EROFS' ? 'read-only' : 'disk-full',
        errno: code,
      });
    default:
      throw new ContinuumError('INTERNAL', `file operation on "${p}" failed: ${code ?? (err as Error).message}`, { errno: code });
  }
}

export async function read(params: { path: string; encoding?: Encoding }, ctx: CommandContext) {
  const encoding = params.encoding ?? 'utf8';
  try {
    const file = await resolveInWorkspace(ctx.session.workspace, params.path);
    const cap = ctx.env.environment.output.maxBytes;
    const stat = await fs.stat(file);
    if (stat.isDirectory()) fsError(Object.assign(new Error(), { code: 'EISDIR' }), params.path);
    if (stat.size > cap) {
      throw new ContinuumError('PAYLOAD_TOO_LARGE', `"${params.path}" is ${stat.size} bytes, over this environment's ${cap}-byte output cap; read it with shell.exec (e.g. head -c)`);
    }
    const data = await fs.readFile(file);
    return { content: data.toString(encoding), encoding, bytes: data.length };
  } catch (err) {
    fsError(err, params.path);
  }
}

export async function write(params: { path: string; content: string; encoding?: Encoding }, ctx: CommandContext) {
  try {
    const file = await resolveInWorkspace(ctx.session.workspace, params.path);
    const data = Buffer.from(params.content, params.encoding ?? 'utf8');
    await fs.mkdir(path.dirname(file), { recursive: true });
    // O_NOFOLLOW: a symlink swapped in after the check is refused rather than followed.
    const handle = await fs.open(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o644);
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
    return { ok: true as const, bytes: data.length };
  } catch (err) {
    fsError(err, params.path);
  }
}

const MAX_ENTRIES = 10_000;

export async function list(params: { path?: string } | undefined, ctx: CommandContext) {
  const p = params?.path ?? '.';
  try {
    const dir = await resolveInWorkspace(ctx.session.workspace, p);
    const names = (await fs.readdir(dir)).sort().slice(0, MAX_ENTRIES);
    const entries = await Promise.all(
      names.map(async (name) => {
        const s = await fs.lstat(path.join(dir, name));
        return { name, type: typeOf(s), size: s.size, mtimeMs: Math.round(s.mtimeMs) };
      }),
    );
    return { entries };
  } catch (err) {
    fsError(err, p);
  }
}

export async function stat(params: { path: string }, ctx: CommandContext) {
  try {
    const file = await resolveInWorkspace(ctx.session.workspace, params.path, { followFinal: false });
    const s = await fs.lstat(file);
    return { type: typeOf(s), size: s.size, mode: s.mode & 0o7777, mtimeMs: Math.round(s.mtimeMs), ctimeMs: Math.round(s.ctimeMs) };
  } catch (err) {
    fsError(err, params.path);
  }
}

export async function remove(params: { path: string }, ctx: CommandContext) {
  try {
    const file = await resolveInWorkspace(ctx.session.workspace, params.path, { followFinal: false });
    if (file === (await fs.realpath(ctx.session.workspace))) {
      throw new ContinuumError('FORBIDDEN', 'the workspace root itself cannot be deleted; close the session to remove it');
    }
    await fs.lstat(file);
    await fs.rm(file, { recursive: true });
    return { ok: true as const };
  } catch (err) {
    fsError(err, params.path);
  }
}
