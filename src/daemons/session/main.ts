// continuum-session-daemon: the session directory and all session state, on disk.
// Asked by the edge at connect/join/close, and by executors to load a session and to
// persist its state; never on the path of an ordinary command.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { verifyBusProof } from '../../bus/auth.js';
import { listenFrameSockets } from '../../bus/frame-socket.js';
import { RpcLink } from '../../bus/rpc-link.js';
import { readBoot, SupervisorChannel } from '../../bus/supervisor-channel.js';
import { homePaths } from '../../config/paths.js';
import { childLogger } from '../../logging/child-log.js';
import { ContinuumError } from '../../protocol/errors.js';
import type { z } from 'zod';
import { executorCallSchemas, type LoadedSession, type OpenSessionRequest, type StoredSession } from '../../protocol/internal.js';
import { SESSION_ID_PATTERN } from '../../protocol/method.js';
import { SessionStore, storageError } from './session-store.js';

const boot = readBoot();
const paths = homePaths(boot.home);
const log = childLogger({ component: 'session-daemon' }, 'server');
const busKey = boot.busKey ?? '';
const environments = new Map(boot.config.environments.map((e) => [e.name, e]));

const store = new SessionStore(path.join(paths.state, 'sessions.db'));
const executorLinks = new Map<string, RpcLink>();

function envLog(environment: string) {
  return childLogger({ component: 'session-daemon', env: environment }, environment);
}

function workspaceOf(s: StoredSession): string {
  const dir = paths.workspace(s.environment, s.sessionId);
  // Defence in depth behind the id pattern: a workspace is always a direct child of its environment's folder.
  if (path.dirname(dir) !== path.join(paths.workspaces, s.environment)) throw new ContinuumError('INVALID_PARAMS', `invalid session id "${s.sessionId}"`);
  return dir;
}

/** A fork's shell state points into the fork's workspace, not the source's. */
function rebaseShell(sessionId: string, from: string, to: string): Promise<void> {
  const shell = store.shell(sessionId);
  const move = (v: string) => (v === from || v.startsWith(`${from}/`) ? to + v.slice(from.length) : v);
  const env = shell.env ? Object.fromEntries(Object.entries(shell.env).map(([k, v]) => [k, move(v)])) : null;
  return store.setShell(sessionId, { cwd: shell.cwd === null ? null : move(shell.cwd), env });
}

// Big workspaces are copied and deleted off the event loop (a blocked daemon misses its
// heartbeats): forks are staged by an async copy and renamed into place, and deleted
// workspaces are renamed into the trash and removed in the background.
const stagingDir = path.join(paths.workspaces, '.staging');
const trashDir = path.join(paths.workspaces, '.trash');

function removeWorkspace(s: StoredSession): void {
  const dir = workspaceOf(s);
  const trashed = path.join(trashDir, randomUUID());
  try {
    fs.mkdirSync(trashDir, { recursive: true, mode: 0o700 });
    fs.renameSync(dir, trashed);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  fs.promises.rm(trashed, { recursive: true, force: true }).catch((err: Error) => log.warn('could not empty the workspace trash', { error: err.message }));
}

async function stageFork(req: OpenSessionRequest): Promise<string | undefined> {
  if (req.mode !== 'fork' || !req.sessionId) return undefined;
  const source = store.get(req.sessionId);
  if (!source || source.environment !== req.environment) return undefined; // store.open reports it
  const staged = path.join(stagingDir, randomUUID());
  await fs.promises.mkdir(stagingDir, { recursive: true, mode: 0o700 });
  const src = workspaceOf(source);
  if (fs.existsSync(src)) await fs.promises.cp(src, staged, { recursive: true, verbatimSymlinks: true });
  else await fs.promises.mkdir(staged, { mode: 0o700 });
  return staged;
}

function endSession(s: StoredSession, why: 'closed' | 'expired'): void {
  store.delete(s.sessionId);
  removeWorkspace(s);
  executorLinks.get(s.executorId)?.emit('session.evict', { sessionId: s.sessionId });
  envLog(s.environment).info(`session ${why}`, { sessionId: s.sessionId, event: `session.${why}` });
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new ContinuumError('INVALID_PARAMS', `invalid params: ${field} must be a non-empty string`);
  return value;
}

function requireRole(link: RpcLink, role: 'websocket-daemon' | 'executor'): string {
  const [r, id] = (link.identity ?? ':').split(':');
  if (r !== role || !id) throw new ContinuumError('FORBIDDEN', `only a ${role} may call this`);
  return id;
}

/** An executor may only touch sessions bound to it. */
function ownedSession(link: RpcLink, sessionId: unknown): StoredSession {
  const executorId = requireRole(link, 'executor');
  const s = store.get(requireString(sessionId, 'sessionId'));
  if (!s) throw new ContinuumError('SESSION_NOT_FOUND', `session ${String(sessionId)} not found; it may have been closed or expired`);
  if (s.executorId !== executorId) throw new ContinuumError('FORBIDDEN', `session ${s.sessionId} is not bound to executor ${executorId}`);
  return s;
}

function onLink(link: RpcLink): void {
  link.handle('hello', (p) => {
    const { role, id, proof } = (p ?? {}) as { role?: string; id?: string; proof?: string };
    if (!role || !id || !verifyBusProof(busKey, role, id, proof)) {
      link.socket.destroy();
      throw new ContinuumError('UNAUTHORIZED', 'bad bus credentials');
    }
    link.identity = `${role}:${id}`;
    if (role === 'executor') {
      executorLinks.get(id)?.close();
      executorLinks.set(id, link);
      link.socket.onClose(() => {
        if (executorLinks.get(id) === link) executorLinks.delete(id);
      });
    }
    return { ok: true };
  });

  // --- the edge ---
  link.handle('session.open', async (p) => {
    requireRole(link, 'websocket-daemon');
    const req = p as OpenSessionRequest;
    const env = environments.get(req.environment);
    if (!env) throw new ContinuumError('INVALID_PARAMS', `invalid params: unknown environment "${req.environment}"`);
    if (req.sessionId !== undefined && !SESSION_ID_PATTERN.test(req.sessionId)) {
      throw new ContinuumError('INVALID_PARAMS', 'invalid params: session ids are 1-128 characters of [A-Za-z0-9._-]');
    }
    let staged = await stageFork(req);
    let result;
    try {
      if (staged && req.deadline !== undefined && Date.now() > req.deadline) {
        throw new ContinuumError('TIMEOUT', 'the fork took longer than the caller waited; nothing was created', { retryable: false });
      }
      result = store.open(req, () => randomUUID(), (_from, to) => {
        if (!staged) return;
        const dst = workspaceOf(to);
        fs.mkdirSync(path.dirname(dst), { recursive: true, mode: 0o700 });
        fs.renameSync(staged, dst);
        staged = undefined;
      });
    } finally {
      if (staged) void fs.promises.rm(staged, { recursive: true, force: true }).catch(() => undefined);
    }
    if (result.action === 'forked' && req.sessionId) {
      const source = store.get(req.sessionId);
      if (source) await rebaseShell(result.session.sessionId, workspaceOf(source), workspaceOf(result.session));
    }
    try {
      fs.mkdirSync(workspaceOf(result.session), { recursive: true, mode: 0o700 });
    } catch (err) {
      throw storageError(err, 'the workspaces folder') ?? err;
    }
    return result;
  });
  link.handle('session.get', (p) => {
    requireRole(link, 'websocket-daemon');
    const s = store.get(requireString((p as { sessionId?: string })?.sessionId, 'sessionId'));
    if (!s) throw new ContinuumError('SESSION_NOT_FOUND', 'session not found; it may have been closed or expired');
    return s;
  });
  link.handle('session.close', (p) => {
    requireRole(link, 'websocket-daemon');
    const s = store.get(requireString((p as { sessionId?: string })?.sessionId, 'sessionId'));
    if (!s) throw new ContinuumError('SESSION_NOT_FOUND', 'session not found; it may have been closed or expired');
    endSession(s, 'closed');
    return { ok: true };
  });
  link.handle('session.touch', (p) => {
    requireRole(link, 'websocket-daemon');
    const { sessionIds, at } = p as { sessionIds: string[]; at: number };
    if (Array.isArray(sessionIds) && sessionIds.length > 0) store.touch(sessionIds.filter((s) => typeof s === 'string'), Math.min(Number(at) || Date.now(), Date.now()));
    return { ok: true };
  });

  // --- executors (checked: an executor is not trusted) ---
  const checked = <M extends keyof typeof executorCallSchemas>(method: M, p: unknown) => {
    const parsed = executorCallSchemas[method].safeParse(p);
    if (!parsed.success) throw new ContinuumError('INVALID_PARAMS', `invalid ${method} call: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return parsed.data as z.infer<(typeof executorCallSchemas)[M]>;
  };
  link.handle('session.load', (p): LoadedSession => {
    const s = ownedSession(link, checked('session.load', p).sessionId);
    const workspace = workspaceOf(s);
    fs.mkdirSync(workspace, { recursive: true, mode: 0o700 });
    return { session: s, workspace, kv: store.kv(s.sessionId), shell: store.shell(s.sessionId) };
  });
  link.handle('state.set', async (p) => {
    const { sessionId, key, value } = checked('state.set', p);
    ownedSession(link, sessionId);
    await store.setKv(sessionId, key, value);
    return { ok: true };
  });
  link.handle('state.delete', async (p) => {
    const { sessionId, key } = checked('state.delete', p);
    ownedSession(link, sessionId);
    await store.deleteKv(sessionId, key);
    return { ok: true };
  });
  link.handle('shell.save', async (p) => {
    const { sessionId, shell } = checked('shell.save', p);
    ownedSession(link, sessionId);
    await store.setShell(sessionId, shell);
    return { ok: true };
  });
}

function sweepExpired(): void {
  for (const env of environments.values()) {
    for (const s of store.expired(env.name, env.sessionIdleMs)) {
      try {
        endSession(s, 'expired');
      } catch (err) {
        // A disk that refuses the delete (full, read-only) must not take the daemon down: the
        // next sweep tries again.
        log.warn('could not expire a session; will retry', { sessionId: s.sessionId, error: (err as Error).message });
      }
    }
  }
}

// Leftovers of a crash mid-fork or mid-delete.
for (const dir of [stagingDir, trashDir]) void fs.promises.rm(dir, { recursive: true, force: true }).catch(() => undefined);

const server = await listenFrameSockets(paths.sessionSocket, (socket) => onLink(new RpcLink(socket, 'session client')));
const shortestIdle = Math.min(...boot.config.environments.map((e) => e.sessionIdleMs));
const sweepTimer = setInterval(sweepExpired, Math.max(1_000, Math.min(60_000, Math.floor(shortestIdle / 4))));
sweepTimer.unref();
sweepExpired();

const channel = new SupervisorChannel(async () => {
  clearInterval(sweepTimer);
  await server.close();
  store.close();
  log.info('session daemon stopped');
});
channel.onQuery((q) => (q === 'sessionCounts' ? store.counts() : null));
log.info('session daemon ready', { socket: paths.sessionSocket });
channel.ready();
