// A live tail of one environment's log. The server filters (session, level, text) and sends
// new lines in batches; the page keeps a bounded buffer and renders only the rows in view,
// so a burst of thousands of lines doesn't freeze it.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { LogLine } from '../../../src/protocol/dashboard.js';
import { VirtualList } from '../components/virtual-list.js';
import { feed, useFeed } from '../feed.js';
import { LEVELS } from '../format.js';

export const BUFFER_LINES = 5_000;
const ROW_HEIGHT = 22;
const LEVEL_CHOICES = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
const SHOWN_ELSEWHERE = new Set(['time', 'level', 'msg', 'sessionId', 'method', 'outcome', 'durationMs', 'env', 'pid', 'requestId', 'code']);

function time(r: Record<string, unknown>): string {
  return typeof r.time === 'number' ? new Date(r.time).toISOString().slice(11, 23) : '';
}

function Line({ line }: { line: LogLine }) {
  const r = line.record;
  const level = LEVELS[Number(r.level ?? 30)] ?? 'info';
  const extra = Object.entries(r)
    .filter(([k]) => !SHOWN_ELSEWHERE.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return (
    <div class={`logline level-${level}`} data-session={String(r.sessionId ?? '')} data-method={String(r.method ?? '')}>
      <span class="t">{time(r)}</span>
      <span class={`lvl lvl-${level}`}>{level}</span>
      {r.sessionId ? <span class="sid">{String(r.sessionId).slice(0, 16)}</span> : null}
      {r.method ? <span class="method">{String(r.method)}</span> : null}
      <span class="msg">{String(r.msg ?? '')}</span>
      {r.outcome ? <span class={`badge outcome-${String(r.outcome)}`}>{String(r.outcome)}{r.code !== undefined ? ` ${String(r.code)}` : ''}</span> : null}
      {typeof r.durationMs === 'number' ? <span class="dur">{r.durationMs} ms</span> : null}
      {extra ? <span class="extra">{extra}</span> : null}
    </div>
  );
}

/** Filters from the hash (#/logs?env=browser&session=…), so a link can open a filtered tail. */
function initialFilter(): { environment: string; sessionId: string; level: string; text: string } {
  const q = new URLSearchParams(location.hash.split('?')[1] ?? '');
  return { environment: q.get('env') ?? 'browser', sessionId: q.get('session') ?? '', level: q.get('level') ?? '', text: q.get('text') ?? '' };
}

export function LogsView() {
  const state = useFeed();
  const [filter, setFilter] = useState(initialFilter);
  // A link to a filtered tail (#/logs?env=…&session=…) applies even when the view is open.
  useEffect(() => {
    const onHash = () => {
      if (location.hash.startsWith('#/logs?')) setFilter(initialFilter());
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  const [follow, setFollow] = useState(true);
  const [paused, setPaused] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [version, setVersion] = useState(0);
  const buffer = useRef<LogLine[]>([]);
  const dropped = useRef(0);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;

  // Lines arrive for the current follow only; a reset replaces the buffer.
  useEffect(
    () =>
      feed.onLogLines((p) => {
        if (p.environment !== filter.environment) return;
        if (p.reset) {
          buffer.current = [];
          dropped.current = 0;
        } else if (pausedRef.current) return;
        const b = buffer.current;
        b.push(...p.lines);
        dropped.current += p.dropped;
        if (b.length > BUFFER_LINES) b.splice(0, b.length - BUFFER_LINES);
        setVersion((v) => v + 1);
      }),
    [filter.environment],
  );

  // (Re)start the server-side tail when the filter changes or the feed reconnects.
  useEffect(() => {
    if (state.connection !== 'open') return;
    const handle = setTimeout(() => {
      const params: Record<string, string> = { environment: filter.environment };
      if (filter.sessionId.trim()) params.sessionId = filter.sessionId.trim();
      if (filter.level) params.level = filter.level;
      if (filter.text) params.text = filter.text;
      feed.socket.call('logs.follow', params).then(
        () => setError(undefined),
        (err: Error) => setError(err.message),
      );
    }, 200);
    return () => clearTimeout(handle);
  }, [filter.environment, filter.sessionId, filter.level, filter.text, state.connection]);
  useEffect(() => () => void feed.socket.call('logs.stop').catch(() => undefined), []);

  const files = [...state.environments.map((e) => e.name), 'server'];
  const set = (k: keyof typeof filter) => (e: Event) => setFilter({ ...filter, [k]: (e.currentTarget as HTMLInputElement).value });
  return (
    <div class="view logs-view">
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        <label>
          log
          <select value={filter.environment} onChange={set('environment')} name="environment">
            {files.map((f) => (
              <option value={f}>{f}.log</option>
            ))}
          </select>
        </label>
        <label>
          session
          <input type="text" placeholder="any" value={filter.sessionId} onInput={set('sessionId')} name="session" spellcheck={false} />
        </label>
        <label>
          level ≥
          <select value={filter.level} onChange={set('level')} name="level">
            <option value="">any</option>
            {LEVEL_CHOICES.map((l) => (
              <option value={l}>{l}</option>
            ))}
          </select>
        </label>
        <label class="grow">
          text
          <input type="search" placeholder="contains…" value={filter.text} onInput={set('text')} name="text" />
        </label>
        <button type="button" class={paused ? 'primary' : 'ghost'} onClick={() => setPaused(!paused)}>
          {paused ? 'resume' : 'pause'}
        </button>
      </form>
      <div class="logs-status muted small">
        <span data-count={buffer.current.length}>{buffer.current.length.toLocaleString()} lines</span> (newest {BUFFER_LINES.toLocaleString()} kept)
        {dropped.current ? <span class="warn-text"> · {dropped.current.toLocaleString()} skipped in bursts</span> : null}
        {paused ? <span> · paused</span> : follow ? <span> · following</span> : <span> · scrolled up: not following</span>}
        {error ? <span class="warn-text"> · {error}</span> : null}
      </div>
      <VirtualList items={buffer.current} version={version} rowHeight={ROW_HEIGHT} follow={follow && !paused} onFollowChange={setFollow} render={(line) => <Line line={line} />} />
    </div>
  );
}
