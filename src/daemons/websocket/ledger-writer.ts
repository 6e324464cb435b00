// The edge's side of the command ledger: state changes go to the session daemon in one
// `ledger.write` per tick. An accept is waited for (a command is dispatched only once its
// entry is durable); later changes (start, finish, drop) are sent a few ms later in the
// same kind of batch and re-sent until acknowledged, so a session-daemon restart loses none.
//
// Every command of a ledgered environment passes through here twice, so the writer keeps
// no promise, closure or op object per command: it queues the caller's own objects, has its
// sink encode a final state only when its batch is made, and tells the sink when the batch
// lands. Under load, what each command keeps alive for the milliseconds it waits is what the
// edge's garbage collector copies and promotes; that, not the ledger's bytes, was most of
// the ledger's cost on the edge.
import type { SessionDaemonClient } from '../../bus/session-client.js';
import { LedgerWriteBuilder, type LedgerOp } from '../../protocol/ledger-wire.js';
import type { CommandEntry } from '../../protocol/methods/command.js';

/** All the writer needs of the session daemon's link (a test passes a fake). */
export type LedgerDaemon = Pick<SessionDaemonClient, 'call'>;

/** The rarer state changes, given as ops: a start (a long command), a drop (never dispatched). */
export type LaterOp = Extract<LedgerOp, { op: 'start' | 'drop' }>;

/** What an accept records; the caller's own per-command object carries these fields. */
export interface AcceptFields {
  sessionId: string;
  requestId: string;
  /** A client's string id (a resend may repeat it), or one the edge made for a numeric id. */
  scoped: boolean;
  environment: string;
  method: string;
  executorId: string;
  /** When the edge accepted it. */
  acceptedAt: number;
}

/** Told when what was queued has landed (or, for an accept, could not). */
export interface LedgerSink<A extends AcceptFields, O> {
  /** Durable: `answer` is the new entry's seq, or the entry the ledger had already (a resend). */
  accepted(a: A, answer: number | CommandEntry): void;
  /** The ledger could not take it in time: the command must not run. */
  refused(a: A, err: Error): void;
  /** Adds `owner`'s final state to the batch being made (encoded now, not when it was known). */
  encodeFinish(owner: O, batch: LedgerWriteBuilder): void;
  /** A later op is durable; `owner` is what `record` was given with it. */
  recorded(op: LaterOp, owner: O | undefined): void;
  /** `owner`'s final state is durable. */
  finished(owner: O): void;
}

/** Later ops wait this long for company: a start and a finish of a quick command share one commit. */
const LATER_DELAY_MS = 5;
const RETRY_MS = 50;
const MAX_WRITES_IN_FLIGHT = 1;
/** How long a command waits for the ledger (a session-daemon restart) before it is refused. */
const ACCEPT_WAIT_MS = 5_000;

export class LedgerWriter<A extends AcceptFields, O> {
  private accepts: A[] = [];
  private later: LaterOp[] = [];
  /** `owners[i]` goes with `later[i]`. */
  private owners: (O | undefined)[] = [];
  /** Commands whose final state is known, to be encoded by the sink when their batch goes. */
  private finishes: O[] = [];
  /** Resolved with the batch they ride in: everything recorded before them is durable then. */
  private barriers: (() => void)[] = [];
  private immediate: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** `ledger.write` calls sent and not yet answered. */
  private writing = 0;
  private sink!: LedgerSink<A, O>;

  constructor(private readonly daemon: LedgerDaemon) {}

  /** Set once, by whoever owns the commands (the edge's ledger gate). */
  attach(sink: LedgerSink<A, O>): void {
    this.sink = sink;
  }

  /** Its sink hears `accepted` once the entry is durable, or `refused`. */
  accept(a: A): void {
    this.accepts.push(a);
    this.immediate ??= setImmediate(this.flushNow);
  }

  /** Its sink hears `recorded` once the change is durable (it is re-sent until it is). */
  record(op: LaterOp, owner?: O): void {
    this.later.push(op);
    this.owners.push(owner);
    if (!this.immediate) this.timer ??= setTimeout(this.flushNow, LATER_DELAY_MS);
  }

  /** Its sink encodes `owner`'s final state into the next batch, and hears `finished` once it is durable. */
  finish(owner: O): void {
    this.finishes.push(owner);
    if (!this.immediate) this.timer ??= setTimeout(this.flushNow, LATER_DELAY_MS);
  }

  /** Resolves once every change recorded before it is durable (read-your-writes for command.*). */
  barrier(): Promise<void> {
    return new Promise((resolve) => {
      this.barriers.push(resolve);
      if (!this.immediate) this.timer ??= setTimeout(this.flushNow, LATER_DELAY_MS);
    });
  }

  get(sessionId: string, requestId: string): Promise<CommandEntry | null> {
    return this.daemon.call<CommandEntry | null>('ledger.get', { sessionId, requestId });
  }

  list(sessionId: string, since: number, limit: number): Promise<{ entries: CommandEntry[]; more: boolean }> {
    return this.daemon.call('ledger.list', { sessionId, since, limit });
  }

  private readonly flushNow = (): void => this.flush();

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.immediate = undefined;
    // While a batch is on its way, the next one gathers: it goes when an answer comes back.
    // Under load that makes fewer, bigger batches (less work per command on both sides);
    // alone, a command's entry still goes at once.
    if (this.writing >= MAX_WRITES_IN_FLIGHT) return;
    const { accepts, later, owners, finishes, barriers } = this;
    if (accepts.length === 0 && later.length === 0 && finishes.length === 0 && barriers.length === 0) return;
    this.accepts = [];
    this.later = [];
    this.owners = [];
    this.finishes = [];
    this.barriers = [];
    // Later ops and finishes first: a drop or finish of a key always precedes a new accept of it.
    const batch = new LedgerWriteBuilder();
    for (const op of later) batch.add(op);
    for (const owner of finishes) this.sink.encodeFinish(owner, batch);
    for (const a of accepts) batch.accept(a.sessionId, a.requestId, a.scoped, a.environment, a.method, a.executorId, a.acceptedAt);
    this.writing++;
    this.daemon.call<(number | CommandEntry | null)[]>('ledger.write', batch.params).then(
      (answers) => {
        this.written();
        for (let i = 0; i < later.length; i++) this.sink.recorded(later[i]!, owners[i]);
        for (const owner of finishes) this.sink.finished(owner);
        for (const b of barriers) b();
        const n = later.length + finishes.length;
        for (let i = 0; i < accepts.length; i++) {
          const answer = answers[n + i];
          if (answer === null || answer === undefined) this.sink.refused(accepts[i]!, new Error('the ledger did not say what became of the entry'));
          else this.sink.accepted(accepts[i]!, answer);
        }
      },
      (err: Error) => {
        this.written();
        // Nothing of an unacknowledged batch is known to have landed: send it again later.
        // Commands wait a while for a restarting session daemon rather than fail at once.
        const now = Date.now();
        const retry: A[] = [];
        for (const a of accepts) {
          if (now - a.acceptedAt < ACCEPT_WAIT_MS) retry.push(a);
          else this.sink.refused(a, err);
        }
        this.accepts = retry.concat(this.accepts);
        this.later = later.concat(this.later);
        this.owners = owners.concat(this.owners);
        this.finishes = finishes.concat(this.finishes);
        this.barriers = barriers.concat(this.barriers);
        this.timer ??= setTimeout(this.flushNow, RETRY_MS);
        this.timer.unref();
      },
    );
  }

  /** A batch was answered: the one that gathered meanwhile goes now. */
  private written(): void {
    this.writing--;
    if (this.accepts.length > 0 || this.later.length > 0 || this.finishes.length > 0 || this.barriers.length > 0) this.immediate ??= setImmediate(this.flushNow);
  }
}
