// The supervisor's control socket (<home>/run/supervisor.sock): what `continuum ps`,
// `stop` and `restart` talk to. Only processes that can reach <home>/run (mode 0700) can.
import { listenFrameSockets, type FrameServer } from '../bus/frame-socket.js';
import { RpcLink } from '../bus/rpc-link.js';
import type { ProcessTable } from '../protocol/control.js';
import type { Supervisor } from './supervisor.js';

export function serveControl(supervisor: Supervisor, onStop: () => void): Promise<FrameServer> {
  return listenFrameSockets(supervisor.paths.supervisorSocket, (socket) => {
    const link = new RpcLink(socket, 'control client');
    link.handle('ps', async (): Promise<ProcessTable> => ({ processes: await supervisor.processTable(), standbys: supervisor.standbyTable(), lostLogLines: supervisor.logs.lostLines() }));
    link.handle('processInfo', () => supervisor.processInfo());
    link.handle('dashboardLogin', () => supervisor.logins.mint());
    link.handle('consumeDashboardLogin', (p) => ({ ok: supervisor.logins.consume((p as { token?: unknown } | null)?.token) }));
    link.handle('stop', () => {
      setImmediate(onStop);
      return { ok: true };
    });
    link.handle('restart', async (p) => {
      const name = (p as { environment?: unknown })?.environment;
      if (typeof name !== 'string') throw new Error('restart needs an environment name');
      return { children: await supervisor.restartEnvironment(name) };
    });
  });
}
