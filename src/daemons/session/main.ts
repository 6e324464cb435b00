// continuum-session-daemon: the session directory and all session state, on disk.
// Asked by the edge at connect/join/close, and by executors to load a session and to
// persist its state; never on the path of an ordinary command. The command ledger is kept
// by its second thread (ledger-worker.ts), on a file and a socket of its own.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { verifyBusProof } from '../../bus/auth.js';
import { listenFrameSockets } from '../../bus/frame-socket.js';
import { RpcLink } from '../../bus/rpc-link.js';
import { readBoot, SupervisorChannel } from '../../bus/supervisor-channel.js';
import { homePaths } from '../../config/paths.js';
import { audit } from '../../logging/audit-line.js';
import { childLogger } from '../../logging/child-log.js';
import { ContinuumError } from '../../protocol/errors.js';
import type { z } from 'zod';
import { executorCallSchemas, sessionLookupSchema, type LoadedSession, type OpenSessionRequest, type SessionEnded, type SessionLookupResult, type StoredSession } from '../../protocol/internal.js';
import { SESSION_ID_PATTERN } from '../../protocol/method.js';
import { LedgerThread } from './ledger-thread.js';
import { requireString } from './params.js';
import { chownTree, ensureOwnedDir } from '../../sandbox/ownership.js';
import { SessionStore, storageError } from './session-store.js';

const boot = readBoot();
const paths = homePaths(boot.home);
const log = childLogger({ component: 'session-daemon' }, 'server');
const busKey = boot.busKey ?? '';
const environments = new Map(boot.config.environments.map((e) => [e.name, e]));

const store = new SessionStore(path.join(paths.state, 'sessions.db'));
const executorLinks = new Map<string, RpcLink>();
/** Daemons that keep resources per session (the browser daemon) and must hear when one ends. */
const observerLinks = new Set<RpcLink>();

function envLog(environment: string) {
  return childLogger({ component: 'session-daemon', env: environment }, environment);
}

/** Confined environments' workspaces belong to their sandbox uid (set when the supervisor drops to one). */
const ownerOf = (environment: string) => boot.workspaceOwners?.[environment];

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
  const owner = ownerOf(req.environment);
  if (owner) await chownTree(staged, owner);
  return staged;
}

function endSession(s: StoredSession, why: 'closed' | 'expired'): void {
  store.delete(s.sessionId);
  ledgerThread.sessionEnded(s.sessionId);
  removeWorkspace(s);
  executorLinks.get(s.executorId)?.emit('session.evict', { sessionId: s.sessionId });
  const ended: SessionEnded = { sessionId: s.sessionId, environment: s.environment, createdAt: s.createdAt };
  for (const observer of observerLinks) observer.emit('session.ended', ended);
  envLog(s.environment).info(`session ${why}`, { sessionId: s.sessionId, event: `session.${why}` });
  // A close is audited by the edge, which knows who asked; an expiry has no one behind it.
  if (why === 'expired') audit(s.environment, { time: Date.now(), env: s.environment, tokenId: null, remote: null, sessionId: s.sessionId, event: 'session.expired', requestId: null, outcome: 'ok' });
}

function requireRole(link: RpcLink, role: 'websocket-daemon' | 'executor' | 'browser-daemon' | 'renderer-daemon'): string {
  const [r, id] = (link.identity ?? ':').split(':');
  if (r !== role || !id) throw new ContinuumError('FORBIDDEN', `only a ${role} may call this`);
  return id;
}

/** An executor may only touch sessions bound to it. */
function ownedSession(link: RpcLink, sessionId: unknown): StoredSession {
  const s = store.get(ownedSessionId(link, sessionId));
  if (!s) throw new ContinuumError('SESSION_NOT_FOUND', `session ${String(sessionId)} not found; it may have been closed or expired`);
  return s;
}

/** The same check as ownedSession for a write, without reading the whole session. */
function ownedSessionId(link: RpcLink, sessionId: unknown): string {
  const executorId = requireRole(link, 'executor');
  const id = requireString(sessionId, 'sessionId');
  const owner = store.executorOf(id);
  if (owner === undefined) throw new ContinuumError('SESSION_NOT_FOUND', `session ${id} not found; it may have been closed or expired`);
  if (owner !== executorId) throw new ContinuumError('FORBIDDEN', `session ${id} is not bound to executor ${executorId}`);
  return id;
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
    if (role === 'browser-daemon') {
      observerLinks.add(link);
      link.socket.onClose(() => observerLinks.delete(link));
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
      ensureOwnedDir(workspaceOf(result.session), ownerOf(result.session.environment));
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
    const { sessionIds, at, commands } = p as { sessionIds: string[]; at: number; commands?: Record<string, number> };
    const counts = commands && typeof commands === 'object' ? commands : {};
    if (Array.isArray(sessionIds) && sessionIds.length > 0) store.touch(sessionIds.filter((s) => typeof s === 'string'), Math.min(Number(at) || Date.now(), Date.now()), counts);
    return { ok: true };
  });

  // --- the browser daemon: does a session it holds a context for still exist? ---
  link.handle('session.lookup', (p): SessionLookupResult => {
    requireRole(link, 'browser-daemon');
    const parsed = sessionLookupSchema.safeParse(p);
    if (!parsed.success) throw new ContinuumError('INVALID_PARAMS', 'invalid session.lookup call: sessionIds must be an array of strings');
    const out: SessionLookupResult = {};
    for (const id of parsed.data.sessionIds) {
      const s = store.get(id);
      out[id] = s ? { environment: s.environment, createdAt: s.createdAt } : null;
    }
    return out;
  });

  // --- the renderer daemon (the dashboard), read-only ---
  link.handle('session.list', (p) => {
    requireRole(link, 'renderer-daemon');
    const perEnvironment = Math.min(Math.max(Number((p as { perEnvironment?: unknown } | null)?.perEnvironment) || 200, 1), 1_000);
    return { sessions: store.recent(perEnvironment), totals: store.totals() };
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
    ensureOwnedDir(workspace, ownerOf(s.environment));
    return { session: s, workspace, kv: store.kv(s.sessionId), shell: store.shell(s.sessionId) };
  });
  link.handle('state.set', async (p) => {
    const { sessionId, key, value } = checked('state.set', p);
    ownedSessionId(link, sessionId);
    await store.setKv(sessionId, key, value);
    return { ok: true };
  });
  link.handle('state.delete', async (p) => {
    const { sessionId, key } = checked('state.delete', p);
    ownedSessionId(link, sessionId);
    await store.deleteKv(sessionId, key);
    return { ok: true };
  });
  link.handle('shell.save', async (p) => {
    const { sessionId, shell } = checked('shell.save', p);
    ownedSessionId(link, sessionId);
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

const ledgerThread = LedgerThread.start(
  { home: boot.home, busKey, environments: boot.config.environments.map((e) => ({ name: e.name, maxEntries: e.ledger.maxEntries, maxAgeMs: e.ledger.maxAgeMs })) },
  log,
);
const bootedAt = Date.now();
// Ready means both: a command that changes something needs the ledger. (A failure is
// reported, and ends the daemon, by LedgerThread itself.)
await ledgerThread.ready;
log.info('ledger thread ready', { socket: paths.ledgerSocket, startMs: Date.now() - bootedAt });
const server = await listenFrameSockets(paths.sessionSocket, (socket) => onLink(new RpcLink(socket, 'session client')));
// Sandboxed executors run under their own uids; the bus proof, not the file mode, is the check
// (and the folder is reachable only through <home>, mode 0700).
fs.chmodSync(paths.sessionSocket, 0o666);
const shortestIdle = Math.min(...boot.config.environments.map((e) => e.sessionIdleMs));
const sweepTimer = setInterval(sweepExpired, Math.max(1_000, Math.min(60_000, Math.floor(shortestIdle / 4))));
sweepTimer.unref();
sweepExpired();

const channel = new SupervisorChannel(async () => {
  clearInterval(sweepTimer);
  await server.close();
  await ledgerThread.stop();
  store.close();
  log.info('session daemon stopped');
});
channel.onQuery((q) => (q === 'sessionCounts' ? store.counts() : null));
log.info('session daemon ready', { socket: paths.sessionSocket });
channel.ready();
