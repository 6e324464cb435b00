// Phase 3: the edge's memory with 10 000 sessions in the store, then with 1 000 open
// connections each bound to its own session.
import { performance } from 'node:perf_hooks';
import { freePort } from '../../test/helpers/tree.js';
import { OPEN_CONNECTIONS, PING_CONFIG, SESSIONS } from '../config.js';
import { F } from '../figures.js';
import { BenchConn, closeAll, openMany } from '../load.js';
import { log } from '../log.js';
import { fmtMiB, hwmBytes, rssBytes, sleep } from '../stats.js';
import { dropTree, newTree, openBound, pidOf } from '../trees.js';

export async function phaseMemory(): Promise<void> {
  log(`phase 3/5: edge memory with many sessions (fresh tree, config ${JSON.stringify(PING_CONFIG)})`);
  const tree = newTree(PING_CONFIG, await freePort());
  await tree.start();
  const rows = await tree.ps();
  const edge = pidOf(rows, 'websocket-daemon');
  const executor = pidOf(rows, 'remote-0');
  const daemon = pidOf(rows, 'session-daemon');
  const mem = () => `edge RSS ${fmtMiB(rssBytes(edge))} (peak ${fmtMiB(hwmBytes(edge))}); remote executor ${fmtMiB(rssBytes(executor))}; session daemon ${fmtMiB(rssBytes(daemon))}`;
  await sleep(500);
  const baseline = rssBytes(edge);
  log(`  idle tree: ${mem()}`);

  const total = SESSIONS.connections * SESSIONS.perConnection;
  log(`  creating ${total.toLocaleString('en-US')} sessions over ${SESSIONS.connections} connections: each connection ${SESSIONS.perConnection}× session.connect {environment:"remote", mode:"new"} (which moves it to the new session) then one system.ping in it; ≤ ${SESSIONS.maxMs / 1000} s`);
  const conns = await openMany(SESSIONS.connections, () => BenchConn.open(tree.url, tree.token('remote')));
  let created = 0;
  let failures = 0;
  const t0 = performance.now();
  const deadline = t0 + SESSIONS.maxMs;
  await Promise.all(
    conns.map(async (conn, c) => {
      for (let i = 0; i < SESSIONS.perConnection && performance.now() < deadline; i++) {
        const r = await conn.call('session.connect', { environment: 'remote', mode: 'new', sessionId: `bench-${c}-${i}` });
        const p = r.error ? r : await conn.call('system.ping');
        if (r.error || p.error) {
          failures++;
          continue;
        }
        created++;
        if (created % 2_500 === 0) log(`  … ${created.toLocaleString('en-US')} sessions (${((created * 1000) / (performance.now() - t0)).toFixed(0)}/s): ${mem()}`);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  F.sessionsCreated = created;
  const counted = (await tree.ps()).find((r) => r.id === 'remote-0')?.sessions;
  await sleep(300);
  F.rss10k = rssBytes(edge);
  log(`  ${created.toLocaleString('en-US')} sessions created and pinged in ${secs.toFixed(1)} s (${(created / secs).toFixed(0)}/s, ${failures} failures); \`continuum ps\` counts ${counted} sessions on remote-0`);
  log(`  → with ${SESSIONS.connections} connections open and ${created.toLocaleString('en-US')} sessions in the store: ${mem()}`);
  await closeAll(conns);
  await sleep(300);
  const afterClose = rssBytes(edge);
  log(`  those connections closed (their sessions stay in the store): edge RSS ${fmtMiB(afterClose)}`);

  log(`  opening ${OPEN_CONNECTIONS} WebSocket connections, each bound to its own new session and pinged once, all kept open`);
  const open = await openMany(OPEN_CONNECTIONS, async (i) => {
    const conn = await openBound(tree, 'remote', { mode: 'new', sessionId: `bench-open-${i}` });
    const p = await conn.call('system.ping');
    if (p.error) throw new Error(`ping failed: ${p.error.message}`);
    if ((i + 1) % 250 === 0) log(`  … ${i + 1} connections open`);
    return conn;
  });
  F.openConnections = open.filter((c) => !c.closed).length;
  await sleep(300);
  F.rssOpen = rssBytes(edge);
  log(`  → with ${F.openConnections} connections open, each bound (${(created + OPEN_CONNECTIONS).toLocaleString('en-US')} sessions in the store): ${mem()}`);
  log(`  ≈ ${((F.rssOpen - afterClose) / OPEN_CONNECTIONS / 1024).toFixed(1)} KiB of edge RSS per open bound connection; the idle edge was ${fmtMiB(baseline)}`);
  await closeAll(open);
  await dropTree(tree);
}
