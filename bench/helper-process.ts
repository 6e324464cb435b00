// The bench's own helper processes (echo server, relay): started from this folder, and
// tracked so that a failed or interrupted run can stop them.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const helpers = new Set<ChildProcess>();

/** Starts one of the bench's own helper processes and waits for its ready line. */
export async function startHelper(script: string, args: string[], ready: RegExp): Promise<{ proc: ChildProcess; match: RegExpExecArray }> {
  const proc = spawn(process.execPath, [path.join(here, script), ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  helpers.add(proc);
  proc.once('exit', () => helpers.delete(proc));
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${script} did not start in 5 s`)), 5_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    proc.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return { proc, match };
}

export async function stopHelper(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.stdin!.end();
  proc.kill('SIGTERM');
  await exited;
}
