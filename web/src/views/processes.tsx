// The process tree as `continuum ps` shows it, live: state, restarts, uptime, CPU and RSS
// with their charts, each environment's sandbox as its executor reports it, and every
// state change as it happens.
import type { ProcessEvent, ProcessInfo, ProcessRow } from '../../../src/protocol/dashboard.js';
import { Sparkline } from '../components/sparkline.js';
import { useFeed, type FeedState } from '../feed.js';
import { bytes, clock, duration, percent } from '../format.js';

export function StateBadge({ state }: { state: string }) {
  return <span class={`badge state-${state}`}>{state}</span>;
}

function Row({ row, feed, standby }: { row: ProcessRow; feed: FeedState; standby?: boolean }) {
  const points = feed.history.get(row.id);
  return (
    <tr class={`proc ${row.state === 'failed' ? 'is-failed' : ''} ${standby ? 'is-standby' : ''}`} data-id={row.id} data-state={row.state} data-pid={row.pid ?? ''} data-restarts={row.restarts}>
      <td class="name">
        {standby ? <span class="tree-mark">└ standby</span> : row.name}
        {row.reason && row.state !== 'running' ? <div class="reason">{row.reason}</div> : null}
        {row.state === 'failed' ? <div class="hint">run <code>continuum restart {row.environment ?? row.id}</code> to try again</div> : null}
      </td>
      <td class="mono">{row.id}</td>
      <td class="mono num pid">{row.pid ?? '–'}</td>
      <td>{row.environment ?? '–'}</td>
      <td>
        <StateBadge state={row.state} />
      </td>
      <td class="num restarts">{row.restarts}</td>
      <td class="num">{row.pid && !standby ? duration(row.uptimeMs) : '–'}</td>
      <td class="num chart-cell">
        <span class="figure">{percent(row.cpuPercent)}</span>
        <Sparkline points={points} field={1} windowMs={feed.chartWindowMs} floor={5} label={`CPU of ${row.id}`} />
      </td>
      <td class="num chart-cell">
        <span class="figure">{bytes(row.rssBytes)}</span>
        <Sparkline points={points} field={2} windowMs={feed.chartWindowMs} label={`RSS of ${row.id}`} />
      </td>
      <td class="num">{row.sessions ?? '–'}</td>
    </tr>
  );
}

function describeNetwork(network: unknown): string {
  if (typeof network === 'string') return network;
  if (network && typeof network === 'object' && Array.isArray((network as { allow?: unknown }).allow)) return `allow ${((network as { allow: string[] }).allow).join(', ') || 'nothing'}`;
  return '–';
}

/** The unified (v2) cgroup, else the memory controller's (v1): where the limits would live. */
function cgroupOf(lines: string[] | undefined): string {
  const unified = lines?.find((l) => l.startsWith('0::'));
  const memory = lines?.find((l) => /^\d+:[^:]*\bmemory\b/.test(l));
  const line = unified && unified !== '0::/' ? unified : memory ?? unified;
  return line ? line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1) : '–';
}

const RLIMITS = ['Max processes', 'Max open files', 'Max address space', 'Max cpu time'];

function SandboxCard({ name, info, failed }: { name: string; info: ProcessInfo | null | undefined; failed: boolean }) {
  const profile = info?.sandbox.profile as Record<string, unknown> | undefined;
  const limits = info?.limits as { rlimits?: Record<string, { soft: string; hard: string }>; cgroup?: string[] } | undefined;
  return (
    <section class={`card env-card ${failed ? 'is-failed' : ''}`} data-environment={name}>
      <header>
        <h3>{name}</h3>
        {info ? <span class={`badge ${info.sandbox.enforced ? 'ok' : 'warn'}`}>{info.sandbox.enforced ? 'enforced' : 'not enforced'}</span> : null}
      </header>
      {!info ? (
        <p class="muted">{failed ? 'failed: no executor running' : 'waiting for the executor to report…'}</p>
      ) : (
        <>
          <dl class="kv">
            <dt>isolation</dt>
            <dd>{String(profile?.isolation ?? '–')}</dd>
            <dt>memory</dt>
            <dd>{typeof profile?.memory === 'number' ? bytes(profile.memory) : 'no limit'}</dd>
            <dt>cpu</dt>
            <dd>{typeof profile?.cpu === 'number' ? `${profile.cpu} core` : 'no limit'}</dd>
            <dt>pids</dt>
            <dd>{typeof profile?.pids === 'number' ? profile.pids : 'no limit'}</dd>
            <dt>network</dt>
            <dd>{describeNetwork(profile?.network)}</dd>
            <dt>seccomp</dt>
            <dd>{profile?.seccomp ? 'on' : 'off'}</dd>
            <dt>uid / gid</dt>
            <dd>
              {info.uid} / {info.gid}
            </dd>
            {RLIMITS.map((k) =>
              limits?.rlimits?.[k] ? (
                <>
                  <dt>{k.replace('Max ', '')}</dt>
                  <dd class="mono">
                    {limits.rlimits[k]!.soft} / {limits.rlimits[k]!.hard}
                  </dd>
                </>
              ) : null,
            )}
            <dt>cgroup</dt>
            <dd class="mono small">{cgroupOf(limits?.cgroup)}</dd>
          </dl>
          {info.sandbox.warnings.map((w) => (
            <p class="warning">{w}</p>
          ))}
        </>
      )}
    </section>
  );
}

function EventList({ events }: { events: ProcessEvent[] }) {
  if (events.length === 0) return <p class="muted">No state changes since the dashboard started.</p>;
  return (
    <ol class="events">
      {[...events].reverse().slice(0, 30).map((e) => (
        <li data-id={e.id} data-state={e.state} data-pid={e.pid ?? ''} data-restarts={e.restarts}>
          <div>
            <span class="time">{clock(e.time)}</span> <span class="mono">{e.id}</span> <StateBadge state={e.state} />
          </div>
          <div class="muted small">
            {e.pid ? `pid ${e.pid} · ` : ''}restarts {e.restarts}
            {e.reason && e.state !== 'running' ? ` · ${e.reason}` : ''}
          </div>
        </li>
      ))}
    </ol>
  );
}

export function ProcessesView() {
  const feed = useFeed();
  const table = feed.table;
  if (!table) return <p class="muted">Reading the process tree…</p>;
  const failed = new Set(table.processes.filter((r) => r.state === 'failed' && r.environment).map((r) => r.environment!));
  return (
    <div class="view processes">
      {failed.size ? (
        <div class="alert alert-error" role="alert">
          {[...failed].map((env) => (
            <div key={env}>
              Environment <strong>{env}</strong> has failed (crash loop): its requests get -32003 until someone runs <code>continuum restart {env}</code>.
            </div>
          ))}
        </div>
      ) : null}
      <section class="card">
        <h2>Process tree</h2>
        <table class="grid">
          <thead>
            <tr>
              <th>name</th>
              <th>id</th>
              <th class="num">pid</th>
              <th>environment</th>
              <th>state</th>
              <th class="num">restarts</th>
              <th class="num">uptime</th>
              <th class="num">CPU</th>
              <th class="num">RSS</th>
              <th class="num">sessions</th>
            </tr>
          </thead>
          <tbody>
            {table.processes.flatMap((row) => [
              <Row key={row.id} row={row} feed={feed} />,
              ...table.standbys.filter((s) => s.id === `${row.id}.standby`).map((s) => <Row key={s.id} row={s} feed={feed} standby />),
            ])}
          </tbody>
        </table>
        <p class="muted small">Charts: the last {Math.round(feed.chartWindowMs / 60_000)} minutes, sampled every 2 s (the figures /metrics exports).</p>
      </section>
      <div class="split">
        <section class="card grow">
          <h2>Sandbox profiles</h2>
          <p class="muted small">As each environment's executor reports it (<code>process.info</code>).</p>
          <div class="env-cards">
            {feed.environments.map((env) => (
              <SandboxCard key={env.name} name={env.name} info={feed.processInfo[`${env.name}-0`]} failed={failed.has(env.name)} />
            ))}
          </div>
        </section>
        <section class="card events-card">
          <h2>State changes</h2>
          <EventList events={feed.events} />
        </section>
      </div>
    </div>
  );
}
