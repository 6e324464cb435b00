import { CliError, controlCall, isSupervisorAlive, readRuntime } from '../runtime.js';

export async function stop(opts: { home: string; timeoutMs?: number }): Promise<string> {
  const info = readRuntime(opts.home);
  if (!info) return `Continuum is not running with home ${opts.home}`;
  try {
    await controlCall(opts.home, 'stop', undefined, 3_000);
  } catch {
    // The control socket may be gone with a wedged supervisor; a signal still works.
    process.kill(info.pid, 'SIGTERM');
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  while (Date.now() < deadline) {
    if (!isSupervisorAlive(info.pid)) return `stopped Continuum (supervisor pid ${info.pid})`;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new CliError(`the supervisor (pid ${info.pid}) did not stop within ${(opts.timeoutMs ?? 10_000) / 1000} s; see ${info.home}/logs/server.log`);
}
