// The supervisor's control socket (<home>/run/supervisor.sock): what `continuum ps`, the
// dashboard and /metrics read. Only processes that can reach <home>/run (mode 0700) can.

/** One row of the process tree, as `continuum ps` shows it. */
import type { Attestation } from './internal.js';

export interface ProcessRow {
  name: string;
  id: string;
  pid: number | null;
  environment: string | null;
  state: string;
  restarts: number;
  uptimeMs: number;
  rssBytes: number | null;
  cpuPercent: number | null;
  /** CPU time (user + system) the process has used since it started. */
  cpuSeconds: number | null;
  sessions: number | null;
  reason: string | null;
  /** Confined executors: what is enforced, what isn't, and the latest self-check. */
  sandbox?: SandboxRow;
}

export interface SandboxRow {
  confined: boolean;
  warnings: string[];
  attestation: Attestation | null;
}

/** The answer to `ps`. */
export interface ProcessTable {
  processes: ProcessRow[];
  standbys: ProcessRow[];
  /** log file → lines that could not be written (disk full). */
  lostLogLines: Record<string, number>;
}

/** The answer to `dashboardLogin`: a one-time login link's token. */
export interface DashboardLogin {
  token: string;
  expiresAt: number;
}
