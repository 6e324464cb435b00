// The edge's side of the command ledger: state changes go to the session daemon in one
// `ledger.write` per tick. An `accept` is awaited (a command is dispatched only once its
// entry is durable); later changes (start, finish, drop) are sent a few ms later in the
// same kind of batch and re-sent until acknowledged, so a session-daemon restart loses none.
import type { SessionDaemonClient } from '../../bus/session-client.js';
import type { LedgerOp } from '../../protocol/internal.js';
import type { CommandEntry } from '../../protocol/methods/command.js';

type AcceptOp = Extract<LedgerOp, { op: 'accept' }>;
type LaterOp = Exclude<LedgerOp, AcceptOp>;

interface Waiting<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

/** Later ops wait this long for company: a start and a finish of a quick command share one commit. */
const LATER_DELAY_MS = 5;
const RETRY_MS = 50;
const MAX_WRITES_IN_FLIGHT = 1;
/** How long a command waits for the ledger (a session-daemon restart) before it is refused. */
const ACCEPT_WAIT_MS = 5_000;

export class LedgerWriter {
  private accepts: { op: AcceptOp; waiting: Waiting<CommandEntry | null> }[] = [];
  /** `op` undefined: a barrier, acknowledged with the batch it rides in. */
  private later: { op: LaterOp | undefined; done: () => void }[] = [];
  private immediate: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** `ledger.write` calls sent and not yet answered. */
  private writing = 0;

  constructor(private readonly daemon: SessionDaemonClient) {}

  /** Durable before it resolves: null for a new entry, else the entry that exists already. */
  accept(op: AcceptOp): Promise<CommandEntry | null> {
    return new Promise((resolve, reject) => {
      this.accepts.push({ op, waiting: { resolve, reject } });
      this.immediate ??= setImmediate(() => this.flush());
    });
  }

  /** Resolves once the change is durable (it is re-sent until it is). */
  record(op: LaterOp): Promise<void> {
    return new Promise((resolve) => {
      this.later.push({ op, done: resolve });
      if (!this.immediate) this.timer ??= setTimeout(() => this.flush(), LATER_DELAY_MS);
    });
  }

  /** Resolves once every change recorded before it is durable (read-your-writes for command.*). */
  barrier(): Promise<void> {
    return new Promise((resolve) => {
      this.later.push({ op: undefined, done: resolve });
      if (!this.immediate) this.timer ??= setTimeout(() => this.flush(), LATER_DELAY_MS);
    });
  }

  get(sessionId: string, requestId: string): Promise<CommandEntry | null> {
    return this.daemon.call<CommandEntry | null>('ledger.get', { sessionId, requestId });
  }

  list(sessionId: string, since: number, limit: number): Promise<{ entries: CommandEntry[]; more: boolean }> {
    return this.daemon.call('ledger.list', { sessionId, since, limit });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.immediate = undefined;
    // While a batch is on its way, the next one gathers: it goes when an answer comes back.
    // Under load that makes fewer, bigger batches (less work per command on both sides);
    // alone, a command's entry still goes at once.
    if (this.writing >= MAX_WRITES_IN_FLIGHT) return;
    const later = this.later;
    const accepts = this.accepts;
    this.later = [];
    this.accepts = [];
    if (later.length === 0 && accepts.length === 0) return;
    // Later ops first: a drop or finish of a key always precedes a new accept of it.
    const ops: LedgerOp[] = [];
    for (const l of later) if (l.op) ops.push(l.op);
    const nLater = ops.length;
    for (const a of accepts) ops.push(a.op);
    this.writing++;
    this.daemon.call<(CommandEntry | null)[]>('ledger.write', { ops }).finally(() => {
      this.writing--;
      if (this.accepts.length > 0 || this.later.length > 0) this.immediate ??= setImmediate(() => this.flush());
    }).then(
      (answers) => {
        for (const l of later) l.done();
        accepts.forEach((a, i) => a.waiting.resolve(answers[nLater + i] ?? null));
      },
      (err: Error) => {
        // Nothing of an unacknowledged batch is known to have landed: send it again later.
        // Commands wait a while for a restarting session daemon rather than fail at once.
        // The op's `at` is when the edge accepted it.
        const now = Date.now();
        const retry = accepts.filter((a) => now - a.op.at < ACCEPT_WAIT_MS);
        for (const a of accepts) if (now - a.op.at >= ACCEPT_WAIT_MS) a.waiting.reject(err);
        this.accepts = retry.concat(this.accepts);
        this.later = later.concat(this.later);
        this.timer ??= setTimeout(() => this.flush(), RETRY_MS);
        this.timer.unref();
      },
    );
  }
}
