// `continuum audit verify [env]`: checks each environment's audit chain and names the
// first broken record. Reads the files only; works with Continuum running or stopped.
import fs from 'node:fs';
import path from 'node:path';
import { homePaths } from '../../config/paths.js';
import { readHead, verifyChain, type VerifyResult } from '../../logging/audit-chain.js';
import { CliError } from '../runtime.js';

export interface AuditReport {
  environment: string;
  file: string;
  result: VerifyResult;
}

export function auditVerify(environment: string | undefined, opts: { home: string }): { reports: AuditReport[]; text: string; ok: boolean } {
  const dir = homePaths(opts.home).audit;
  let names: string[];
  if (environment !== undefined) {
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(environment)) throw new CliError(`"${environment}" is not an environment name`);
    names = [environment];
  } else {
    names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')).map((f) => f.slice(0, -'.jsonl'.length)).sort() : [];
    if (names.length === 0) throw new CliError(`no audit trail in ${dir}; has Continuum run with this --home?`);
  }
  const reports = names.map((env) => {
    const file = path.join(dir, `${env}.jsonl`);
    if (!fs.existsSync(file)) throw new CliError(`no audit trail for ${env} (${file} does not exist)`);
    return { environment: env, file, result: verifyChain(fs.readFileSync(file, 'utf8'), readHead(file)) };
  });
  const text = reports
    .map(({ environment: env, file, result: r }) =>
      r.ok ? `${env}: ${r.records} records, chain intact` : `${env}: BROKEN at record ${r.broken!.line} of ${file}: ${r.broken!.reason}`,
    )
    .join('\n');
  return { reports, text, ok: reports.every((r) => r.result.ok) };
}
