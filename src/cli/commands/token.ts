import { homePaths } from '../../config/paths.js';
import { readSecrets } from '../../config/secrets.js';
import { CliError } from '../runtime.js';

export function token(environment: string, opts: { home: string }): string {
  let secrets;
  try {
    secrets = readSecrets(homePaths(opts.home).secrets);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  if (!secrets) throw new CliError(`no tokens yet in ${opts.home}: they are made at the first \`continuum start --home ${opts.home}\``);
  const t = secrets.tokens[environment];
  if (!t) throw new CliError(`no token for environment "${environment}"; known: ${Object.keys(secrets.tokens).join(', ')}`);
  return t;
}
