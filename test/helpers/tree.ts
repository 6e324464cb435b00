// Starts a real Continuum process tree through the real CLI, in its own temporary home,
// and tears it down (checking nothing is left behind) when the test ends.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type ConnectOptions, type ContinuumClient } from '../../src/client/index.js';
import type { ProcessRow } from '../../src/supervisor/supervisor.js';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const homes: string[] = [];
// Temporary homes go when the test process ends (a test may stop a tree and start another
// on the same home, so they can't go with the tree).
process.once('exit', () => {
  for (const home of homes) fs.rmSync(home, { recursive: true, force: true });
});

export function tempHome(prefix = 'ct-'): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  homes.push(home);
  return home;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the `continuum` CLI to completion. */
export function cli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`continuum ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 30_000} ms\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A row of `continuum ps --json`. */
export type PsRow = ProcessRow;

export interface TreeOptions {
  config?: Record<string, unknown>;
  home?: string;
  port?: number;
  /** Extra environment variables for `continuum start` (and so for the trusted daemons). */
  env?: NodeJS.ProcessEnv;
}

export class Tree {
  proc: ChildProcess | undefined;
  stdout = '';
  stderr = '';
  readonly configFile: string | undefined;

  constructor(readonly home: string, readonly port: number, config?: Record<string, unknown>, readonly env: NodeJS.ProcessEnv = {}) {
    if (config) {
      this.configFile = path.join(home, 'test-config.json');
      fs.writeFileSync(this.configFile, JSON.stringify(config));
    }
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Starts `continuum start` in the foreground and waits for its banner. */
  async start(): Promise<void> {
    const args = [CLI, 'start', '--home', this.home, '--port', String(this.port)];
    if (this.configFile) args.push('--config', this.configFile);
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.env } });
    this.proc = proc;
    this.stdout = '';
    proc.stdout!.on('data', (c: Buffer) => (this.stdout += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`continuum start not ready in 15 s:\n${this.stdout}\n${this.stderr}`)), 15_000);
      const check = () => {
        if (this.stdout.includes('Continuum is running')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on('data', check);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`continuum start exited with ${code}:\n${this.stdout}\n${this.stderr}`));
      });
    });
  }

  /** SIGTERM to the supervisor; resolves with its exit code once it is gone. */
  async stop(): Promise<number | null> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return proc?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    return exited;
  }

  token(environment: string): string {
    const secrets = JSON.parse(fs.readFileSync(path.join(this.home, 'secrets.json'), 'utf8')) as { tokens: Record<string, string> };
    return secrets.tokens[environment]!;
  }

  async ps(): Promise<PsRow[]> {
    const r = await cli(['ps', '--home', this.home, '--json']);
    if (r.code !== 0) throw new Error(`continuum ps failed: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { processes: PsRow[] }).processes;
  }

  /** Warm standby executors (booted, waiting to take over after a crash). */
  async standbys(): Promise<PsRow[]> {
    const r = await cli(['ps', '--home', this.home, '--json']);
    if (r.code !== 0) throw new Error(`continuum ps failed: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { standbys: PsRow[] }).standbys;
  }

  async row(id: string): Promise<PsRow> {
    const row = (await this.ps()).find((r) => r.id === id);
    if (!row) throw new Error(`no process ${id} in ps`);
    return row;
  }

  /** Waits until `id` is running with a pid other than `notPid`. */
  async waitRunning(id: string, notPid?: number | null, timeoutMs = 10_000): Promise<PsRow> {
    return waitFor(async () => {
      const r = await this.row(id);
      return r.state === 'running' && r.pid !== null && r.pid !== notPid ? r : undefined;
    }, timeoutMs, `${id} running`);
  }

  client(environment: string, opts: Partial<ConnectOptions> = {}): Promise<ContinuumClient> {
    return connect({ url: this.url, token: this.token(environment), environment, ...opts });
  }

  logLines(file: string): Record<string, unknown>[] {
    const p = path.join(this.home, 'logs', `${file}.log`);
    if (!fs.existsSync(p)) return [];
    return fs
      .readFileSync(p, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

/** Pids of every process whose title starts with `continuum-`. */
export function continuumPids(): Map<number, string> {
  const out = new Map<number, string>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')[0] ?? '';
      if (cmd.startsWith('continuum-')) out.set(Number(entry), cmd);
    } catch {
      // Gone while we looked.
    }
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts a tree for a test file; stops it after, and checks that every process it started
 * is gone. Use inside `before`/`after` of node:test.
 */
export async function startTree(opts: TreeOptions = {}): Promise<Tree> {
  const tree = new Tree(opts.home ?? tempHome(), opts.port ?? (await freePort()), opts.config, opts.env);
  await tree.start();
  return tree;
}

export async function stopTree(tree: Tree | undefined): Promise<void> {
  if (!tree) return;
  const rows = [...(await tree.ps().catch(() => [])), ...(await tree.standbys().catch(() => []))];
  const pids = rows.map((r) => r.pid).filter((p): p is number => p !== null);
  await tree.stop();
  await waitFor(() => pids.every((p) => !isAlive(p)), 6_000, 'every process of the tree to exit');
}
