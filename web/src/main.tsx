// The dashboard: four live views over one feed, a hash route each.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { feed, useFeed } from './feed.js';
import { ConsoleView } from './views/console.js';
import { LogsView } from './views/logs.js';
import { ProcessesView } from './views/processes.js';
import { SessionsView } from './views/sessions.js';

const VIEWS = {
  processes: { title: 'Processes', view: ProcessesView },
  sessions: { title: 'Sessions', view: SessionsView },
  logs: { title: 'Logs', view: LogsView },
  console: { title: 'Console', view: ConsoleView },
} as const;
type ViewName = keyof typeof VIEWS;

function currentView(): ViewName {
  const name = location.hash.replace(/^#\/?/, '').split('?')[0] ?? '';
  return name in VIEWS ? (name as ViewName) : 'processes';
}

function App() {
  const state = useFeed();
  const [view, setView] = useState(currentView);
  // A view stays mounted once visited (hidden when another is shown), so the console keeps
  // its connection and a running command, and the log tail its buffer, across tab switches.
  const [visited, setVisited] = useState<ReadonlySet<ViewName>>(() => new Set([currentView()]));
  useEffect(() => {
    const onHash = () => {
      const next = currentView();
      setView(next);
      setVisited((v) => (v.has(next) ? v : new Set([...v, next])));
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  const failed = state.table?.processes.some((r) => r.state === 'failed') ?? false;
  return (
    <>
      <header class="top">
        <div class="brand">Continuum</div>
        <nav>
          {(Object.keys(VIEWS) as ViewName[]).map((name) => (
            <a href={`#/${name}`} class={name === view ? 'active' : ''} data-view={name}>
              {VIEWS[name].title}
              {name === 'processes' && failed ? <span class="dot-failed" title="an environment has failed" /> : null}
            </a>
          ))}
        </nav>
        <div class="right">
          <span class={`badge conn-${state.connection}`} data-feed={state.connection}>
            {state.connection === 'open' ? 'live' : state.connection === 'connecting' ? 'reconnecting…' : 'offline'}
          </span>
          <a href="/logout" class="ghost small">
            log out
          </a>
        </div>
      </header>
      <main data-view={view}>
        {(Object.keys(VIEWS) as ViewName[])
          .filter((name) => visited.has(name))
          .map((name) => {
            const View = VIEWS[name].view;
            return (
              <div key={name} class="view-host" data-host={name} hidden={name !== view}>
                <View />
              </div>
            );
          })}
      </main>
    </>
  );
}

feed.socket.start();
render(<App />, document.getElementById('app')!);
