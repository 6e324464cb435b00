import type { ProcessRow } from '../../supervisor/supervisor.js';
import { formatBytes, formatDuration, table } from '../format.js';
import { controlCall } from '../runtime.js';

export async function ps(opts: { home: string; json?: boolean }): Promise<string> {
  const { processes, standbys, lostLogLines } = await controlCall<{ processes: ProcessRow[]; standbys: ProcessRow[]; lostLogLines: Record<string, number> }>(opts.home, 'ps');
  if (opts.json) return JSON.stringify({ processes, standbys, lostLogLines }, null, 2);
  // Each standby is listed under the executor it would replace.
  const listed = processes.flatMap((p) => [p, ...standbys.filter((s) => s.id === `${p.id}.standby`)]);
  const rows = listed.map((p) => [
    p.name,
    p.pid === null ? '-' : String(p.pid),
    p.environment ?? '-',
    p.state === 'failed' ? 'FAILED' : p.state,
    String(p.restarts),
    formatDuration(p.uptimeMs),
    formatBytes(p.rssBytes),
    p.cpuPercent === null ? '-' : p.cpuPercent.toFixed(1),
    p.sessions === null ? '-' : String(p.sessions),
    sandboxCell(p),
  ]);
  let out = table(['NAME', 'PID', 'ENV', 'STATE', 'RESTARTS', 'UPTIME', 'RSS', 'CPU%', 'SESSIONS', 'SANDBOX'], rows);
  for (const p of processes) {
    if (p.state === 'failed') out += `\n! ${p.name} (${p.id}) failed: ${p.reason}; \`continuum restart ${p.environment ?? p.id}\` tries again`;
    else if (p.state === 'restarting' && p.reason) out += `\n  ${p.name} (${p.id}) restarting: ${p.reason}`;
  }
  for (const p of processes) {
    // Persistent: shown on every `ps` for as long as the profile isn't fully enforced.
    for (const w of p.sandbox?.warnings ?? []) out += `\n! ${p.id} sandbox not fully enforced: ${w}`;
    const a = p.sandbox?.attestation;
    if (a && !a.ok) out += `\n! ${p.id} sandbox attestation FAILED: ${a.checks.filter((c) => !c.ok).map((c) => c.detail).join('; ')}`;
  }
  for (const [file, n] of Object.entries(lostLogLines)) out += `\n! ${n} lines could not be written to ${file}.log`;
  return out;
}

/** confined + attested / FAILED / partial (warnings), unconfined, or - for daemons. */
function sandboxCell(p: ProcessRow): string {
  const sb = p.sandbox;
  if (!sb) return '-';
  if (!sb.confined) return 'unconfined';
  if (sb.attestation && !sb.attestation.ok) return 'FAILED';
  const base = sb.warnings.length ? 'partial' : 'confined';
  return sb.attestation ? `${base}, attested` : base;
}
