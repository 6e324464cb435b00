// The edge's side of session.connect / join / info / close: the only moments it asks the
// session daemon anything. What it learns is cached on the connection for the hot path.
import type { Config } from '../../config/schema.js';
import type { SessionDaemonClient } from '../../bus/session-client.js';
import { ContinuumError } from '../../protocol/errors.js';
import type { OpenSessionResult, StoredSession } from '../../protocol/internal.js';
import { sessionClose, sessionConnect, sessionInfo, sessionJoin, type SessionBindResult, type SessionRecord } from '../../protocol/methods/session.js';
import type { MethodDescriptor } from '../../protocol/method.js';
import type { ExecutorPool } from './executor-pool.js';

const OPEN_TIMEOUT_MS = 10_000;
const FORK_TIMEOUT_MS = 120_000;

export interface Binding {
  sessionId: string;
  environment: string;
  executorId: string;
}

export function parseParams<T>(method: MethodDescriptor, params: unknown): T {
  const parsed = method.params.safeParse(params);
  if (parsed.success) return parsed.data as T;
  const issues = parsed.error.issues.map((i) => ({ path: i.path, message: i.message }));
  throw new ContinuumError('INVALID_PARAMS', `invalid params for ${method.name}: ${issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; ')}`, { issues });
}

export class SessionBinder {
  private readonly environments: Map<string, Config['environments'][number]>;

  constructor(config: Config, private readonly daemon: SessionDaemonClient, private readonly pool: ExecutorPool) {
    this.environments = new Map(config.environments.map((e) => [e.name, e]));
  }

  async connect(params: unknown, grants: ReadonlySet<string>): Promise<{ result: SessionBindResult; binding: Binding }> {
    const p = parseParams<{ environment: string; sessionId?: string; mode?: 'auto' | 'new' | 'join' | 'fork'; label?: string }>(sessionConnect, params);
    return this.open(p.environment, p.sessionId, p.mode ?? 'auto', p.label, grants);
  }

  async join(params: unknown, grants: ReadonlySet<string>): Promise<{ result: SessionBindResult; binding: Binding }> {
    const p = parseParams<{ sessionId: string }>(sessionJoin, params);
    const existing = await this.daemon.call<StoredSession>('session.get', { sessionId: p.sessionId });
    return this.open(existing.environment, p.sessionId, 'join', undefined, grants);
  }

  async info(params: unknown, binding: Binding): Promise<SessionRecord> {
    parseParams(sessionInfo, params);
    const s = await this.daemon.call<StoredSession>('session.get', { sessionId: binding.sessionId });
    return {
      sessionId: s.sessionId,
      environment: s.environment,
      label: s.label,
      createdAt: s.createdAt,
      lastActiveAt: s.lastActiveAt,
      executor: { id: s.executorId, pid: this.pool.links.get(s.executorId)?.status.pid ?? null },
    };
  }

  async close(params: unknown, binding: Binding): Promise<{ ok: true }> {
    parseParams(sessionClose, params);
    await this.daemon.call('session.close', { sessionId: binding.sessionId });
    return { ok: true };
  }

  private async open(environment: string, sessionId: string | undefined, mode: 'auto' | 'new' | 'join' | 'fork', label: string | undefined, grants: ReadonlySet<string>) {
    if (!this.environments.has(environment)) {
      throw new ContinuumError('INVALID_PARAMS', `invalid params: unknown environment "${environment}"; known: ${[...this.environments.keys()].join(', ')}`, {
        issues: [{ path: ['environment'], message: 'unknown environment' }],
      });
    }
    if (!grants.has(environment)) throw new ContinuumError('UNAUTHORIZED', `this token does not grant the ${environment} environment; use \`continuum token ${environment}\``);
    const replicas = this.pool.byEnvironment(environment);
    const candidates = replicas.filter((l) => this.pool.unavailable(l.status.id) === undefined).map((l) => l.status.id);
    // Refuse before touching the store if nothing of the environment can serve.
    if (candidates.length === 0) throw this.pool.unavailable(replicas[0]?.status.id ?? `${environment}-0`)!;
    // A fork copies the workspace, which can take a while; the daemon drops the copy if
    // it finishes after we stopped waiting, so a timed-out fork leaves nothing behind.
    const timeoutMs = mode === 'fork' ? FORK_TIMEOUT_MS : OPEN_TIMEOUT_MS;
    const opened = await this.daemon.call<OpenSessionResult>(
      'session.open',
      { environment, sessionId, mode, label, replicas: replicas.map((l) => l.status.id), candidates, deadline: Date.now() + timeoutMs - 500 },
      timeoutMs,
    );
    const s = opened.session;
    const down = this.pool.unavailable(s.executorId);
    if (down) throw down;
    const pid = this.pool.links.get(s.executorId)!.status.pid!;
    return {
      result: { sessionId: s.sessionId, environment: s.environment, action: opened.action, executor: { id: s.executorId, pid }, createdAt: s.createdAt },
      binding: { sessionId: s.sessionId, environment: s.environment, executorId: s.executorId },
    };
  }
}
