// continuum-renderer-daemon: HTML rendering for every environment (render.html).
import { readBoot, SupervisorChannel } from '../../bus/supervisor-channel.js';
import { homePaths } from '../../config/paths.js';
import { childLogger } from '../../logging/child-log.js';
import { serveCommands, type ServiceHandler } from '../service-host.js';
import { renderHtml } from './render-html.js';

const boot = readBoot();
const paths = homePaths(boot.home);
const log = childLogger({ component: 'renderer-daemon' }, 'server');

const handlers = new Map<string, ServiceHandler>([['render.html', renderHtml as ServiceHandler]]);
const server = await serveCommands(paths.serviceSocket('renderer-daemon'), 'renderer-daemon', handlers);

const channel = new SupervisorChannel(async () => {
  await server.close();
});
log.info('renderer daemon ready', { socket: server.path });
channel.ready();
