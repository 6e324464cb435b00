// Fault injection, slow clients (issue 4): a client that stops reading while a command
// streams tens of MiB of output. The edge pauses that request's stream at the executor
// (the command blocks on its pipe), so the edge's memory stays flat; the client gets every
// byte, in order, once it reads again; another client of the same executor is unaffected.
// A client that piles up more unread answers than limits.maxUnreadBytes is closed with 1008.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { RawClient, type RpcMessage } from '../helpers/raw-client.js';
import { startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';
import { within } from './support/waits.js';

const LIMIT = { timeout: 180_000 };
const MiB = 1024 * 1024;
/** Far more than the edge may hold: without backpressure it would all sit in the edge. */
const STREAM_BYTES = 128 * MiB;
/**
 * V8 grows its young generation by tens of MiB under load, and relaying the first MiBs
 * (before the kernel's socket buffers are full) costs some: bound the total by half the
 * stream, and require the RSS to be flat once paused.
 */
const RSS_BOUND = STREAM_BYTES / 2;
const FLAT_WINDOW_MS = 2_000;
const FLAT_BOUND = 8 * MiB;
const PAUSE_BYTES = MiB;
/** Well above what slips past a pause (what the executor had already queued for the edge). */
const MAX_UNREAD = 32 * MiB;

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

function socketOf(r: RawClient): net.Socket {
  return (r.ws as unknown as { _socket: net.Socket })._socket;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function pingLatencies(r: RawClient, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const m = await r.call('system.ping', undefined, 30_000);
    assert.equal(m.error, undefined);
    out.push(performance.now() - t);
  }
  return out;
}

const mb = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

describe('faults: slow clients', () => {
  let tree: Tree;
  const opened: RawClient[] = [];
  before(async () => {
    tree = await startTree({ config: { limits: { streamPauseBytes: PAUSE_BYTES, maxUnreadBytes: MAX_UNREAD } } });
  });
  after(async () => {
    for (const r of opened) r.close();
    await stopTree(tree);
  });

  async function bound(sessionId: string): Promise<RawClient> {
    const r = await RawClient.open(tree.url, tree.token('remote'));
    opened.push(r);
    assert.equal((await r.call('session.connect', { environment: 'remote', sessionId })).error, undefined);
    return r;
  }

  test(`a client that stops reading a ${mb(STREAM_BYTES)} stream: paused at the source, edge memory flat, nothing lost, others unaffected`, LIMIT, async () => {
    const edge = (await tree.row('websocket-daemon')).pid!;
    const other = await bound('other');
    const slow = await bound('slow');
    // Warm up, so that the baseline includes what the edge allocates for any stream it relays.
    await pingLatencies(other, 20);
    const otherStreamCommand = { command: `head -c ${2 * MiB} /dev/zero | tr '\\0' y`, stream: true };
    assert.equal((await other.call('shell.exec', otherStreamCommand, 60_000)).error, undefined);
    const warmChunks = other.messages.length;
    const quiet = await pingLatencies(other, 100);
    const rssBefore = rssBytes(edge);

    socketOf(slow).pause();
    const id = 'stream-1';
    slow.sendRaw(JSON.stringify({ jsonrpc: '2.0', id, method: 'shell.exec', params: { command: `head -c ${STREAM_BYTES} /dev/zero | tr '\\0' x`, stream: true, timeoutMs: 150_000 } }));
    await waitFor(() => tree.logLines('remote').find((l) => l.msg === 'output paused: the client is not reading' && l.sessionId === 'slow'), 30_000, 'the edge to pause the stream');

    // Stalled. First nothing else happens for a while: unpaused, the command would send the
    // rest of its output (over 100 MiB) to the edge within this window, so the edge's RSS
    // must stay flat. Then the other client works meanwhile.
    let rssMax = rssBytes(edge);
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssBytes(edge))), 100);
    let stalled: number[];
    let otherStream = 0;
    let rssPaused = 0;
    let rssLater = 0;
    const timeline: string[] = [];
    try {
      await new Promise((r) => setTimeout(r, 500));
      rssPaused = rssBytes(edge);
      await new Promise((r) => setTimeout(r, FLAT_WINDOW_MS));
      rssLater = rssBytes(edge);
      timeline.push(`paused ${mb(rssPaused)}`, `${FLAT_WINDOW_MS} ms later ${mb(rssLater)}`);
      stalled = await pingLatencies(other, 100);
      const m = await other.call('shell.exec', otherStreamCommand, 60_000);
      assert.equal(m.error, undefined);
      otherStream = other.messages.slice(warmChunks).filter((n) => n.method === 'shell.output').reduce((s, n) => s + String(n.params?.data).length, 0);
      timeline.push(`after the other client's work ${mb(rssBytes(edge))}`);
    } finally {
      clearInterval(sampler);
    }
    assert.equal(otherStream, 2 * MiB, 'the other client did not get all of its own stream');
    assert.equal(slow.messages.find((m) => m.id === id), undefined, 'the command finished while its client was not reading');
    assert.ok(rssLater - rssPaused < FLAT_BOUND, `the edge grew by ${mb(rssLater - rssPaused)} in ${FLAT_WINDOW_MS} ms while its client was stalled`);
    const growth = rssMax - rssBefore;
    assert.ok(growth < RSS_BOUND, `the edge grew by ${mb(growth)} while a client was not reading a ${mb(STREAM_BYTES)} stream`);
    assert.ok(median(stalled) <= Math.max(3 * median(quiet), median(quiet) + 5), `other client's median ping went from ${median(quiet).toFixed(2)} ms to ${median(stalled).toFixed(2)} ms`);

    // Reading again: every byte arrives, in order, then the result.
    const resumedAt = Date.now();
    socketOf(slow).resume();
    const result = await Promise.race([
      slow.wait((m) => m.id === id, 120_000),
      slow.closed().then((code) => assert.fail(`the stalled client was closed with ${code} instead of being paused`)),
    ]);
    const drainMs = Date.now() - resumedAt;
    assert.equal(result.error, undefined, JSON.stringify(result.error));
    const r = result.result as { exitCode: number; truncated: boolean; stdout: string };
    assert.equal(r.exitCode, 0);
    assert.equal(r.truncated, true);
    const chunks = slow.messages.filter((m: RpcMessage) => m.method === 'shell.output' && m.params?.requestId === id);
    let total = 0;
    for (const c of chunks) {
      const data = String(c.params?.data);
      assert.ok(/^x*$/.test(data), 'a chunk holds something other than the command output');
      total += data.length;
    }
    assert.equal(total, STREAM_BYTES, 'streamed output was lost or duplicated');
    const rssAfter = rssBytes(edge);
    console.log(`# slow client: ${mb(STREAM_BYTES)} streamed to a stalled client (pause at ${mb(PAUSE_BYTES)} unread): edge RSS ${mb(rssBefore)} before, max ${mb(rssMax)} while stalled (+${mb(growth)}), ${mb(rssAfter)} after; all ${chunks.length} chunks (${mb(total)}) delivered in ${drainMs} ms once it read again (RSS while stalled: ${timeline.join(', ')}); other client on the same executor: ping median ${median(quiet).toFixed(2)} ms quiet, ${median(stalled).toFixed(2)} ms during the stall, its own ${mb(otherStream)} stream complete`);
  });

  test(`a client with more than ${mb(MAX_UNREAD)} of unread answers is closed with 1008 after them`, LIMIT, async () => {
    const edge = (await tree.row('websocket-daemon')).pid!;
    const setup = await bound('unread');
    assert.equal((await setup.call('fs.write', { path: 'one-mib.txt', content: 'z'.repeat(MiB - 1024) })).error, undefined);
    const slow = await bound('unread');
    const rssBefore = rssBytes(edge);
    socketOf(slow).pause();
    const READS = 60;
    for (let i = 0; i < READS; i++) slow.sendRaw(JSON.stringify({ jsonrpc: '2.0', id: `r${i}`, method: 'fs.read', params: { path: 'one-mib.txt' } }));
    await waitFor(() => tree.logLines('server').find((l) => l.msg === 'client closed: it is not reading its answers'), 30_000, 'the edge to close the client');
    const rssAtClose = rssBytes(edge);
    // Others are served meanwhile.
    assert.equal(((await setup.call('system.ping')).result as { pong: boolean }).pong, true);
    socketOf(slow).resume();
    const code = await within(slow.closed(), 60_000, 'the 1008 close to reach the client once it read again');
    assert.equal(code, 1008);
    const answered = slow.messages.filter((m) => typeof m.id === 'string' && m.id.startsWith('r') && !m.error).length;
    assert.ok(answered > 0 && answered < READS, `${answered} of ${READS} answers reached the client before 1008`);
    console.log(`# slow client, unread answers: ${READS} x 1 MiB fs.read to a stalled client; closed with ${code} past ${mb(MAX_UNREAD)} unread after ${answered} answers; edge RSS ${mb(rssBefore)} before, ${mb(rssAtClose)} at the close`);
  });
});
