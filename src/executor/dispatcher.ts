// Turns Request frames into Response frames: checks the method, the policy and the params,
// loads the session, keeps the session's commands in order, and runs the handler.
import { sendError, sendResult } from '../bus/answer.js';
import { decodeRequestPayload, FrameKind, type Frame } from '../bus/frame-codec.js';
import type { FrameSocket } from '../bus/frame-socket.js';
import { parseParams } from '../protocol/method.js';
import { ContinuumError } from '../protocol/errors.js';
import { notificationFrame, type RequestId } from '../protocol/jsonrpc.js';
import { methodsByName } from '../protocol/methods/index.js';
import type { CommandContext, ExecutorEnv } from './command.js';
import { handlers } from './handlers.js';
import type { SessionCache, SessionContext } from './session-context.js';


/**
 * A streaming request is paused while the edge asks (its client is not reading) or while
 * this process has more than LOCAL_PAUSE_BYTES queued for the edge (the edge is slow): so
 * neither side holds more than about that much of one command's output.
 */
interface FlowState {
  handler: (paused: boolean) => void;
  edge: boolean;
  local: boolean;
}
const LOCAL_PAUSE_BYTES = 1024 * 1024;

function setFlow(st: FlowState, change: { edge?: boolean; local?: boolean }): void {
  const before = st.edge || st.local;
  if (change.edge !== undefined) st.edge = change.edge;
  if (change.local !== undefined) st.local = change.local;
  const after = st.edge || st.local;
  if (after !== before) st.handler(after);
}

function isPromise(v: unknown): v is Promise<unknown> {
  return typeof (v as Promise<unknown> | undefined)?.then === 'function';
}

export class Dispatcher {
  private readonly allowed: Set<string>;
  /** Flow state of running requests that stream, by edge link and tag. */
  private readonly flows = new WeakMap<FrameSocket, Map<number, FlowState>>();

  constructor(private readonly env: ExecutorEnv, private readonly sessions: SessionCache) {
    this.allowed = new Set(env.environment.commands);
  }

  private listenFlow(socket: FrameSocket, tag: number, handler: (paused: boolean) => void): () => void {
    let byTag = this.flows.get(socket);
    if (!byTag) {
      const states = (byTag = new Map());
      this.flows.set(socket, states);
      socket.onDrain(() => {
        for (const st of states.values()) if (st.local) setFlow(st, { local: false });
      });
    }
    const state: FlowState = { handler, edge: false, local: false };
    byTag.set(tag, state);
    return () => {
      if (byTag.get(tag) === state) byTag.delete(tag);
    };
  }

  /** A notification was queued: past LOCAL_PAUSE_BYTES unsent to the edge, pause at home too. */
  private afterNotify(socket: FrameSocket, tag: number): void {
    if (socket.bufferedBytes <= LOCAL_PAUSE_BYTES) return;
    const st = this.flows.get(socket)?.get(tag);
    if (st && !st.local) setFlow(st, { local: true });
  }

  onFrame(socket: FrameSocket, frame: Frame): void {
    if (frame.kind === FrameKind.Flow) {
      const st = this.flows.get(socket)?.get(frame.tag);
      if (st) setFlow(st, { edge: frame.payload[0] === 1 });
      return;
    }
    if (frame.kind !== FrameKind.Request) return;
    const { sessionId, body } = decodeRequestPayload(frame.payload);
    let id: RequestId | null = null;
    try {
      const req = JSON.parse(body.toString('utf8')) as { id?: RequestId | null; method: string; params?: unknown };
      id = req.id ?? null;
      const method = methodsByName.get(req.method);
      const handler = handlers.get(req.method);
      if (!method || !handler) throw new ContinuumError('METHOD_NOT_FOUND', `method "${String(req.method).slice(0, 100)}" not found; system.commands lists what this environment offers`);
      if (!this.allowed.has(method.namespace)) {
        throw new ContinuumError('FORBIDDEN', `the ${this.env.environment.name} environment's policy does not allow ${method.namespace}.* commands`);
      }
      const failed = this.env.boot.sandbox?.strict && this.env.attestation?.ok === false ? this.env.attestation : undefined;
      if (failed && req.method !== 'process.info') {
        // Strict: an executor whose isolation no longer checks out serves nothing until a fresh check passes.
        const reason = `sandbox attestation failed: ${failed.checks.filter((c) => !c.ok).map((c) => c.detail).join('; ')}`;
        throw new ContinuumError('EXECUTOR_UNAVAILABLE', `the ${this.env.executor.id} executor is out of service: ${reason}`, { retryable: true, retryAfterMs: 60_000, state: 'failed', executorId: this.env.executor.id, reason });
      }
      const params = parseParams(method, req.params);
      const requestId = id;
      const run = (session: SessionContext) => {
        const ctx: CommandContext = {
          env: this.env,
          session,
          requestId,
          notify: (m, p) => {
            socket.send(FrameKind.Notify, frame.tag, notificationFrame(m, p));
            this.afterNotify(socket, frame.tag);
          },
          onFlow: (handler) => this.listenFlow(socket, frame.tag, handler),
        };
        const call = () => (handler as (p: unknown, c: CommandContext) => unknown)(params, ctx);
        return method.concurrent ? call() : session.enqueue(call);
      };
      const session = this.sessions.get(sessionId);
      const result = isPromise(session) ? session.then(run) : run(session);
      if (isPromise(result)) {
        result.then(
          (r) => sendResult(socket, frame.tag, requestId, r),
          (err) => sendError(socket, frame.tag, requestId, err),
        );
      } else {
        sendResult(socket, frame.tag, requestId, result);
      }
    } catch (err) {
      sendError(socket, frame.tag, id, err);
    }
  }
}
