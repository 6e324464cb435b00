// continuum-browser-daemon: headless Chromium for every environment's sessions (browser.*),
// one isolated context per session, under the calling environment's network policy.
import fs from 'node:fs';
import path from 'node:path';
import { SessionDaemonClient } from '../../bus/session-client.js';
import { readBoot, SupervisorChannel } from '../../bus/supervisor-channel.js';
import { homePaths } from '../../config/paths.js';
import { childLogger } from '../../logging/child-log.js';
import { serveCommands } from '../service-host.js';
import { ChromiumHost } from './chromium.js';
import { CHROMIUM_PACKAGE_HINT, chromiumExecutable, chromiumInstalled } from './chromium-path.js';
import { browserHandlers } from './commands.js';
import { SessionContexts } from './session-contexts.js';

const boot = readBoot();
const paths = homePaths(boot.home);
const log = childLogger({ component: 'browser-daemon' }, 'server');

// Playwright makes each Chromium a fresh temporary profile in os.tmpdir(), and Chromium
// writes its own temporary files there: keep both under <home>/run, emptied at every start
// (a killed daemon leaves its last profile behind) and at stop.
const tmp = path.join(paths.run, 'browser');
fs.rmSync(tmp, { recursive: true, force: true });
fs.mkdirSync(tmp, { recursive: true, mode: 0o700 });
process.env.TMPDIR = tmp;

const executablePath = chromiumExecutable();
if (!chromiumInstalled(executablePath)) {
  log.warn(`Chromium is not installed (${executablePath} is missing): browser.* commands answer -32003 until \`${CHROMIUM_PACKAGE_HINT}\``, { executablePath });
}

const chromium = new ChromiumHost({ executablePath, launchTimeoutMs: 30_000, watchdogIntervalMs: 5_000, watchdogTimeoutMs: 10_000 }, log);
const sessions = new SessionDaemonClient(paths.sessionSocket, { role: 'browser-daemon', id: 'browser-daemon', proof: boot.busProof });
const contexts = new SessionContexts(chromium, sessions, boot.config.environments, log, (env) => paths.egressSocket(env));
const server = await serveCommands(paths.serviceSocket('browser-daemon'), 'browser-daemon', browserHandlers(contexts, paths.artifacts));
// Linked early, so that session ends reach us; a link made later works as well.
sessions.connect().catch((err: Error) => log.warn('session daemon not reachable yet', { error: err.message }));

const channel = new SupervisorChannel(async () => {
  await server.close();
  await contexts.close();
  await chromium.close();
  sessions.close();
  fs.rmSync(tmp, { recursive: true, force: true });
  log.info('browser daemon stopped');
});
log.info('browser daemon ready', { socket: server.path, chromium: executablePath });
channel.ready();
