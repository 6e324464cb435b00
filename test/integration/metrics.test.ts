// /metrics: Prometheus text that parses, needs a credential, and moves with real traffic
// and real kills; every metric it exports is documented in the README.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ContinuumError } from '../../src/client/index.js';
import { startTree, stopTree, waitFor, type Tree } from '../helpers/tree.js';
import { sessionClients } from './support/sessions.js';
import { kill9 } from './support/processes.js';

let tree: Tree;
const { client, closeAll } = sessionClients(() => tree);
const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../README.md');

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A strict reader of the text exposition format (0.0.4): throws on any line it can't read. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string>; help: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  // Values as Prometheus reads them (Go's ParseFloat: NaN and Inf in any case).
  const sampleLine = new RegExp(`^(${NAME})(?:\\{(.*)\\})? ([0-9.eE+-]+|[+-]?inf|nan)$`, 'i');
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/y;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (m) {
      (m[1] === 'HELP' ? help : types).set(m[2]!, m[3]!);
      continue;
    }
    m = sampleLine.exec(line);
    assert.ok(m, `not a valid exposition line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      label.lastIndex = 0;
      while (label.lastIndex < m[2].length) {
        const l = label.exec(m[2]);
        assert.ok(l, `bad labels in ${JSON.stringify(line)}`);
        labels[l[1]!] = l[2]!;
      }
    }
    const text = m[3]!.toLowerCase();
    const value = text === 'nan' ? NaN : text.endsWith('inf') ? (text.startsWith('-') ? -Infinity : Infinity) : Number(text);
    assert.ok(!Number.isNaN(value) || text === 'nan', line);
    samples.push({ name: m[1]!, labels, value });
  }
  for (const s of samples) {
    const family = [...types.keys()].find((f) => s.name === f || (s.name.startsWith(f) && /^_(bucket|sum|count|total|created)$/.test(s.name.slice(f.length))));
    assert.ok(family, `sample ${s.name} has no # TYPE`);
    assert.ok(help.has(family), `family ${family} has no # HELP`);
  }
  return { samples, types, help };
}

async function scrape(headers: Record<string, string> = { authorization: `Bearer ${tree.token('server')}` }): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`http://127.0.0.1:${tree.port}/metrics`, { headers });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

function value(samples: Sample[], name: string, labels: Record<string, string>): number {
  const found = samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found?.value ?? 0;
}

describe('/metrics', { timeout: 120_000 }, () => {
  before(async () => (tree = await startTree()));
  after(async () => {
    await closeAll();
    await stopTree(tree);
  });

  test('needs a Continuum token or the dashboard cookie', async () => {
    assert.equal((await scrape({})).status, 401);
    assert.equal((await scrape({ authorization: 'Bearer nope' })).status, 401);
    assert.equal((await scrape({ cookie: 'continuum_dashboard=1.2.3' })).status, 401);
    assert.equal((await scrape({ authorization: `Bearer ${tree.token('agent')}` })).status, 200);
  });

  test('parses as Prometheus text and exports every documented family', async () => {
    const { status, type, text } = await scrape();
    assert.equal(status, 200);
    assert.match(type ?? '', /^text\/plain; version=0\.0\.4/);
    const { types, samples } = parseExposition(text);
    const readme = fs.readFileSync(README, 'utf8');
    const ours = [...types.keys()].filter((f) => f.startsWith('continuum_') && !f.startsWith('continuum_edge_'));
    for (const family of ours) assert.ok(readme.includes(`\`${family}\``), `README documents ${family}`);
    for (const family of ['continuum_requests_total', 'continuum_request_duration_seconds', 'continuum_executor_state', 'continuum_executor_restarts_total', 'continuum_sessions_open', 'continuum_sessions_bound', 'continuum_connections_open', 'continuum_process_resident_memory_bytes', 'continuum_process_cpu_seconds_total', 'continuum_process_cpu_percent', 'continuum_supervisor_up']) {
      assert.ok(types.has(family), `exports ${family}`);
    }
    assert.equal(types.get('continuum_request_duration_seconds'), 'histogram');
    assert.equal(value(samples, 'continuum_supervisor_up', {}), 1);
    const rows = await tree.ps();
    for (const row of rows.filter((r) => r.pid !== null)) {
      assert.ok(value(samples, 'continuum_process_resident_memory_bytes', { id: row.id }) > 1024 * 1024, `RSS of ${row.id}`);
    }
    assert.equal(value(samples, 'continuum_executor_state', { executor: 'remote-0', state: 'running' }), 1);
  });

  test('request counters, latency histograms, sessions and connections move with traffic', async () => {
    const before = parseExposition((await scrape()).text).samples;
    const c = await client('agent');
    for (let i = 0; i < 3; i++) await c.ping();
    await assert.rejects(c.fs.read('no/such/file'), (e: unknown) => e instanceof ContinuumError && e.rpcCode === -32602);
    const after = parseExposition((await scrape()).text).samples;
    const delta = (name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
    assert.equal(delta('continuum_requests_total', { environment: 'agent', method: 'system.ping', outcome: 'ok' }), 3);
    assert.equal(delta('continuum_requests_total', { environment: 'agent', method: 'fs.read', outcome: 'error' }), 1);
    assert.equal(delta('continuum_requests_total', { environment: 'agent', method: 'session.connect', outcome: 'ok' }), 1);
    assert.equal(delta('continuum_request_duration_seconds_count', { environment: 'agent', method: 'system.ping' }), 3);
    // Buckets are cumulative and end at the count.
    const buckets = after.filter((s) => s.name === 'continuum_request_duration_seconds_bucket' && s.labels.environment === 'agent' && s.labels.method === 'system.ping');
    assert.ok(buckets.length > 5);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, 'cumulative buckets');
    assert.equal(buckets.at(-1)!.labels.le, '+Inf');
    assert.equal(buckets.at(-1)!.value, value(after, 'continuum_request_duration_seconds_count', { environment: 'agent', method: 'system.ping' }));
    assert.ok(value(after, 'continuum_request_duration_seconds_sum', { environment: 'agent', method: 'system.ping' }) > 0);
    assert.equal(value(after, 'continuum_sessions_bound', { environment: 'agent' }), 1);
    assert.ok(value(after, 'continuum_sessions_open', { environment: 'agent' }) >= 1);
    assert.ok(value(after, 'continuum_connections_open', { kind: 'client' }) >= 1);
    await closeAll();
    await waitFor(async () => value(parseExposition((await scrape()).text).samples, 'continuum_connections_open', { kind: 'client' }) === 0 || undefined, 5_000, 'connections gauge back to 0');
  });

  test('a killed executor shows as a restart', async () => {
    const row = await tree.row('persona-0');
    const before = parseExposition((await scrape()).text).samples;
    kill9(row.pid);
    await tree.waitRunning('persona-0', row.pid);
    const after = parseExposition((await scrape()).text).samples;
    assert.equal(value(after, 'continuum_executor_restarts_total', { executor: 'persona-0' }) - value(before, 'continuum_executor_restarts_total', { executor: 'persona-0' }), 1);
    assert.equal(value(after, 'continuum_process_restarts_total', { id: 'persona-0' }) - value(before, 'continuum_process_restarts_total', { id: 'persona-0' }), 1);
    assert.equal(value(after, 'continuum_executor_state', { executor: 'persona-0', state: 'running' }), 1);
  });
});
