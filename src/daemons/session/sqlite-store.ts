// One SQLite file (WAL, synchronous=FULL) with group commit: writes that arrive in the same
// tick are committed in one transaction and acknowledged after it, so an acknowledged write
// survives a kill -9 and a power cut. A write the disk refuses (full, read-only) fails with a
// retryable -32007 while reads go on; the file is reopened by itself once it can be written
// again. The session store and the command ledger each own one (sessions.db, ledger.db).
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ContinuumError } from '../../protocol/errors.js';

type Write = () => unknown;

/** How often a store opened read-only checks whether it can write again. */
const REOPEN_PROBE_MS = 500;

/**
 * The disk refusing a write, as the protocol error clients get (-32007, retryable), or
 * undefined for any other error. Covers SQLite's codes and the file system's.
 */
export function storageError(err: unknown, what = 'the session store'): ContinuumError | undefined {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  let reason: 'disk-full' | 'read-only' | 'io-error';
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') reason = 'disk-full';
  else if (code.startsWith('SQLITE_READONLY') || code === 'EROFS') reason = 'read-only';
  else if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CANTOPEN' || code === 'EIO') reason = 'io-error';
  else return undefined;
  const why = { 'disk-full': 'its disk is full', 'read-only': 'its disk is read-only', 'io-error': 'its disk reports I/O errors' }[reason];
  return new ContinuumError('STORAGE_UNAVAILABLE', `${what} cannot write now: ${why} (${code}); nothing was changed, reads still work; retry once the disk is fixed`, { retryable: true, retryAfterMs: 1_000, reason, errno: code }, { cause: err });
}

export class SqliteStore {
  private current!: Database.Database;
  /** Who prepares statements on this database: told at each (re)open. */
  private readonly openHooks: ((db: Database.Database) => void)[] = [];
  /** Who keeps state derived from this database in memory: told when a commit failed. */
  private readonly rollbackHooks: (() => void)[] = [];
  private queue: { write: Write; resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private flushScheduled = false;
  /** Set when a write found the database read-only (SQLite opened it so): reopen when it can write. */
  private readOnlySince: number | undefined;
  private lastProbe = 0;

  /** `what` names the store in its errors ("the session store"). */
  constructor(private readonly file: string, private readonly what: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.openDb();
  }

  get db(): Database.Database {
    return this.current;
  }

  private openDb(): void {
    // SQLite opens a file it can't write read-only, without an error; writes then fail.
    this.current = new Database(this.file);
    this.current.pragma('journal_mode = WAL');
    this.current.pragma('synchronous = FULL');
    this.current.pragma('busy_timeout = 5000');
    for (const hook of this.openHooks) hook(this.current);
  }

  /** `hook` runs now and again whenever the file is reopened (after a read-only spell). */
  onOpen(hook: (db: Database.Database) => void): void {
    this.openHooks.push(hook);
    hook(this.current);
  }

  onRollback(hook: () => void): void {
    this.rollbackHooks.push(hook);
  }

  /** After a read-only failure: once the files can be written again, open them afresh. */
  private reopenIfWritable(): void {
    if (this.readOnlySince === undefined || Date.now() - this.lastProbe < REOPEN_PROBE_MS) return;
    this.lastProbe = Date.now();
    try {
      for (const f of [path.dirname(this.file), this.file, `${this.file}-wal`, `${this.file}-shm`]) {
        if (f === path.dirname(this.file) || fs.existsSync(f)) fs.accessSync(f, fs.constants.W_OK);
      }
    } catch {
      return;
    }
    // Close first: connections of one process to one file share SQLite's lock and shared-memory
    // state, so a new one opened beside the read-only one would be read-only too.
    this.current.close();
    this.openDb();
    this.readOnlySince = undefined;
  }

  /** Runs a write; the disk refusing it becomes -32007 (and a read-only store starts probing). */
  writing<T>(fn: () => T): T {
    this.reopenIfWritable();
    try {
      return fn();
    } catch (err) {
      const e = storageError(err, this.what);
      if (!e) throw err;
      if (e.data?.reason === 'read-only') this.readOnlySince ??= Date.now();
      throw e;
    }
  }

  /** Runs `write` in a transaction of its own (writes outside the per-tick group commit). */
  transact<T>(write: () => T): T {
    return this.writing(() => this.current.transaction(write)());
  }

  /** Runs `write` in this tick's transaction; resolves with its result once that is durable. */
  commit<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ write, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  close(): void {
    this.flush();
    this.current.close();
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    try {
      const results = this.writing(() => this.current.transaction(() => batch.map((item) => item.write()))());
      batch.forEach((item, i) => item.resolve(results[i]));
    } catch (err) {
      for (const hook of this.rollbackHooks) hook();
      if (err instanceof ContinuumError) {
        for (const item of batch) item.reject(err);
        return;
      }
      const e = new ContinuumError('INTERNAL', `${this.what} could not write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { retryable: true }, { cause: err });
      for (const item of batch) item.reject(e);
    }
  }
}
