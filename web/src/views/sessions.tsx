// Sessions per environment; clicking one shows its recent commands (from the environment's
// log), outcomes and artifacts (e.g. the browser daemon's screenshots).
import { useEffect, useState } from 'preact/hooks';
import type { SessionDetail, SessionRow } from '../../../src/protocol/dashboard.js';
import { feed, useFeed } from '../feed.js';
import { ago, bytes, clock, duration } from '../format.js';
import type { RpcError } from '../rpc.js';

function Detail({ sessionId, version, onClose }: { sessionId: string; version: string; onClose: () => void }) {
  const [detail, setDetail] = useState<SessionDetail | undefined>();
  const [error, setError] = useState<string | undefined>();
  // Re-read when the session changes (it ran a command, so it may have a new screenshot).
  useEffect(() => {
    feed.socket.call<SessionDetail>('sessions.detail', { sessionId }).then(
      (d) => {
        setDetail(d);
        setError(undefined);
      },
      (err: RpcError) => setError(err.message),
    );
  }, [sessionId, version]);
  return (
    <section class="card detail" data-session={sessionId}>
      <header>
        <h2>
          Session <span class="mono">{sessionId}</span>
        </h2>
        <button class="ghost" onClick={onClose}>
          close
        </button>
      </header>
      {error ? <p class="warning">{error}</p> : null}
      {!detail ? (
        <p class="muted">Loading…</p>
      ) : (
        <>
          <dl class="kv inline">
            <dt>environment</dt>
            <dd>{detail.session.environment}</dd>
            <dt>executor</dt>
            <dd class="mono">
              {detail.session.executorId} (pid {detail.session.executorPid ?? '–'})
            </dd>
            <dt>created</dt>
            <dd>{new Date(detail.session.createdAt).toLocaleString()}</dd>
            <dt>commands</dt>
            <dd>{detail.session.commands}</dd>
          </dl>
          {detail.session.environment === 'browser' ? (
            <p>
              <a href={`#/console?session=${encodeURIComponent(sessionId)}`}>Open in the console →</a>
            </p>
          ) : null}
          <h3>Recent commands</h3>
          {detail.commands.length === 0 ? (
            <p class="muted">No commands in the current log.</p>
          ) : (
            <table class="grid compact commands">
              <thead>
                <tr>
                  <th>time</th>
                  <th>method</th>
                  <th>outcome</th>
                  <th class="num">duration</th>
                  <th class="num">code</th>
                </tr>
              </thead>
              <tbody>
                {detail.commands.map((c) => (
                  <tr data-method={c.method} data-outcome={c.outcome}>
                    <td class="mono">{clock(c.time)}</td>
                    <td class="mono">{c.method}</td>
                    <td>
                      <span class={`badge outcome-${c.outcome}`}>{c.outcome}</span>
                    </td>
                    <td class="num">{duration(c.durationMs)}</td>
                    <td class="num mono">{c.code ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h3>Artifacts</h3>
          {detail.artifacts.length === 0 ? (
            <p class="muted">None. Screenshots taken with browser.screenshot appear here.</p>
          ) : (
            <div class="artifacts">
              {detail.artifacts.map((a) => (
                <a class="artifact" href={a.url} target="_blank" rel="noopener">
                  {/\.(png|jpe?g|webp)$/i.test(a.name) ? <img src={a.url} alt={a.name} loading="lazy" /> : null}
                  <span class="mono small">{a.name}</span>
                  <span class="muted small">{bytes(a.bytes)}</span>
                </a>
              ))}
            </div>
          )}
        </>
      )}
    </section>
  );
}

function SessionTable({ rows, selected, onSelect }: { rows: SessionRow[]; selected: string | undefined; onSelect: (id: string) => void }) {
  return (
    <table class="grid sessions">
      <thead>
        <tr>
          <th>session</th>
          <th>label</th>
          <th>executor</th>
          <th>created</th>
          <th>last active</th>
          <th class="num">commands</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((s) => (
          <tr key={s.sessionId} class={`clickable ${s.sessionId === selected ? 'selected' : ''}`} data-session={s.sessionId} onClick={() => onSelect(s.sessionId)}>
            <td class="mono">{s.sessionId}</td>
            <td>{s.label ?? <span class="muted">–</span>}</td>
            <td class="mono">
              {s.executorId} <span class="muted">pid {s.executorPid ?? '–'}</span>
            </td>
            <td title={new Date(s.createdAt).toLocaleString()}>{ago(s.createdAt)}</td>
            <td title={new Date(s.lastActiveAt).toLocaleString()}>{ago(s.lastActiveAt)}</td>
            <td class="num commands">{s.commands}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function SessionsView() {
  const state = useFeed();
  const [selected, setSelected] = useState<string | undefined>();
  const byEnv = new Map<string, SessionRow[]>();
  for (const env of state.environments) byEnv.set(env.name, []);
  for (const s of state.sessions) byEnv.get(s.environment)?.push(s);
  const row = state.sessions.find((s) => s.sessionId === selected);
  return (
    <div class="view sessions-view">
      <div class="split">
        <div class="grow">
          {[...byEnv].map(([env, rows]) => (
            <section class="card" key={env} data-environment={env}>
              <h2>
                {env} <span class="count">{state.sessionTotals[env] ?? 0}</span>
              </h2>
              {rows.length === 0 ? <p class="muted">No sessions.</p> : <SessionTable rows={rows} selected={selected} onSelect={setSelected} />}
              {(state.sessionTotals[env] ?? 0) > rows.length ? <p class="muted small">The {rows.length} most recently active of {state.sessionTotals[env]}.</p> : null}
            </section>
          ))}
        </div>
        {selected ? <Detail sessionId={selected} version={row ? `${row.lastActiveAt}/${row.commands}` : ''} onClose={() => setSelected(undefined)} /> : null}
      </div>
    </div>
  );
}
