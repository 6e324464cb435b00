// The edge's use of the command ledger, around the router's dispatch: a request's entry is
// made durable before it is dispatched; a resent string id is answered from the ledger or
// joins the running request; answers, timeouts and deaths become final states; and
// command.status / command.list are answered once what this edge knows has landed.
import type { Config } from '../../config/schema.js';
import { ContinuumError } from '../../protocol/errors.js';
import type { ExecutorStatus } from '../../protocol/internal.js';
import type { LedgerFinishDetail, LedgerWriteBuilder } from '../../protocol/ledger-wire.js';
import { errorFrame, type RequestId } from '../../protocol/jsonrpc.js';
import { lostError, lostReasonOf, replayFrame } from '../../protocol/ledger.js';
import type { MethodDescriptor } from '../../protocol/method.js';
import { commandStatus, FINAL_COMMAND_STATES, type CommandEntry, type LostReason } from '../../protocol/methods/command.js';
import type { ExecutorLink } from './executor-pool.js';
import { addAnswer } from './ledger-answers.js';
import type { AcceptFields, LaterOp, LedgerSink, LedgerWriter } from './ledger-writer.js';
import type { ClientConnection } from './router.js';
import { parseParams, type Binding } from './session-binder.js';

/** A ledgered request of this edge, from its accept until its final state is durable. */
export interface Tracked extends AcceptFields {
  /** The router's slot, until the entry is durable. */
  admission: Admission | undefined;
  /** Resends of the same string id, waiting for the answer. */
  waiters: { conn: ClientConnection; id: RequestId | null }[] | undefined;
  /** The client's id, as the answer carries it. */
  id: RequestId | null;
  /** The answer, once known: what a later resend gets until the ledger has it. */
  answer: string | Buffer | undefined;
  /** How it ended, once known; encoded for the ledger only when its batch goes. */
  endState: 'completed' | 'failed' | 'lost' | undefined;
  endedAt: number;
  /** Why it failed or was lost, when the edge decided it (a timeout, a dead executor); else the answer says. */
  endDetail: LedgerFinishDetail | null;
  /** Its `start` has been recorded. */
  started: boolean;
  /** When it was dispatched; its `start` is written only if it is still running a moment later. */
  dispatchedAt: number;
  /** The ledger's name for it once accepted: later ops say only this. */
  seq: number;
}

export type EdgeLedgerWriter = LedgerWriter<Tracked, Tracked>;

/** A command in its connection's queue, waiting for its ledger entry or behind one that is (run order is sent order). */
export interface Admission {
  conn: ClientConnection;
  binding: Binding;
  method: MethodDescriptor;
  id: RequestId | null;
  /** The frame as the client sent it (dispatched as is), and its own timeout if it gives one. */
  data: Buffer;
  timeoutMs: number | undefined;
  /** Its turn may come: its entry is durable, or it needs none, or it was answered here. */
  ready: boolean;
  /** Needs a ledger entry; once ready without `tracked`, it was answered here and is not dispatched. */
  ledgered: boolean;
  tracked: Tracked | undefined;
}

/** What the gate needs of a dispatched request. */
export interface Dispatched {
  tracked: Tracked;
  id: RequestId | null;
  method: string;
}

/** Ledgered commands of an executor whose link dropped, waiting for the supervisor to say why it died. */
interface Dying {
  pid: number | null;
  entries: Dispatched[];
  timer: NodeJS.Timeout;
  settled: Promise<void>;
  done: () => void;
}

export interface GateHooks {
  send(conn: ClientConnection, frame: string | Buffer): void;
  log(binding: Binding, conn: ClientConnection, id: RequestId | null, method: string, outcome: string, code: number | undefined): void;
  /** The admission's entry is durable: dispatch it as `tracked`; or, `tracked` undefined, it was answered here. */
  admitted(a: Admission, tracked: Tracked | undefined): void;
}

const DYING_WAIT_MS = 2_000;
/**
 * A command still running this long after dispatch gets its `started` written, at the
 * router's next sweep of what is in flight (every 250 ms); one that finishes sooner goes from
 * accepted to its final state in one write that carries its start time. A third of the
 * ledger's writes, at the cost of `started` showing up to 500 ms late. Under load a quick
 * command's time includes its wait in the executor's queue (state.set at 30 000/s: p50
 * 50 ms, p99 130 ms), so a shorter wait would write a start for most.
 */
const START_AFTER_MS = 250;

/** Open entries by session, then request id: no key string per command. */
class OpenEntries {
  private readonly bySession = new Map<string, Map<string, Tracked>>();

  get(sessionId: string, requestId: string): Tracked | undefined {
    return this.bySession.get(sessionId)?.get(requestId);
  }

  add(t: Tracked): void {
    let m = this.bySession.get(t.sessionId);
    if (!m) this.bySession.set(t.sessionId, (m = new Map()));
    m.set(t.requestId, t);
  }

  /** Removes `t` if it is still the open entry of its key. */
  remove(t: Tracked): void {
    const m = this.bySession.get(t.sessionId);
    if (m?.get(t.requestId) !== t) return;
    m.delete(t.requestId);
    if (m.size === 0) this.bySession.delete(t.sessionId);
  }
}

/** The key of the rare `dropping` set (the hot paths use OpenEntries). */
const keyOf = (sessionId: string, requestId: string): string => `${sessionId}\n${requestId}`;

export class LedgerGate implements LedgerSink<Tracked, Tracked> {
  /** String-id requests of this edge not yet final in the ledger. */
  private readonly open = new OpenEntries();
  /** Keys whose never-dispatched entry is being removed: a resend waits for that. */
  private readonly dropping = new Set<string>();
  private readonly dying = new Map<string, Dying>();
  private readonly outputCap: Map<string, number>;

  constructor(config: Config, private readonly writer: EdgeLedgerWriter, private readonly hooks: GateHooks) {
    this.outputCap = new Map(config.environments.map((e) => [e.name, e.ledger.outputBytes]));
    writer.attach(this);
  }

  /**
   * Makes the request's entry durable, then tells `hooks.admitted`: with its Tracked when it
   * is new and may be dispatched, without when it has been answered here (a resend, or no ledger).
   */
  admit(a: Admission): void {
    const { conn, binding, id } = a;
    const scoped = typeof id === 'string';
    const requestId = scoped ? id : `#${conn.serial}.${++conn.seq}`;
    if (scoped) {
      const running = this.open.get(binding.sessionId, requestId);
      if (running) {
        if (running.answer !== undefined) this.hooks.send(conn, running.answer);
        else (running.waiters ??= []).push({ conn, id });
        return this.hooks.admitted(a, undefined);
      }
      if (this.dropping.size > 0 && this.dropping.has(keyOf(binding.sessionId, requestId))) {
        this.hooks.send(conn, errorFrame(id, new ContinuumError('EXECUTOR_UNAVAILABLE', `request ${requestId} is being cleared from the ledger after the session daemon restarted; nothing ran; retry shortly`, { retryable: true, retryAfterMs: 200 })));
        return this.hooks.admitted(a, undefined);
      }
    }
    const tracked: Tracked = {
      sessionId: binding.sessionId,
      requestId,
      scoped,
      environment: binding.environment,
      method: a.method.name,
      executorId: binding.executorId,
      acceptedAt: Date.now(),
      admission: a,
      waiters: undefined,
      id,
      answer: undefined,
      endState: undefined,
      endedAt: 0,
      endDetail: null,
      started: false,
      dispatchedAt: 0,
      seq: 0,
    };
    if (scoped) this.open.add(tracked);
    this.writer.accept(tracked);
  }

  /** The writer's word: the entry is durable (its seq), or it was there already (a resend). */
  accepted(tracked: Tracked, answer: number | CommandEntry): void {
    const a = tracked.admission!;
    tracked.admission = undefined;
    if (typeof answer === 'number') {
      tracked.seq = answer;
      return this.hooks.admitted(a, tracked);
    }
    const existing = answer;
    this.open.remove(tracked);
    // Only an entry left open by an earlier edge run can be open and not ours; the session daemon closes those at hello.
    const frame = FINAL_COMMAND_STATES.has(existing.state)
      ? replayFrame(a.id, existing)
      : errorFrame(a.id, new ContinuumError('EXECUTOR_UNAVAILABLE', `request ${tracked.requestId} is still open in the ledger; ask command.status, or retry shortly`, { retryable: true, retryAfterMs: 500 }));
    this.answerAll(a.conn, tracked, frame);
    this.hooks.log(a.binding, a.conn, a.id, tracked.method, 'replayed', undefined);
    this.hooks.admitted(a, undefined);
  }

  /** The writer's word: the ledger could not take the entry, so the command is not run. */
  refused(tracked: Tracked, err: Error): void {
    const a = tracked.admission!;
    tracked.admission = undefined;
    this.open.remove(tracked);
    // A disk that refuses the entry is the client's -32007 (the store says why); anything else, a retryable -32003.
    const e = err instanceof ContinuumError && err.code === 'CONTINUUM_STORAGE_UNAVAILABLE'
      ? new ContinuumError('STORAGE_UNAVAILABLE', `the command ledger cannot record the request, so it was not run: ${err.message}`, err.data)
      : new ContinuumError('EXECUTOR_UNAVAILABLE', `the command ledger is unavailable (${err.message}); nothing was run; retry shortly`, { retryable: true, retryAfterMs: 200 });
    this.answerAll(a.conn, tracked, errorFrame(a.id, e));
    this.drop(tracked);
    this.hooks.log(a.binding, a.conn, a.id, tracked.method, 'unavailable', e.rpcCode);
    this.hooks.admitted(a, undefined);
  }

  /** The writer's word: a later op is durable. */
  recorded(op: LaterOp, tracked: Tracked | undefined): void {
    if (tracked && op.op === 'drop') this.dropping.delete(keyOf(tracked.sessionId, tracked.requestId));
  }

  /** The writer's batch is being made: the final state of `tracked`, from what it kept. */
  encodeFinish(t: Tracked, batch: LedgerWriteBuilder): void {
    if (t.endDetail || !Buffer.isBuffer(t.answer)) batch.finish(t.seq, t.endState!, t.endedAt, t.dispatchedAt, null, false, t.endDetail);
    else addAnswer(batch, t.seq, t.dispatchedAt, t.endedAt, t.method, t.id, t.endState === 'failed', t.answer, this.outputCap.get(t.environment) ?? 65_536);
  }

  /** The writer's word: the final state is durable. */
  finished(tracked: Tracked): void {
    this.open.remove(tracked);
    // The ledger has it now; the bytes need not wait for the start check to let go.
    tracked.answer = undefined;
  }

  /** It could not be sent to its executor, so it never ran: as if never sent, and a resend may run it. */
  notDispatched(conn: ClientConnection, tracked: Tracked, frame: string): void {
    this.open.remove(tracked);
    this.answerAll(conn, tracked, frame);
    this.drop(tracked);
  }

  dispatched(tracked: Tracked, at: number): void {
    tracked.dispatchedAt = at;
  }

  /** The router's periodic look at what is still running: a command past START_AFTER_MS gets its `start`. */
  stillRunning(tracked: Tracked, now: number): void {
    if (tracked.started || now - tracked.dispatchedAt < START_AFTER_MS) return;
    tracked.started = true;
    this.writer.record({ op: 'start', seq: tracked.seq, at: tracked.dispatchedAt });
  }

  /** The executor's answer: resends get the same bytes, the ledger its final state. */
  answered(d: Dispatched, isError: boolean, body: Buffer): void {
    this.settle(d.tracked, body, isError ? 'failed' : 'completed', null);
  }

  /** The edge stopped waiting for the executor (-32004). */
  timedOut(d: Dispatched, error: ContinuumError): void {
    this.settle(d.tracked, errorFrame(d.id, error), 'failed', { error: error.toRpc() });
  }

  /**
   * Its executor died under it: it is lost. The reason (signal, the supervisor's kill) comes
   * with the supervisor's next status, a moment after the link drops.
   */
  lost(link: ExecutorLink, d: Dispatched): void {
    const id = link.status.id;
    let batch = this.dying.get(id);
    if (!batch) {
      const pid = link.servedPid;
      let done!: () => void;
      const settled = new Promise<void>((r) => (done = r));
      const timer = setTimeout(() => this.settleDying(id, { kind: 'link', signal: null, exitCode: null, detail: `the link to executor ${id} (pid ${pid}) dropped while it ran` }), DYING_WAIT_MS);
      batch = { pid, entries: [], timer, settled, done };
      this.dying.set(id, batch);
    }
    batch.entries.push(d);
    // The supervisor may have said how it ended before the link's close was seen.
    const exit = link.status.lastExit;
    if (exit && exit.pid === batch.pid) this.settleDying(id, lostReasonOf(exit, `executor ${id}`));
  }

  /** The supervisor's view of the executors: says why a dead one died. */
  onStatuses(statuses: ExecutorStatus[]): void {
    for (const s of statuses) {
      const batch = this.dying.get(s.id);
      if (batch && s.lastExit && s.lastExit.pid === batch.pid) this.settleDying(s.id, lostReasonOf(s.lastExit, `executor ${s.id}`));
    }
  }

  /** command.status / command.list of the bound session. */
  async query(binding: Binding, method: MethodDescriptor, params: unknown): Promise<unknown> {
    // A command whose executor just died is recorded as lost within DYING_WAIT_MS: answer after that.
    await this.dying.get(binding.executorId)?.settled;
    // What this edge already answered is in the ledger before the ledger is read.
    await this.writer.barrier();
    if (method.name === commandStatus.name) {
      const { requestId } = parseParams<{ requestId: string }>(method, params);
      const entry = await this.writer.get(binding.sessionId, requestId);
      if (!entry) throw new ContinuumError('COMMAND_NOT_FOUND', `no request ${requestId} in the ledger of session ${binding.sessionId}: never accepted, or removed (session closed, retention)`);
      return entry;
    }
    const p = parseParams<{ since?: number; limit?: number } | undefined>(method, params);
    return this.writer.list(binding.sessionId, p?.since ?? 0, p?.limit ?? 1_000);
  }

  private settleDying(executorId: string, reason: LostReason): void {
    const batch = this.dying.get(executorId);
    if (!batch) return;
    this.dying.delete(executorId);
    clearTimeout(batch.timer);
    batch.done();
    for (const d of batch.entries) {
      const frame = errorFrame(d.id, lostError({ requestId: d.tracked.requestId, method: d.method, lostReason: reason }));
      this.settle(d.tracked, frame, 'lost', { lost: reason });
    }
  }

  /** Answers the waiting resends, keeps the answer for later ones until the final state is durable. */
  private settle(tracked: Tracked, frame: string | Buffer, state: 'completed' | 'failed' | 'lost', detail: LedgerFinishDetail | null): void {
    if (tracked.waiters) for (const w of tracked.waiters) this.hooks.send(w.conn, frame);
    tracked.waiters = undefined;
    tracked.answer = frame;
    tracked.endState = state;
    tracked.endedAt = Date.now();
    tracked.endDetail = detail;
    this.writer.finish(tracked);
  }

  private drop(tracked: Tracked): void {
    this.dropping.add(keyOf(tracked.sessionId, tracked.requestId));
    this.writer.record({ op: 'drop', s: tracked.sessionId, r: tracked.requestId }, tracked);
  }

  /** Sends `frame` to the requester and to every resend waiting on the same id (same id, same bytes). */
  private answerAll(conn: ClientConnection, tracked: Tracked, frame: string | Buffer): void {
    this.hooks.send(conn, frame);
    if (tracked.waiters) for (const w of tracked.waiters) this.hooks.send(w.conn, frame);
    tracked.waiters = undefined;
  }
}
