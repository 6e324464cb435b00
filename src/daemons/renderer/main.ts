// continuum-renderer-daemon: HTML rendering for every environment (render.html), and the
// web dashboard — its pages and live feed, served to the edge over a Unix socket.
import fs from 'node:fs';
import { ControlClient } from '../../bus/control-client.js';
import { SessionDaemonClient } from '../../bus/session-client.js';
import { readBoot, SupervisorChannel } from '../../bus/supervisor-channel.js';
import { homePaths, SERVER_LOG } from '../../config/paths.js';
import { childLogger } from '../../logging/child-log.js';
import { serveCommands, type ServiceHandler } from '../service-host.js';
import { Artifacts } from './artifacts.js';
import { dashboardServer } from './dashboard-server.js';
import { FeedHub } from './feed.js';
import { LogWatch } from './log-watch.js';
import { ProcessWatch } from './process-watch.js';
import { renderHtml } from './render-html.js';
import { SessionWatch } from './session-watch.js';

const boot = readBoot();
const paths = homePaths(boot.home);
const log = childLogger({ component: 'renderer-daemon' }, 'server');

const handlers = new Map<string, ServiceHandler>([['render.html', renderHtml as ServiceHandler]]);
const server = await serveCommands(paths.serviceSocket('renderer-daemon'), 'renderer-daemon', handlers);

// --- the dashboard ---
const control = new ControlClient(paths.supervisorSocket);
const sessionDaemon = new SessionDaemonClient(paths.sessionSocket, { role: 'renderer-daemon', id: 'renderer-daemon', proof: boot.busProof });
const environments = boot.config.environments.map((e) => ({ name: e.name, replicas: e.replicas, commands: e.commands, sandbox: e.sandbox as unknown as Record<string, unknown> }));
let hub!: FeedHub;
const processes = new ProcessWatch(control, (method, params) => hub.broadcast(method, params));
const sessions = new SessionWatch(sessionDaemon, (id) => processes.pidOf(id), (params) => hub.broadcast('dashboard.sessions', params));
const logs = new LogWatch(paths, new Set([...environments.map((e) => e.name), SERVER_LOG]));
const artifacts = new Artifacts(paths.artifacts);
hub = new FeedHub({ environments, processes, sessions, logs, artifacts });
const { http, closeFeeds } = dashboardServer(artifacts, hub);
fs.rmSync(paths.dashboardSocket, { force: true });
await new Promise<void>((resolve, reject) => {
  http.once('error', reject);
  http.listen(paths.dashboardSocket, () => resolve());
});
processes.start();

const channel = new SupervisorChannel(async () => {
  processes.stop();
  sessions.stop();
  logs.close();
  closeFeeds();
  http.closeAllConnections();
  await Promise.all([server.close(), new Promise<void>((r) => http.close(() => r()))]);
  fs.rmSync(paths.dashboardSocket, { force: true });
  control.close();
  sessionDaemon.close();
});
channel.onMessage((m) => {
  if (m.t === 'executors') processes.onStatuses([...m.executors, ...m.services]);
});
log.info('renderer daemon ready', { socket: server.path, dashboard: paths.dashboardSocket });
channel.ready();
