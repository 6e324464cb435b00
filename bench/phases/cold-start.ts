// Phase 1: how long `continuum start` takes, in a fresh home, until the banner and until a
// client gets its first ping answered.
import { performance } from 'node:perf_hooks';
import { freePort, type Tree } from '../../test/helpers/tree.js';
import { COLD_STARTS, PING_CONFIG } from '../config.js';
import { F } from '../figures.js';
import { BenchConn } from '../load.js';
import { log } from '../log.js';
import { watchingNoise } from '../noise.js';
import { fmtMs, sleep } from '../stats.js';
import { dropTree, newTree } from '../trees.js';

/** Polls until a ping through a fresh connection succeeds; resolves with performance.now() then. */
async function firstPing(tree: Tree, deadline: number): Promise<number> {
  while (performance.now() < deadline) {
    let token: string | undefined;
    try {
      token = tree.token('remote');
    } catch {
      token = undefined;
    }
    if (!token) {
      await sleep(5);
      continue;
    }
    let conn: BenchConn;
    try {
      conn = await BenchConn.open(tree.url, token, 2_000);
    } catch {
      await sleep(5);
      continue;
    }
    try {
      while (performance.now() < deadline && !conn.closed) {
        const c = await conn.call('session.connect', { environment: 'remote' }, 2_000);
        if (c.error) {
          await sleep(5);
          continue;
        }
        while (performance.now() < deadline && !conn.closed) {
          const p = await conn.call('system.ping', undefined, 2_000);
          if (!p.error) return performance.now();
          await sleep(5);
        }
      }
    } finally {
      await conn.close();
    }
  }
  throw new Error('no successful ping before the deadline');
}

export async function phaseColdStart(): Promise<void> {
  log(`phase 1/5: cold start — spawn \`continuum start\` (fresh home) → banner, and → first answered system.ping; ${COLD_STARTS} runs`);
  for (let i = 0; i < COLD_STARTS; i++) {
    const tree = newTree(PING_CONFIG, await freePort());
    const { value, otherPercent } = await watchingNoise(`cold start ${i + 1}`, () => [tree.proc?.pid], async () => {
      const t0 = performance.now();
      const started = tree.start();
      const pinged = firstPing(tree, t0 + 15_000);
      await started;
      const banner = performance.now() - t0;
      return { banner, ping: (await pinged) - t0 };
    });
    const reported = /ready in (\d+) ms/.exec(tree.stdout)?.[1] ?? '?';
    F.coldBanner.push(value.banner);
    F.coldPing.push(value.ping);
    log(`  run ${i + 1}: banner after ${fmtMs(value.banner)} (it says "ready in ${reported} ms"), first ping answered after ${fmtMs(value.ping)}; others used ${otherPercent.toFixed(0)} % of a core`);
    await dropTree(tree);
  }
}
