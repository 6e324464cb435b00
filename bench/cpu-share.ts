// `node dist/bench/cpu-share.js`: system.ping p50/p99 of the remote environment while idle,
// then while a busy loop runs in the agent environment (held to its cpu share by its cgroup).
import { performance } from 'node:perf_hooks';
import { startTree, stopTree } from '../test/helpers/tree.js';

const N = 400;

async function pings(c: { ping(): Promise<unknown> }): Promise<{ p50: number; p99: number }> {
  const t: number[] = [];
  for (let i = 0; i < 50; i++) await c.ping();
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    await c.ping();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return { p50: t[Math.floor(N * 0.5)]!, p99: t[Math.floor(N * 0.99)]! };
}

const tree = await startTree({ config: { environments: [{ name: 'agent', sandbox: { cpu: 0.5 } }] } });
try {
  const remote = await tree.client('remote', { reconnect: false });
  const agent = await tree.client('agent', { reconnect: false });
  const idle = await pings(remote);
  const busy = agent.exec('timeout 30 sh -c "while :; do :; done" & timeout 30 sh -c "while :; do :; done"; true', { timeoutMs: 60_000 });
  await new Promise((r) => setTimeout(r, 1_000));
  const loaded = await pings(remote);
  await busy.catch(() => undefined);
  console.log(`remote system.ping while idle: p50 ${idle.p50.toFixed(2)} ms, p99 ${idle.p99.toFixed(2)} ms`);
  console.log(`remote system.ping while agent runs two busy loops (cpu share 0.5): p50 ${loaded.p50.toFixed(2)} ms, p99 ${loaded.p99.toFixed(2)} ms (${(loaded.p50 / idle.p50).toFixed(2)}× idle p50)`);
  await remote.close();
  await agent.close();
} finally {
  await stopTree(tree);
}
