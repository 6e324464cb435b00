// bubblewrap reports a child killed by signal N as exit code 128+N.
import os from 'node:os';

/** Turns bwrap's 128+N back into the signal, when the caller knows no exit code was chosen. */
export function signalFromExitCode(code: number | null): NodeJS.Signals | null {
  if (code === null || code <= 128) return null;
  return (Object.entries(os.constants.signals).find(([, n]) => n === code - 128)?.[0] as NodeJS.Signals | undefined) ?? null;
}
