// The session daemon's ledger thread: the command ledger (ledger-store.ts) on a database of
// its own (`state/ledger.db`), served to the edge on a socket of its own (`run/ledger.sock`).
//
// Why a thread: every ledger commit is an fsync, and better-sqlite3 blocks the thread that
// commits. On the daemon's main thread the ledger's batches (hundreds of ops at thousands of
// commands a second) held up every session write behind them: 40 % of that thread's time went
// to commits, against 9 % with the ledger off. Here they commit side by side, each
// on its own file, and the edge's ledger frames never cross the main thread.
//
// The main thread starts it (LedgerThread in ledger-thread.ts), tells it when a session ends,
// and stops it; a thread that fails takes the daemon down, and the supervisor restarts both.
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { verifyBusProof } from '../../bus/auth.js';
import { listenFrameSockets } from '../../bus/frame-socket.js';
import { RpcLink } from '../../bus/rpc-link.js';
import { homePaths } from '../../config/paths.js';
import { audit } from '../../logging/audit-line.js';
import { childLogger, flushLogs } from '../../logging/child-log.js';
import { ContinuumError } from '../../protocol/errors.js';
import type { ExitRecord } from '../../protocol/internal.js';
import { decodeLedgerWrite, type LedgerOp } from '../../protocol/ledger-wire.js';
import { lostReasonOf } from '../../protocol/ledger.js';
import { adoptLedger, LedgerStore } from './ledger-store.js';
import { requireString } from './params.js';
import { SqliteStore } from './sqlite-store.js';

/** What the main thread gives the ledger thread. */
export interface LedgerThreadData {
  home: string;
  busKey: string;
  environments: { name: string; maxEntries: number; maxAgeMs: number }[];
}

/** Main thread → ledger thread. */
export type ToLedgerThread = { kind: 'session-ended'; sessionId: string } | { kind: 'stop' };
/** Ledger thread → main thread. */
export type FromLedgerThread = { kind: 'ready'; adopted: number } | { kind: 'stopped' };

const port = parentPort!;
const data = workerData as LedgerThreadData;
const paths = homePaths(data.home);
const log = childLogger({ component: 'session-daemon', thread: 'ledger' }, 'server');

const sql = new SqliteStore(path.join(paths.state, 'ledger.db'), 'the command ledger');
// A store made before the ledger had a file of its own keeps it in sessions.db: move it here.
const adopted = adoptLedger(sql.db, path.join(paths.state, 'sessions.db'));
if (adopted > 0) log.info('command ledger moved to its own file', { entries: adopted });
const ledger = new LedgerStore(sql);
/** The edge's run id per link: entries left open by another run are lost. */
const edgeRuns = new WeakMap<RpcLink, string>();

function runOf(link: RpcLink): string {
  const run = edgeRuns.get(link);
  if (!run) throw new ContinuumError('FORBIDDEN', 'only the edge, having said which run it is, may use the ledger');
  return run;
}

/**
 * A new edge process (a new run id) says hello: the entries an earlier one left open will
 * never get their answers recorded, so they are lost, with why that edge ended.
 */
function welcomeEdge(link: RpcLink, hello: { run?: unknown; previousExit?: ExitRecord }): void {
  if (typeof hello.run !== 'string' || hello.run.length === 0) throw new ContinuumError('INVALID_PARAMS', 'the edge must say which run it is');
  edgeRuns.set(link, hello.run);
  const reason = hello.previousExit
    ? lostReasonOf(hello.previousExit, 'the edge (websocket daemon) that dispatched it')
    : { kind: 'edge' as const, signal: null, exitCode: null, detail: 'Continuum stopped, or its edge restarted, before the answer was recorded' };
  const lost = ledger.loseOrphans(hello.run, reason);
  if (lost.length > 0) log.warn('ledger entries of an earlier edge marked lost', { lost: lost.length, reason: reason.detail });
  for (const e of lost) audit(e.environment, { time: Date.now(), env: e.environment, tokenId: null, remote: null, sessionId: e.sessionId, event: 'command', method: e.method, requestId: e.requestId, outcome: 'lost', code: null });
}

function onLink(link: RpcLink): void {
  link.handle('hello', (p) => {
    const { role, id, proof } = (p ?? {}) as { role?: string; id?: string; proof?: string };
    if (role !== 'websocket-daemon' || !id || !verifyBusProof(data.busKey, role, id, proof)) {
      link.socket.destroy();
      throw new ContinuumError('UNAUTHORIZED', 'bad bus credentials, or not the edge');
    }
    link.identity = `${role}:${id}`;
    welcomeEdge(link, p as { run?: unknown; previousExit?: ExitRecord });
    return { ok: true };
  });
  link.handle('ledger.write', (p) => {
    const run = runOf(link);
    let ops: LedgerOp[];
    try {
      ops = decodeLedgerWrite(p);
    } catch (err) {
      throw new ContinuumError('INVALID_PARAMS', `invalid ledger.write: ${(err as Error).message}`);
    }
    return ledger.write(run, ops);
  });
  link.handle('ledger.get', (p) => {
    runOf(link);
    const { sessionId, requestId } = (p ?? {}) as { sessionId?: unknown; requestId?: unknown };
    return ledger.get(requireString(sessionId, 'sessionId'), requireString(requestId, 'requestId')) ?? null;
  });
  link.handle('ledger.list', (p) => {
    runOf(link);
    const { sessionId, since, limit } = (p ?? {}) as { sessionId?: unknown; since?: unknown; limit?: unknown };
    return ledger.list(requireString(sessionId, 'sessionId'), Number(since) || 0, Math.min(Math.max(Number(limit) || 1_000, 1), 10_000));
  });
}

/**
 * Retention, a slice at a time: at thousands of commands a second a sweep every few seconds
 * would retire tens of thousands of rows in one go and hold up every write behind it for
 * tens of ms. A slice that hits its limit asks for the next one at once.
 */
const RETAIN_SLICE = 4_096;
let moreToRetain: NodeJS.Immediate | undefined;
function sweepLedger(): void {
  moreToRetain = undefined;
  let full = false;
  for (const env of data.environments) {
    try {
      if (ledger.retain(env.name, env.maxEntries, env.maxAgeMs, Date.now(), RETAIN_SLICE) >= RETAIN_SLICE) full = true;
    } catch (err) {
      log.warn('ledger retention failed', { env: env.name, error: (err as Error).message });
    }
  }
  if (full) moreToRetain ??= setImmediate(sweepLedger);
}

const server = await listenFrameSockets(paths.ledgerSocket, (socket) => onLink(new RpcLink(socket, 'ledger client')));
const retention = setInterval(sweepLedger, 250);

port.on('message', (m: ToLedgerThread) => {
  if (m.kind === 'session-ended') {
    try {
      ledger.deleteSession(m.sessionId);
    } catch (err) {
      // Its entries stay until retention takes them; nothing else depends on them.
      log.warn("could not remove an ended session's ledger entries", { sessionId: m.sessionId, error: (err as Error).message });
    }
    return;
  }
  clearInterval(retention);
  clearImmediate(moreToRetain);
  void server.close().then(() => {
    sql.close();
    log.info('ledger thread stopped');
    flushLogs();
    port.postMessage({ kind: 'stopped' } satisfies FromLedgerThread);
  });
});
port.postMessage({ kind: 'ready', adopted } satisfies FromLedgerThread);
