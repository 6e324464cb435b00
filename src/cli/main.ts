#!/usr/bin/env node
// The `continuum` command.
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../config/load.js';
import { resolveHome } from '../config/paths.js';
import { ContinuumError } from '../protocol/errors.js';
import { logLevelSchema } from '../protocol/methods/log.js';
import { auditVerify } from './commands/audit.js';
import { dashboard } from './commands/dashboard.js';
import { doctor } from './commands/doctor.js';
import { logs } from './commands/logs.js';
import { ps } from './commands/ps.js';
import { run } from './commands/run.js';
import { start } from './commands/start.js';
import { stop } from './commands/stop.js';
import { token } from './commands/token.js';
import { CliError, controlCall } from './runtime.js';

function int(name: string, min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

const homeOption = () => new Option('--home <dir>', 'Continuum home: logs, state, sockets, secrets (env CONTINUUM_HOME)').default(undefined, './.continuum');
const home = (opts: { home?: string }) => resolveHome(opts.home);

const program = new Command('continuum')
  .description('Process-isolation runtime: one executor process per environment, durable sessions, a JSON-RPC WebSocket edge.')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');

program
  .command('start')
  .description('start the supervisor, the daemons and one executor per environment, in the foreground')
  .addOption(homeOption())
  .option('-p, --port <port>', 'port of the WebSocket edge (default 7070, or the config)', int('--port', 0, 65535))
  .option('--host <address>', 'address to listen on (default 127.0.0.1)')
  .option('-c, --config <file>', 'config file (JSON); see README for the schema')
  .option('-d, --detach', 'run in the background; stop it with `continuum stop`')
  .action(async (opts: { home?: string; port?: number; host?: string; config?: string; detach?: boolean }) => {
    await start({ ...opts, home: home(opts) });
  });

program
  .command('stop')
  .description('stop a running Continuum (started with --detach, or in another terminal)')
  .addOption(homeOption())
  .action(async (opts: { home?: string }) => {
    console.log(await stop({ home: home(opts) }));
  });

program
  .command('ps')
  .description('the process tree: name, pid, environment, state, restarts, uptime, RSS, CPU%, sessions')
  .addOption(homeOption())
  .option('--json', 'machine-readable output')
  .action(async (opts: { home?: string; json?: boolean }) => {
    console.log(await ps({ home: home(opts), json: Boolean(opts.json) }));
  });

program
  .command('restart <environment>')
  .description("restart an environment's executors, clearing a `failed` state")
  .addOption(homeOption())
  .action(async (environment: string, opts: { home?: string }) => {
    const r = await controlCall<{ children: string[] }>(home(opts), 'restart', { environment }, 20_000);
    console.log(r.children.join('\n'));
  });

program
  .command('logs <environment>')
  .description("print an environment's log readably (server for daemon and supervisor events)")
  .addOption(homeOption())
  .option('-f, --follow', 'keep printing new lines, across rotations')
  .option('-s, --session <id>', 'only lines of this session')
  .addOption(new Option('-l, --level <level>', 'only lines at this level or above').choices(logLevelSchema.options))
  .option('-g, --grep <text>', 'only lines containing this text')
  .option('-n, --lines <n>', 'only the last n lines before following', int('--lines', 0, 1_000_000))
  .option('--json', 'print the raw NDJSON lines')
  .action(async (environment: string, opts: { home?: string; follow?: boolean; session?: string; level?: 'info'; grep?: string; lines?: number; json?: boolean }) => {
    await logs(environment, { ...opts, home: home(opts) });
  });

program
  .command('run')
  .description('run a shell command in an environment through the public protocol; exits with its exit code')
  .requiredOption('-e, --env <environment>', 'environment to run in')
  .option('-s, --session <id>', 'session to run in (joined, or created with this id); its cwd and exports persist')
  .option('-t, --timeout <ms>', 'kill the command after this many ms', int('--timeout', 1, 24 * 3600_000))
  .option('--url <url>', 'WebSocket URL (default: the running Continuum of --home)')
  .option('--token <token>', 'token (default: CONTINUUM_TOKEN, or the one in <home>/secrets.json)')
  .addOption(homeOption())
  .argument('<command...>', 'the command, after --')
  .usage('--env <environment> [options] -- <command...>')
  .action(async (args: string[], opts: { env: string; session?: string; timeout?: number; url?: string; token?: string; home?: string }) => {
    process.exitCode = await run(args, { ...opts, home: home(opts) });
  });

program
  .command('token <environment>')
  .description("print an environment's token alone on stdout (for scripts)")
  .addOption(homeOption())
  .action((environment: string, opts: { home?: string }) => {
    process.stdout.write(`${token(environment, { home: home(opts) })}\n`);
  });

program
  .command('audit')
  .description('the audit trail: <home>/audit/<env>.jsonl, hash-chained')
  .command('verify [environment]')
  .description("check an environment's audit chain (every environment's without one); exits 1 and names the first broken record")
  .addOption(homeOption())
  .option('--json', 'machine-readable output')
  .action((environment: string | undefined, opts: { home?: string; json?: boolean }) => {
    const r = auditVerify(environment, { home: home(opts) });
    console.log(opts.json ? JSON.stringify(r.reports, null, 2) : r.text);
    if (!r.ok) process.exitCode = 1;
  });

program
  .command('dashboard')
  .description('print a new one-time login link for the web dashboard')
  .addOption(homeOption())
  .action(async (opts: { home?: string }) => {
    console.log(await dashboard({ home: home(opts) }));
  });

program
  .command('doctor')
  .description('what this host offers: cgroups, namespaces, seccomp, bubblewrap, Chromium, NATS')
  .option('--json', 'machine-readable output')
  .addOption(homeOption())
  .action(async (opts: { json?: boolean; home?: string }) => {
    console.log((await doctor({ json: Boolean(opts.json), home: home(opts) })).text);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CliError || err instanceof ConfigError || err instanceof ContinuumError) {
    process.stderr.write(`continuum: ${err.message}\n`);
    process.exit(err instanceof CliError ? err.exitCode : 1);
  }
  process.stderr.write(`continuum: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
