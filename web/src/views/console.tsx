// The human `browser` environment: open or join a session, run shell.exec (streamed), fs.*
// and state.*, and see the results. The page's cookie grants the browser environment on
// /ws. The session id and the transcript are kept in this browser, so a reload or a lost
// connection comes back to the same session with its history. A command sent while the
// executor is down waits, and goes when the executor is back.
import { useEffect, useRef, useState } from 'preact/hooks';
import { useFeed } from '../feed.js';
import { clock, duration } from '../format.js';
import { DISCONNECTED, RpcError, RpcSocket, wsUrl, type SocketState } from '../rpc.js';

const ENVIRONMENT = 'browser';
const SESSION_KEY = 'continuum.console.session';
const HISTORY_KEY = (sid: string) => `continuum.console.history.${sid}`;
const MAX_ENTRIES = 200;
const MAX_OUTPUT = 64 * 1024;
const MAX_ATTEMPTS = 5;
const UNAVAILABLE = -32003;

const METHODS = ['shell.exec', 'fs.list', 'fs.read', 'fs.write', 'fs.stat', 'fs.delete', 'state.get', 'state.set', 'state.list', 'state.delete'] as const;
type Method = (typeof METHODS)[number];

interface Entry {
  id: number;
  method: Method;
  /** What the person typed, for display. */
  input: string;
  params: Record<string, unknown>;
  /** waiting: to be sent when the executor can take it; retrying: waits out a back-off first. */
  status: 'waiting' | 'retrying' | 'running' | 'ok' | 'error';
  output: { stream: 'stdout' | 'stderr'; data: string }[];
  result?: unknown;
  error?: string;
  note?: string;
  startedAt: number;
  durationMs?: number;
  attempts: number;
}

interface Note {
  id: number;
  note: string;
  time: number;
}

type Item = Entry | Note;
const isNote = (i: Item): i is Note => !('method' in i);

function loadHistory(sid: string): Item[] {
  try {
    const items = JSON.parse(localStorage.getItem(HISTORY_KEY(sid)) ?? '[]') as Item[];
    // A command that was running when the page went away has no answer to wait for.
    return items.map((i) => {
      if (isNote(i)) return i;
      if (i.status === 'running') return { ...i, status: 'error', error: 'the page was reloaded while this ran; its answer is lost (the session log has its outcome)' };
      if (i.status === 'waiting' || i.status === 'retrying') return { ...i, status: 'error', error: 'the page was reloaded before this was sent; it did not run' };
      return i;
    });
  } catch {
    return [];
  }
}

function saveHistory(sid: string, items: Item[]): void {
  try {
    localStorage.setItem(HISTORY_KEY(sid), JSON.stringify(items.slice(-MAX_ENTRIES)));
  } catch {
    // Storage full: the transcript still lives on the page.
  }
}

function paramsFor(method: Method, a: string, b: string): Record<string, unknown> {
  switch (method) {
    case 'shell.exec':
      return { command: a, stream: true };
    case 'fs.list':
      return a ? { path: a } : {};
    case 'fs.write':
      return { path: a, content: b };
    case 'state.set': {
      let value: unknown = b;
      try {
        value = JSON.parse(b);
      } catch {
        // Not JSON: stored as the string typed.
      }
      return { key: a, value };
    }
    case 'state.get':
    case 'state.delete':
      return { key: a };
    case 'state.list':
      return {};
    default:
      return { path: a };
  }
}

function placeholder(method: Method): [string, string | undefined] {
  if (method === 'shell.exec') return ['command, e.g. ls -la; echo $PWD', undefined];
  if (method === 'fs.write') return ['path', 'content'];
  if (method === 'state.set') return ['key', 'value (JSON, or text)'];
  if (method.startsWith('state.')) return [method === 'state.list' ? '(no parameters)' : 'key', undefined];
  return [method === 'fs.list' ? 'path (empty: the workspace)' : 'path', undefined];
}

function ResultView({ entry }: { entry: Entry }) {
  if (entry.method === 'shell.exec') {
    const r = entry.result as { exitCode: number | null; signal: string | null; stdout: string; stderr: string; timedOut: boolean; truncated: boolean } | undefined;
    const streamed = entry.output.length > 0;
    const chunks = streamed ? entry.output : r ? [{ stream: 'stdout' as const, data: r.stdout }, { stream: 'stderr' as const, data: r.stderr }].filter((c) => c.data) : [];
    return (
      <>
        {chunks.length ? (
          <pre class="out">
            {chunks.map((c) => (
              <span class={c.stream}>{c.data}</span>
            ))}
          </pre>
        ) : null}
        {r ? <div class={`exit ${r.exitCode === 0 ? 'ok' : 'bad'}`}>exit {r.exitCode ?? r.signal}{r.timedOut ? ' · timed out' : ''}{r.truncated ? ' · output truncated' : ''}</div> : null}
      </>
    );
  }
  if (entry.result === undefined) return null;
  const r = entry.result as Record<string, unknown>;
  if (Object.keys(r).length === 1 && r.ok === true) return <div class="exit ok">ok</div>;
  if (entry.method === 'fs.read' && typeof r.content === 'string') return <pre class="out">{r.content}</pre>;
  if (entry.method === 'fs.list' && Array.isArray(r.entries)) {
    const rows = r.entries as { name: string; type: string; size: number }[];
    return rows.length === 0 ? <div class="muted">(empty)</div> : <pre class="out">{rows.map((e) => `${e.type === 'directory' ? 'd' : e.type === 'symlink' ? 'l' : '-'} ${String(e.size).padStart(9)}  ${e.name}${e.type === 'directory' ? '/' : ''}`).join('\n')}</pre>;
  }
  return <pre class="out json">{JSON.stringify(entry.result, null, 2)}</pre>;
}

function EntryView({ entry }: { entry: Entry }) {
  return (
    <div class={`entry status-${entry.status}`} data-method={entry.method} data-status={entry.status} data-attempts={entry.attempts}>
      <div class="entry-head">
        <span class="prompt">{entry.method === 'shell.exec' ? '$' : entry.method}</span>
        <span class="input mono">{entry.input}</span>
        <span class="meta">
          {entry.status === 'waiting' || entry.status === 'retrying' ? <span class="badge warn">waiting for the executor</span> : entry.status === 'running' ? <span class="badge info">running</span> : null}
          {entry.durationMs !== undefined ? <span class="muted"> {duration(entry.durationMs)}</span> : null}
          <span class="muted"> {clock(entry.startedAt)}</span>
        </span>
      </div>
      {entry.note ? <div class="note">{entry.note}</div> : null}
      <ResultView entry={entry} />
      {entry.error ? <div class="error-text">{entry.error}</div> : null}
    </div>
  );
}

export function ConsoleView() {
  const state = useFeed();
  const [connection, setConnection] = useState<SocketState>('connecting');
  const [connectionDetail, setConnectionDetail] = useState<string | undefined>();
  const [session, setSession] = useState<{ sessionId: string; executor: { id: string; pid: number } } | undefined>();
  const [items, setItems] = useState<Item[]>([]);
  const [method, setMethod] = useState<Method>('shell.exec');
  const [a, setA] = useState('');
  const [b, setB] = useState('');
  const [joinId, setJoinId] = useState('');
  const socket = useRef<RpcSocket | undefined>(undefined);
  const nextId = useRef(1);
  const itemsRef = useRef(items);
  itemsRef.current = items;
  const sessionRef = useRef(session);
  sessionRef.current = session;
  const transcript = useRef<HTMLDivElement>(null);
  /** The session to bind at the next (re)connect; "" for a new one. */
  const wanted = useRef<string>(new URLSearchParams(location.hash.split('?')[1] ?? '').get('session') ?? localStorage.getItem(SESSION_KEY) ?? '');

  const update = (id: number, patch: Partial<Entry> | ((e: Entry) => Partial<Entry>)) =>
    setItems((list) => list.map((i) => (i.id === id && !isNote(i) ? { ...i, ...(typeof patch === 'function' ? patch(i) : patch) } : i)));
  const note = (text: string) => setItems((list) => [...list, { id: nextId.current++, note: text, time: Date.now() }]);

  /** Binds the connection to the wanted session (or a new one), and loads its transcript. */
  const bind = async (sock: RpcSocket) => {
    const sid = wanted.current;
    const params = sid ? { environment: ENVIRONMENT, sessionId: sid, mode: 'join' } : { environment: ENVIRONMENT, label: 'dashboard console' };
    let r: { sessionId: string; action: string; executor: { id: string; pid: number } };
    try {
      r = await sock.call('session.connect', params);
    } catch (err) {
      // A remembered session that can't be ours (another environment, a bad id): start afresh.
      if (!sid || !(err instanceof RpcError) || ![-32011, -32602, -32010].includes(err.code)) throw err;
      note(`Could not resume session ${sid}: ${err.message}. Opened a new one.`);
      wanted.current = '';
      return bind(sock);
    }
    if (r.sessionId !== sessionRef.current?.sessionId) {
      const history = loadHistory(r.sessionId);
      nextId.current = Math.max(0, ...history.map((i) => i.id)) + 1;
      setItems(history);
    }
    wanted.current = r.sessionId;
    localStorage.setItem(SESSION_KEY, r.sessionId);
    setSession({ sessionId: r.sessionId, executor: r.executor });
  };

  useEffect(() => {
    const s = new RpcSocket(wsUrl('/ws'), {
      onOpen: bind,
      onState: (st, detail) => {
        setConnection(st);
        setConnectionDetail(detail);
      },
      onNotification: (m, p) => {
        if (m === 'session.executorRestarted') {
          const executor = p.executor as { id: string; pid: number };
          setSession((cur) => (cur ? { ...cur, executor } : cur));
          note(`The executor was replaced (now pid ${executor.pid}); the session and its state carried over.`);
        }
      },
    });
    socket.current = s.start();
    return () => s.stop();
  }, []);

  useEffect(() => {
    if (session) saveHistory(session.sessionId, items);
    transcript.current?.scrollTo({ top: transcript.current.scrollHeight });
  }, [items, session]);

  const row = state.table?.processes.find((r) => r.id === session?.executor.id);
  const executorDown = row !== undefined && row.state !== 'running';
  const ready = connection === 'open' && session !== undefined && !executorDown;

  const send = (entry: Entry) => {
    const s = socket.current!;
    update(entry.id, { status: 'running', attempts: entry.attempts + 1 });
    const t0 = performance.now();
    s.call(entry.method, entry.params, (m, p) => {
      if (m !== 'shell.output') return;
      update(entry.id, (e) => {
        const size = e.output.reduce((n, c) => n + c.data.length, 0);
        return size > MAX_OUTPUT ? {} : { output: [...e.output, { stream: p.stream === 'stderr' ? 'stderr' : 'stdout', data: String(p.data) }] };
      });
    }).then(
      (result) => update(entry.id, { status: 'ok', result, durationMs: performance.now() - t0 }),
      (err: RpcError) => {
        // The executor (or our connection) went away: send it again once it is back.
        const again = (err.code === UNAVAILABLE || err.code === DISCONNECTED) && err.retryable && entry.attempts + 1 < MAX_ATTEMPTS;
        if (again) {
          // Back off (as the server asks, and more each time), then wait for the executor.
          const delay = Math.max(Number(err.data?.retryAfterMs) || 0, 250 * 2 ** entry.attempts);
          update(entry.id, { status: 'retrying', output: [], note: `${err.message} — it will be sent again when the executor is back.` });
          setTimeout(() => update(entry.id, (e) => (e.status === 'retrying' ? { status: 'waiting' } : {})), delay);
        } else update(entry.id, { status: 'error', error: `${err.message}${err.code > 0 || err.code < -1 ? ` (${err.code})` : ''}`, durationMs: performance.now() - t0 });
      },
    );
  };

  // Whatever waited is sent, in order, as soon as the executor can take it.
  useEffect(() => {
    if (!ready) return;
    for (const i of itemsRef.current) if (!isNote(i) && i.status === 'waiting') send(i);
  }, [ready, items.filter((i) => !isNote(i) && i.status === 'waiting').length]);

  const run = (e: Event) => {
    e.preventDefault();
    if (method === 'shell.exec' && !a.trim()) return;
    const entry: Entry = { id: nextId.current++, method, input: method === 'fs.write' || method === 'state.set' ? `${a} ← ${b.length > 60 ? `${b.slice(0, 60)}…` : b}` : a, params: paramsFor(method, a, b), status: 'waiting', output: [], startedAt: Date.now(), attempts: 0 };
    setItems((list) => [...list, entry]);
    if (ready) send(entry);
    setA('');
    setB('');
  };

  /** Moves the console to another session ("" for a new one); a reconnect binds it again. */
  const rebind = (sessionId: string) => {
    const previous = wanted.current;
    wanted.current = sessionId;
    const s = socket.current;
    if (s?.state !== 'open') return;
    bind(s).catch((err: Error) => {
      wanted.current = previous;
      note(`Could not open that session: ${err.message}`);
    });
  };

  const [ph1, ph2] = placeholder(method);
  return (
    <div class="view console-view">
      <section class="card console-head">
        <div class="session-line">
          <span class="muted">session</span> <span class="mono" data-session-id={session?.sessionId ?? ''}>{session?.sessionId ?? '…'}</span>
          <span class="muted"> on </span>
          <span class="mono">{session ? `${session.executor.id} (pid ${session.executor.pid})` : '…'}</span>
          <span class={`badge conn-${connection}`}>{connection === 'open' ? 'connected' : connection}</span>
        </div>
        <form
          class="join"
          onSubmit={(e) => {
            e.preventDefault();
            if (joinId.trim()) rebind(joinId.trim());
            setJoinId('');
          }}
        >
          <input type="text" placeholder="join session id" value={joinId} onInput={(e) => setJoinId(e.currentTarget.value)} spellcheck={false} />
          <button type="submit" class="ghost">
            join
          </button>
          <button type="button" class="ghost" onClick={() => rebind('')}>
            new session
          </button>
        </form>
      </section>
      {connection !== 'open' ? (
        <div class="alert alert-warn" role="status" data-banner="connection">
          Connection lost — reconnecting{connectionDetail ? ` (${connectionDetail})` : ''}. The session and its history resume when it is back.
        </div>
      ) : executorDown ? (
        <div class="alert alert-warn" role="status" data-banner="executor">
          The {ENVIRONMENT} executor is {row.state}
          {row.reason ? ` (${row.reason})` : ''}. Commands wait and are sent when it is back.
        </div>
      ) : null}
      <div class="transcript" ref={transcript}>
        {items.length === 0 ? <p class="muted">Run a command below. Its working directory and exported variables persist in this session.</p> : null}
        {items.map((i) => (isNote(i) ? <div class="note-line">{clock(i.time)} · {i.note}</div> : <EntryView key={i.id} entry={i} />))}
      </div>
      <form class="composer" onSubmit={run}>
        <select value={method} onChange={(e) => setMethod(e.currentTarget.value as Method)} name="method">
          {METHODS.map((m) => (
            <option value={m}>{m}</option>
          ))}
        </select>
        <input class="grow mono" name="input" type="text" placeholder={ph1} value={a} onInput={(e) => setA(e.currentTarget.value)} disabled={method === 'state.list'} spellcheck={false} autocomplete="off" />
        {ph2 ? <input class="grow mono" name="input2" type="text" placeholder={ph2} value={b} onInput={(e) => setB(e.currentTarget.value)} spellcheck={false} autocomplete="off" /> : null}
        <button type="submit" class="primary">
          run
        </button>
      </form>
    </div>
  );
}
