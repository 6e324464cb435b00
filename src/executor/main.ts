// continuum-<env>-executor: runs the commands of one environment's sessions. The edge
// connects to its socket directly (one hop); session state is written through to the
// session daemon so that this process can die at any moment without losing any.
import { busProof } from '../bus/auth.js';
import { EgressForwarders } from '../bus/egress-forwarder.js';
import { listenFrameSockets } from '../bus/frame-socket.js';
import { SessionDaemonClient } from '../bus/session-client.js';
import { awaitActivation, ownHostPid, readBoot, SupervisorChannel } from '../bus/supervisor-channel.js';
import { homePaths } from '../config/paths.js';
import { childLogger } from '../logging/child-log.js';
import type { Attestation } from '../protocol/internal.js';
import type { ExecutorEnv } from './command.js';
import { info as processInfo } from './commands/process.js';
import { Dispatcher } from './dispatcher.js';
import { SessionCache } from './session-context.js';
import { attest } from '../sandbox/attest.js';
import { probeShell, removeSessionTmp } from '../sandbox/shell-sandbox.js';

const ATTEST_EVERY_MS = 5 * 60_000;

// Everything above is loaded before a standby says it is ready: activation only binds.
const booted = readBoot();
// The first self-check runs while a standby waits (off the restart path), or alongside start-up.
const firstAttestation = booted.sandbox ? attest(booted.sandbox, probeShell(booted.sandbox)) : undefined;
const boot = await awaitActivation(booted);
const exec = boot.executor!;
const environment = boot.config.environments.find((e) => e.name === exec.environment)!;
const paths = homePaths(boot.home);
const log = childLogger({ component: 'executor', executorId: exec.id });

const sessions = new SessionDaemonClient(paths.sessionSocket, { role: 'executor', id: exec.id, proof: boot.busProof });
const cache = new SessionCache(sessions, boot.sandbox ? removeSessionTmp : undefined);
const egress = boot.egressSocket ? new EgressForwarders(boot.egressSocket) : undefined;
sessions.onLinkLost(() => cache.markAllStale());
sessions.onEvent((name, data) => {
  if (name !== 'session.evict') return;
  const sessionId = String((data as { sessionId?: unknown })?.sessionId);
  cache.evict(sessionId);
  void egress?.release(sessionId);
});

let channel: SupervisorChannel | undefined;
const env: ExecutorEnv = {
  boot,
  environment,
  // A getter: a confined executor learns its host pid from the supervisor just after start.
  executor: {
    id: exec.id,
    get pid() {
      return ownHostPid();
    },
  },
  sessions,
  ...(egress ? { egress } : {}),
  trackProcessGroup: (op, pgid) => channel?.send({ t: 'pgid', op, pgid }),
  attestation: null,
};
const dispatcher = new Dispatcher(env, cache);

const server = await listenFrameSockets(paths.executorSocket(exec.id), (socket) => {
  socket.onFrame((frame) => dispatcher.onFrame(socket, frame));
});

channel = new SupervisorChannel(async () => {
  cache.killAll();
  egress?.closeAll();
  await server.close();
  sessions.close();
});
channel.onQuery((q) => (q === 'processInfo' ? processInfo(undefined, { env }) : null));
// Connect to the session daemon in the background: being ready to route must not wait
// for it, and a command that needs a session retries the link itself.
sessions.connect(2_000).catch(() => undefined);
log.info('executor ready', { socket: server.path });
channel.ready();

// A confined executor checks its own isolation now and every few minutes, and reports it.
if (boot.sandbox) {
  const sb = boot.sandbox;
  const check = async (pending?: Promise<Attestation>) => {
    const result = await (pending ?? attest(sb, probeShell(sb)));
    const wasOk = env.attestation?.ok;
    env.attestation = result;
    channel?.send({ t: 'attest', result });
    if (!result.ok && wasOk !== false) log.error('sandbox attestation failed', { failed: result.checks.filter((c) => !c.ok) });
    else if (result.ok && wasOk === false) log.info('sandbox attestation passes again');
  };
  void check(firstAttestation);
  setInterval(() => void check(), ATTEST_EVERY_MS).unref();
}
