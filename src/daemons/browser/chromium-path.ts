// Which Chromium the browser daemon runs: Debian's package, never a downloaded browser.
// Shared with `continuum doctor`, so both say the same thing when it is missing.
import fs from 'node:fs';

export const CHROMIUM_PACKAGE_HINT = 'apt-get install chromium';

/** `CONTINUUM_CHROMIUM` overrides the path (another build, or a test of the missing case). */
export function chromiumExecutable(): string {
  return process.env.CONTINUUM_CHROMIUM ?? '/usr/bin/chromium';
}

export function chromiumInstalled(executablePath = chromiumExecutable()): boolean {
  try {
    fs.accessSync(executablePath, fs.constants.X_OK);
    return fs.statSync(executablePath).isFile();
  } catch {
    return false;
  }
}
