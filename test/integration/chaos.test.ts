// Chaos (issue 4): 50 SDK clients drive mixed commands across all five environments for
// 60 s while a driver kill -9s a random executor or daemon (the edge included) every 2-5 s.
// Afterwards: every request got a result or a typed error within its deadline (none hung);
// every ledger entry is final; every session's state and shell cwd are what its client last
// wrote; the edge's RSS has not grown by more than 20 %. Prints the figures.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { ContinuumClient } from '../../src/client/index.js';
import { ContinuumError } from '../../src/protocol/errors.js';
import type { CommandEntry } from '../../src/protocol/methods/command.js';
import { startTree, stopTree, waitFor, type PsRow, type Tree } from '../helpers/tree.js';
import { retrying } from './support/waits.js';

const ENVIRONMENTS = ['browser', 'server', 'remote', 'agent', 'persona'] as const;
const CLIENTS = 50;
const RUN_MS = Number(process.env.CHAOS_MS ?? 60_000);
const REQUEST_TIMEOUT_MS = 20_000;
const WARMUP_MS = 10_000;
/** Errors a client may see while processes die under it: all typed, all meaning "try again" or "lost". */
const EXPECTED = new Set(['CONTINUUM_EXECUTOR_UNAVAILABLE', 'CONTINUUM_COMMAND_LOST', 'CONTINUUM_TIMEOUT', 'CONTINUUM_OVERLOADED', 'CONTINUUM_CONNECTION_LOST']);
const rand = (n: number) => Math.floor(Math.random() * n);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssOf(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function titleOf(pid: number): Promise<string> {
  return fs.promises.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
}

interface Driver {
  client: ContinuumClient;
  env: string;
  /** What this client last had acknowledged: the value of key `v` and the shell cwd. */
  value: number;
  cwd: string;
  base: string;
}

describe('chaos', () => {
  let tree: Tree;
  const drivers: Driver[] = [];
  const outcomes = new Map<string, number>();
  const unexpected: string[] = [];
  let requests = 0;
  let hung = 0;

  before(async () => {
    // A generous breaker: this suite is about what clients see, not about giving up on a child.
    tree = await startTree({ config: { restart: { intensity: 1000, periodMs: 60_000, backoffMaxMs: 1_000 } } });
  });
  after(async () => {
    for (const d of drivers) await d.client.close().catch(() => undefined);
    await stopTree(tree);
  });

  /** One request: counted, classified, never allowed to hang past its deadline. */
  async function run<T>(what: () => Promise<T>): Promise<T | undefined> {
    requests++;
    try {
      const r = await what();
      outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
      return r;
    } catch (err) {
      const code = err instanceof ContinuumError ? err.code : `untyped ${(err as Error).name}`;
      outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
      if (code === 'CONTINUUM_CLIENT_TIMEOUT') hung++;
      else if (!EXPECTED.has(code) && unexpected.length < 20) unexpected.push(`${code}: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** A write is repeated (same value, new request) until acknowledged, so "last written" is known. */
  async function settle<T>(deadline: number, what: () => Promise<T>): Promise<T | undefined> {
    for (;;) {
      const r = await run(what);
      if (r !== undefined || Date.now() > deadline) return r;
      await sleep(50);
    }
  }

  async function drive(d: Driver, until: number): Promise<void> {
    let n = 0;
    while (Date.now() < until) {
      n++;
      const pick = rand(10);
      if (pick < 2) {
        const dir = `${d.base}/d${rand(4)}`;
        const r = await settle(until + 30_000, () => d.client.exec(`cd ${dir} && pwd`, { timeoutMs: 5_000 }));
        if (r && r.exitCode === 0) d.cwd = dir;
      } else if (pick < 4) {
        const value = d.value + 1;
        if (await settle(until + 30_000, () => d.client.state.set('v', value))) d.value = value;
      } else if (pick < 5) await run(() => d.client.exec('sleep 0.2; echo slept', { timeoutMs: 5_000 }));
      else if (pick < 6) await run(() => d.client.state.get('v'));
      else if (pick < 7) await run(() => d.client.ping());
      else if (pick < 8) await run(() => d.client.fs.write(`notes/${rand(3)}.txt`, `note ${n}`));
      else if (pick < 9) await run(() => d.client.fs.read('seed.txt'));
      else await run(() => d.client.exec('echo $RANDOM', { timeoutMs: 5_000 }));
      await sleep(10 + rand(30));
    }
  }

  test('50 clients, random kill -9s of executors and daemons for 60 s: nothing hung, nothing left open, nothing lost', { timeout: 300_000 }, async (t) => {
    for (let i = 0; i < CLIENTS; i++) {
      const env = ENVIRONMENTS[i % ENVIRONMENTS.length]!;
      const client = await tree.client(env, { sessionId: `chaos-${env}-${i}`, requestTimeoutMs: REQUEST_TIMEOUT_MS, reconnect: { initialMs: 50, maxMs: 1_000 } });
      const setup = await client.exec('mkdir -p d0 d1 d2 d3 notes && echo seed > seed.txt && pwd');
      const base = setup.stdout.trim();
      await client.state.set('v', 0);
      drivers.push({ client, env, value: 0, cwd: base, base });
    }

    const loadStart = Date.now();
    const until = loadStart + RUN_MS;
    const load = Promise.all(drivers.map((d) => drive(d, until)));

    // `continuum ps` is slow on a loaded machine, so it runs in a loop of its own; the driver
    // kills on its own clock with the latest pids it knows, and samples the edge's RSS.
    let rows: PsRow[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        rows = await tree.ps().catch(() => rows);
        await sleep(200);
      }
    })();
    await waitFor(() => rows.length > 0, 20_000, 'a first `continuum ps`');
    const edgeSamples: { pid: number; rss: number; at: number }[] = [];
    const sampleEdge = () => {
      const pid = rows.find((r) => r.id === 'websocket-daemon')?.pid;
      const rss = pid ? rssOf(pid) : undefined;
      if (pid && rss) edgeSamples.push({ pid, rss, at: Date.now() });
    };
    const sampler = setInterval(sampleEdge, 1_000);
    sampler.unref();

    const kills = new Map<string, number>();
    const killLog: string[] = [];
    let skipped = 0;
    const targets = ['session-daemon', 'websocket-daemon', ...ENVIRONMENTS.map((e) => `${e}-0`)];
    while (Date.now() < until - 2_000) {
      await sleep(2_000 + rand(3_000));
      const id = targets[rand(targets.length)]!;
      const row = rows.find((r) => r.id === id);
      // Only a process that still carries the name ps gave it: never a stranger with a reused pid.
      if (!row?.pid || row.state !== 'running' || !(await titleOf(row.pid)).startsWith('continuum-')) {
        skipped++;
        continue;
      }
      try {
        process.kill(row.pid, 'SIGKILL');
        kills.set(id, (kills.get(id) ?? 0) + 1);
        killLog.push(`${Date.now() % 100_000} ${id} ${row.pid}`);
      } catch {
        skipped++; // it died by itself meanwhile
      }
    }
    await load;

    polling = false;
    clearInterval(sampler);
    await poller;
    // The edge's heap grows to its working size in the first seconds of load (V8 sizes its
    // young generation to the allocation rate): "start" is the first sample after that warm-up.
    const rssStart = edgeSamples.find((x) => x.at >= loadStart + WARMUP_MS) ?? edgeSamples[0]!;

    // Everything comes back, and every client is connected again.
    for (const id of targets) await tree.waitRunning(id, null, 20_000);
    await waitFor(() => drivers.every((d) => d.client.connected), 20_000, 'every client to be connected');
    rows = await tree.ps();
    sampleEdge();
    const rssEnd = edgeSamples.at(-1)!;

    // Every session's state and cwd are what its client last had acknowledged.
    const mismatches: string[] = [];
    for (const d of drivers) {
      const v = await retrying(() => d.client.state.get('v'), 20_000);
      const pwd = (await retrying(() => d.client.exec('pwd'), 20_000)).stdout.trim();
      if (v !== d.value) mismatches.push(`${d.client.session.sessionId}: v is ${String(v)}, last written ${d.value}`);
      if (pwd !== d.cwd) mismatches.push(`${d.client.session.sessionId}: cwd is ${pwd}, last written ${d.cwd}`);
    }

    // Every ledger entry of every session is in a final state.
    const states = new Map<string, number>();
    const open: string[] = [];
    for (const d of drivers) {
      let since = 0;
      for (;;) {
        const page = (await retrying(() => d.client.request('command.list', { since, limit: 10_000 }), 20_000)) as { entries: CommandEntry[]; more: boolean };
        for (const e of page.entries) {
          states.set(e.state, (states.get(e.state) ?? 0) + 1);
          if (!['completed', 'failed', 'lost'].includes(e.state)) open.push(`${e.sessionId} ${e.requestId} ${e.method} ${e.state} ${e.executorId} accepted ${e.acceptedAt % 100_000} started ${String((e.startedAt ?? 0) % 100_000)}`);
        }
        if (!page.more) break;
        since = page.entries.at(-1)!.acceptedAt + 1;
      }
    }
    const lostReasons = new Map<string, number>();
    for (const d of drivers) {
      const page = (await d.client.request('command.list', { limit: 10_000 })) as { entries: CommandEntry[] };
      for (const e of page.entries) if (e.lostReason) lostReasons.set(`${e.lostReason.kind}/${e.lostReason.signal ?? '-'}`, (lostReasons.get(`${e.lostReason.kind}/${e.lostReason.signal ?? '-'}`) ?? 0) + 1);
    }

    const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
    const edgePids = [...new Set(edgeSamples.map((s) => s.pid))];
    const report = [
      `chaos: ${CLIENTS} clients over ${ENVIRONMENTS.length} environments for ${RUN_MS / 1000} s`,
      `  requests: ${requests}; outcomes: ${[...outcomes].map(([k, v]) => `${k.replace('CONTINUUM_', '')} ${v}`).join(', ')}; hung: ${hung}`,
      `  kills: ${[...kills.values()].reduce((a, b) => a + b, 0)} (${[...kills].map(([k, v]) => `${k} ×${v}`).join(', ')}); ${skipped} skipped (target restarting)`,
      `  ledger entries: ${[...states].map(([k, v]) => `${k} ${v}`).join(', ')}; lost reasons: ${[...lostReasons].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
      `  edge RSS: ${mib(rssStart.rss)} at the start (pid ${rssStart.pid}, ${WARMUP_MS / 1000} s into the load), ${mib(rssEnd.rss)} at the end (pid ${rssEnd.pid}); ${edgePids.length} edge process(es) seen`,
      `  edge RSS per process (first → last, max): ${edgePids.map((pid) => { const xs = edgeSamples.filter((x) => x.pid === pid).map((x) => x.rss); return `${pid}: ${mib(xs[0]!)} → ${mib(xs.at(-1)!)} (max ${mib(Math.max(...xs))}, ${xs.length} samples)`; }).join('; ')}`,
      `  state/cwd mismatches: ${mismatches.length}; unexpected errors: ${unexpected.length}`,
    ].join('\n');
    if (open.length || hung) process.stdout.write(`kills: ${killLog.join(', ')}\nopen: ${open.join('\n')}\n`);
    t.diagnostic(report);
    process.stdout.write(`${report}\n`);

    assert.equal(hung, 0, 'requests that got no answer within their deadline');
    assert.deepEqual(unexpected, [], 'errors other than the typed ones a crash explains');
    assert.deepEqual(open, [], 'ledger entries not in a final state');
    assert.deepEqual(mismatches, []);
    assert.ok([...kills.values()].reduce((a, b) => a + b, 0) + skipped >= Math.floor(RUN_MS / 5_000) - 1, 'the driver struck about every 2-5 s');
    assert.ok([...kills.values()].reduce((a, b) => a + b, 0) >= Math.floor(RUN_MS / 6_000), 'most strikes found their target running');
    assert.ok(rssEnd.rss <= rssStart.rss * 1.2, `edge RSS grew from ${mib(rssStart.rss)} to ${mib(rssEnd.rss)}`);
  });
});
