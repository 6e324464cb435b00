// `continuum run --env ENV -- COMMAND…`: one shell.exec through the public protocol,
// output streamed as it comes, exit code passed through.
import os from 'node:os';
import { connect } from '../../client/index.js';
import { homePaths } from '../../config/paths.js';
import { readSecrets } from '../../config/secrets.js';
import { CliError, requireRuntime } from '../runtime.js';

export interface RunOptions {
  home: string;
  env: string;
  session?: string;
  timeout?: number;
  url?: string;
  token?: string;
}

/** One argument is taken as shell text (`-- 'cd /tmp && ls'`); several are quoted as words. */
export function commandLine(args: string[]): string {
  if (args.length === 1) return args[0]!;
  return args.map((a) => (/^[A-Za-z0-9_\-./=:,+@%]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export async function run(args: string[], opts: RunOptions): Promise<number> {
  if (args.length === 0) throw new CliError('nothing to run: give the command after --, e.g. `continuum run --env remote -- ls -la`');
  const url = opts.url ?? requireRuntime(opts.home).url;
  let token = opts.token ?? process.env.CONTINUUM_TOKEN;
  try {
    token ??= readSecrets(homePaths(opts.home).secrets)?.tokens[opts.env];
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  if (!token) throw new CliError(`no token for environment "${opts.env}"; pass --token or set CONTINUUM_TOKEN`);
  // `continuum run … | head` closes our stdout early: that is the reader's choice, not an error.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    });
  }
  const client = await connect({ url, token, environment: opts.env, ...(opts.session ? { sessionId: opts.session } : {}), reconnect: false });
  try {
    const result = await client.exec(commandLine(args), {
      ...(opts.timeout ? { timeoutMs: opts.timeout } : {}),
      onOutput: (stream, data) => (stream === 'stdout' ? process.stdout : process.stderr).write(data),
    });
    if (result.truncated) process.stderr.write('continuum: output was cut at the environment\'s output cap\n');
    if (result.timedOut) {
      process.stderr.write('continuum: the command timed out and was killed\n');
      return 124;
    }
    if (result.signal) return 128 + (os.constants.signals[result.signal as NodeJS.Signals] ?? 0);
    return result.exitCode ?? 1;
  } finally {
    await client.close();
  }
}
