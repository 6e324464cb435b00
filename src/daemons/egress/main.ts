// continuum-egress-proxy: the allowlisting HTTP/HTTPS proxy of every environment whose
// network is an allowlist, one Unix socket each (<home>/run/egress-<env>/proxy.sock). It parses
// traffic from sandboxed processes, so it runs apart from the supervisor, which restarts it
// like any daemon. Its decisions go to each environment's own log.
import { readBoot, SupervisorChannel } from '../../bus/supervisor-channel.js';
import { homePaths } from '../../config/paths.js';
import { childLogger } from '../../logging/child-log.js';
import { EgressProxy } from '../../sandbox/egress-proxy.js';
import { EgressPolicy } from '../../sandbox/egress-rules.js';

const boot = readBoot();
const paths = homePaths(boot.home);
const log = childLogger({ component: 'egress-proxy' }, 'server');

const proxies: EgressProxy[] = [];
for (const env of boot.config.environments) {
  if (typeof env.sandbox.network !== 'object') continue;
  const envLog = childLogger({ component: 'egress-proxy', env: env.name }, env.name);
  const proxy = new EgressProxy({
    environment: env.name,
    policy: EgressPolicy.of(env.sandbox.network),
    limits: boot.config.egress,
    log: (level, msg, fields) => envLog.log(level, msg, fields),
  });
  await proxy.listen(paths.egressSocket(env.name));
  proxies.push(proxy);
}

const channel = new SupervisorChannel(async () => {
  await Promise.all(proxies.map((p) => p.close()));
});
log.info('egress proxy ready', { environments: boot.config.environments.filter((e) => typeof e.sandbox.network === 'object').map((e) => e.name) });
channel.ready();
