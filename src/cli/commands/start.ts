import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../config/load.js';
import { homePaths } from '../../config/paths.js';
import { serveControl } from '../../supervisor/control-server.js';
import { Supervisor, type RuntimeInfo } from '../../supervisor/supervisor.js';
import type { DashboardLogin } from '../../protocol/control.js';
import { CliError, controlCall, readRuntime } from '../runtime.js';
import { loginLink } from './dashboard.js';

export interface StartOptions {
  home: string;
  port?: number;
  host?: string;
  config?: string;
  detach?: boolean;
}

function banner(info: RuntimeInfo, environments: string[], readyMs: number, detached: boolean, login: DashboardLogin): string {
  const homeArg = `--home ${info.home}`;
  return [
    `Continuum is running (supervisor pid ${info.pid}, ready in ${readyMs} ms)`,
    `  Dashboard  ${loginLink(info, login)}`,
    `             (a one-time login link; \`continuum dashboard ${homeArg}\` prints a new one)`,
    `  WebSocket  ${info.url}`,
    `  Token      continuum token <environment> ${homeArg}`,
    `             environments: ${environments.join(', ')}`,
    `  Processes  continuum ps ${homeArg}`,
    `  Logs       ${path.join(info.home, 'logs')}/<environment>.log  (continuum logs <environment> -f ${homeArg})`,
    detached ? `Stop it with: continuum stop ${homeArg}` : 'Press Ctrl-C to stop.',
  ].join('\n');
}

export async function start(opts: StartOptions): Promise<void> {
  const config = loadConfig(opts.config);
  if (opts.port !== undefined) config.port = opts.port;
  if (opts.host !== undefined) config.host = opts.host;
  const running = readRuntime(opts.home);
  if (running) throw new CliError(`Continuum is already running with home ${opts.home} (supervisor pid ${running.pid}, ${running.url}); stop it with \`continuum stop --home ${opts.home}\``);
  if (opts.detach) return startDetached(opts, config.environments.map((e) => e.name));

  const t0 = Date.now();
  process.title = 'continuum-supervisor';
  // Whatever started us in the foreground may go away (a closed pipe, a dead parent): a write
  // to it then fails with EPIPE, which must not take the supervisor down, least of all while
  // it stops (its cgroups would be left behind). What it says is in <home>/logs anyway.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  const supervisor = new Supervisor(config, opts.home);
  let stopping = false;
  const shutdown = async (why: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\nstopping Continuum (${why})…\n`);
    const hardStop = setTimeout(() => process.exit(1), 4_500);
    await supervisor.stop();
    await control?.close();
    clearTimeout(hardStop);
    process.stderr.write('stopped\n');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGHUP', () => void shutdown('SIGHUP'));
  let control: Awaited<ReturnType<typeof serveControl>> | undefined;
  let info: RuntimeInfo;
  try {
    info = await supervisor.start();
    control = await serveControl(supervisor, () => void shutdown('continuum stop'));
  } catch (err) {
    await supervisor.stop();
    throw new CliError((err as Error).message);
  }
  process.stdout.write(`${banner(info, config.environments.map((e) => e.name), Date.now() - t0, Boolean(process.env.CONTINUUM_DETACHED), supervisor.logins.mint())}\n`);
}

async function startDetached(opts: StartOptions, environments: string[]): Promise<void> {
  const paths = homePaths(opts.home);
  fs.mkdirSync(paths.logs, { recursive: true, mode: 0o750 });
  const outFile = path.join(paths.logs, 'supervisor.out');
  const out = fs.openSync(outFile, 'a');
  const args = [fileURLToPath(new URL('../main.js', import.meta.url)), 'start', '--home', opts.home];
  if (opts.port !== undefined) args.push('--port', String(opts.port));
  if (opts.host !== undefined) args.push('--host', opts.host);
  if (opts.config) args.push('--config', path.resolve(opts.config));
  const t0 = Date.now();
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out], env: { ...process.env, CONTINUUM_DETACHED: '1' } });
  fs.closeSync(out);
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? 1));
  child.unref();
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const info = readRuntime(opts.home);
    if (info && info.pid === child.pid) {
      const login = await controlCall<DashboardLogin>(opts.home, 'dashboardLogin');
      process.stdout.write(`${banner(info, environments, Date.now() - t0, true, login)}\n`);
      return;
    }
    if (exited !== null) {
      const tail = fs.readFileSync(outFile, 'utf8').split('\n').slice(-20).join('\n');
      throw new CliError(`Continuum failed to start (exit code ${exited}):\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new CliError(`Continuum did not become ready within 15 s; see ${outFile} and ${paths.logs}/server.log`);
}
