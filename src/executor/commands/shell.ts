// shell.exec: each call is a fresh `bash` that restores the session's working directory
// and exported variables, runs the command, and hands back the new ones on fd 3 when it
// exits. Keeping that state as data (not as a live shell process) is what lets it survive
// an executor crash: the session daemon has the latest copy.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { signalFromExitCode } from '../../sandbox/exit-status.js';
import { shellSandboxCommand } from '../../sandbox/shell-sandbox.js';
import { ContinuumError } from '../../protocol/errors.js';
import type { ShellState } from '../../protocol/internal.js';
import { childLogger } from '../../logging/child-log.js';
import type { CommandContext } from '../command.js';

const WRAPPER = `
__continuum_exit() { __continuum_rc=$?; { pwd; printf '\\0'; env -0; } >&3 2>/dev/null; exit $__continuum_rc; }
trap __continuum_exit EXIT
cd -- "$1" 2>/dev/null || cd -- "$2" || exit 127
__continuum_cmd=$__CONTINUUM_COMMAND
unset __CONTINUUM_COMMAND
eval "$__continuum_cmd"
`;

/** Variables bash sets by itself; persisting them would only confuse the next call. */
const VOLATILE = new Set(['PWD', 'OLDPWD', 'SHLVL', '_', '__CONTINUUM_COMMAND', 'CONTINUUM_ENVIRONMENT', 'CONTINUUM_SESSION_ID', 'CONTINUUM_WORKSPACE']);
/**
 * Where the network goes through the egress proxy: set fresh on every call (the port is this
 * executor's) and never persisted. curl reads only the lower-case http_proxy.
 */
const PROXY_VARIABLES = ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy'];
/** Once bash has exited, how long to wait for pipes held open by background children. */
const DRAIN_GRACE_MS = 100;

export function baseEnv(ctx: CommandContext): Record<string, string> {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: ctx.session.workspace,
    LANG: 'C.UTF-8',
    TERM: 'dumb',
  };
}

/** Set fresh on every call and never persisted, so they stay right in a fork. */
function sessionVariables(ctx: CommandContext): Record<string, string> {
  return {
    CONTINUUM_ENVIRONMENT: ctx.env.environment.name,
    CONTINUUM_SESSION_ID: ctx.session.sessionId,
    CONTINUUM_WORKSPACE: ctx.session.workspace,
  };
}

class CappedOutput {
  private chunks: Buffer[] = [];
  private bytes = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  push(chunk: Buffer): void {
    const room = this.cap - this.bytes;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (part.length < chunk.length) this.truncated = true;
    this.chunks.push(part);
    this.bytes += part.length;
  }
  text(): string {
    // A cut in the middle of a UTF-8 sequence decodes to U+FFFD rather than failing.
    return Buffer.concat(this.chunks, this.bytes).toString('utf8');
  }
}

async function proxyVariables(ctx: CommandContext): Promise<Record<string, string>> {
  if (!ctx.env.egress) return {};
  const url = await ctx.env.egress.proxyUrl(ctx.session.sessionId);
  return Object.fromEntries(PROXY_VARIABLES.map((k) => [k, url]));
}

function parseDump(dump: Buffer, drop: ReadonlySet<string>): ShellState | undefined {
  const text = dump.toString('utf8');
  const split = text.indexOf('\n\0');
  if (split < 0) return undefined;
  const env: Record<string, string> = {};
  for (const entry of text.slice(split + 2).split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const key = entry.slice(0, eq);
    if (!VOLATILE.has(key) && !drop.has(key)) env[key] = entry.slice(eq + 1);
  }
  return { cwd: text.slice(0, split), env };
}

/** Keeps to what the session daemon stores (see shellStateSchema); returns the names dropped. */
function dropUnstorable(state: ShellState): string[] {
  const dropped: string[] = [];
  for (const [key, value] of Object.entries(state.env ?? {})) {
    if (key.length > 1024 || value.length > 128 * 1024) {
      dropped.push(key);
      delete state.env![key];
    }
  }
  return dropped;
}

export interface ExecParams {
  command: string;
  timeoutMs?: number;
  stdin?: string;
  env?: Record<string, string>;
  stream?: boolean;
}

export async function exec(params: ExecParams, ctx: CommandContext) {
  const { environment } = ctx.env;
  const timeoutMs = params.timeoutMs ?? environment.shell.defaultTimeoutMs;
  if (timeoutMs > environment.shell.maxTimeoutMs) {
    throw new ContinuumError('INVALID_PARAMS', `invalid params: timeoutMs ${timeoutMs} is over this environment's maximum of ${environment.shell.maxTimeoutMs}`, {
      issues: [{ path: ['timeoutMs'], message: `at most ${environment.shell.maxTimeoutMs}` }],
    });
  }
  const session = ctx.session;
  const persisted = session.shell.env ?? baseEnv(ctx);
  const callEnv = params.env ?? {};
  const proxy = await proxyVariables(ctx);
  const bash = ['/bin/bash', '--noprofile', '--norc', '-c', WRAPPER, 'continuum-shell', session.shell.cwd ?? session.workspace, session.workspace];
  // In a confined executor, each command runs in the session's own nested sandbox.
  const sb = ctx.env.boot.sandbox?.bwrap ? ctx.env.boot.sandbox : undefined;
  const seccompFd = sb?.shellSeccomp ? fs.openSync(sb.shellSeccomp, 'r') : undefined;
  const { file, args } = sb
    ? shellSandboxCommand(sb, { sessionId: session.sessionId, workspace: session.workspace, seccompFd: seccompFd === undefined ? undefined : 4, command: bash })
    : { file: bash[0]!, args: bash.slice(1) };
  const child = spawn(file, args, {
    cwd: session.workspace,
    env: { ...persisted, ...callEnv, ...proxy, ...sessionVariables(ctx), __CONTINUUM_COMMAND: params.command },
    stdio: ['pipe', 'pipe', 'pipe', 'pipe', ...(seccompFd === undefined ? [] : [seccompFd])],
    detached: true,
  });
  if (seccompFd !== undefined) fs.closeSync(seccompFd);
  const pgid = child.pid;
  if (pgid === undefined) {
    await new Promise((r) => child.once('error', r));
    throw new ContinuumError('INTERNAL', 'could not start /bin/bash for shell.exec');
  }
  ctx.env.trackProcessGroup('add', pgid);
  const killGroup = () => {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  session.running.add(killGroup);

  const cap = environment.output.maxBytes;
  const stdout = new CappedOutput(cap);
  const stderr = new CappedOutput(cap);
  const dump: Buffer[] = [];
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  const forward = (stream: 'stdout' | 'stderr', chunk: Buffer) => {
    if (!params.stream) return;
    const data = decoders[stream].write(chunk);
    if (data) ctx.notify('shell.output', { requestId: ctx.requestId, stream, data });
  };
  child.stdout!.on('data', (c: Buffer) => {
    stdout.push(c);
    forward('stdout', c);
  });
  child.stderr!.on('data', (c: Buffer) => {
    stderr.push(c);
    forward('stderr', c);
  });
  // A client that stops reading pauses our reading of the pipes; the command then blocks
  // on write, so its output never piles up here or at the edge.
  const stopFlow = params.stream
    ? ctx.onFlow((paused) => {
        for (const s of [child.stdout!, child.stderr!]) {
          if (paused) s.pause();
          else s.resume();
        }
      })
    : () => undefined;
  const fd3 = child.stdio[3] as NodeJS.ReadableStream;
  fd3.on('data', (c: Buffer) => dump.push(c));
  child.stdin!.on('error', () => {
    // The command may exit without reading its input; EPIPE here is not an error.
  });
  child.stdin!.end(params.stdin ?? '');

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, timeoutMs);

  let { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (c, s) => resolve({ code: c, signal: s }));
  });
  clearTimeout(timer);
  stopFlow();
  for (const s of [child.stdout!, child.stderr!]) s.resume();
  // Background children may hold our pipes open; give them a moment, then end the group.
  await new Promise<void>((resolve) => {
    let open = 3;
    const done = () => --open === 0 && resolve();
    for (const s of [child.stdout!, child.stderr!, fd3]) s.once('close', done);
    setTimeout(resolve, DRAIN_GRACE_MS).unref();
  });
  killGroup();
  session.running.delete(killGroup);
  ctx.env.trackProcessGroup('remove', pgid);
  for (const s of [child.stdout!, child.stderr!]) (s as NodeJS.ReadableStream & { destroy(): void }).destroy();

    const next = parseDump(Buffer.concat(dump), new Set(Object.keys(proxy)));
  // bwrap says 128+N for a shell killed by signal N; only a shell that ran its exit trap chose its code.
  const bySignal = sb && !signal && !next ? signalFromExitCode(code) : null;
  if (bySignal) [code, signal] = [null, bySignal];
  if (next && !session.evicted) {
    // Per-call variables are for this call only, unless the command itself changed them.
    for (const [key, value] of Object.entries(callEnv)) {
      if (next.env?.[key] === value) {
        const before = persisted[key];
        if (before === undefined) delete next.env[key];
        else next.env[key] = before;
      }
    }
    const dropped = dropUnstorable(next);
    if (dropped.length) childLogger({ component: 'executor' }).warn('exported variables too large to keep', { sessionId: session.sessionId, names: dropped.map((n) => n.slice(0, 64)) });
    session.shell = next;
    // The command has run; failing it now would invite a second run. The session keeps the
    // new state and retries saving it until the daemon takes it.
    await session.saveShell(ctx.env.sessions, (err) =>
      childLogger({ component: 'executor' }).warn('shell state not persisted yet; retrying', { sessionId: session.sessionId, error: err.message }),
    );
  }
  if (params.stream) {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = decoders[stream].end();
      if (rest) ctx.notify('shell.output', { requestId: ctx.requestId, stream, data: rest });
    }
  }
  return {
    exitCode: code,
    signal: signal ?? null,
    stdout: stdout.text(),
    stderr: stderr.text(),
    cwd: session.shell.cwd ?? session.workspace,
    timedOut,
    truncated: stdout.truncated || stderr.truncated,
  };
}
