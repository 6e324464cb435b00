// A small tmpfs mounted over a folder of a tree's home, to make a real disk fill up (or,
// with a read-only bind mount, refuse writes). Needs root and mount(8); a suite that uses
// it fails under CI when those are missing, and elsewhere skips, saying so loudly.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Why tmpfs mounts can't be used here, or undefined when they can. */
export function mountUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'these fault tests mount a tmpfs and need root';
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'ct-mount-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return `mount -t tmpfs failed: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}

/** `{ skip }` for describe(): skips loudly outside CI, and throws under CI=true. */
export function skipWithoutMounts(): { skip?: string } {
  const why = mountUnavailable();
  if (!why) return {};
  if (process.env.CI === 'true') throw new Error(`CI=true and ${why}`);
  console.error(`\n!!! SKIPPING disk-fault tests: ${why}\n`);
  return { skip: why };
}

export class TestDisk {
  private readonly filler: string;
  private mounted: string[] = [];

  constructor(readonly dir: string, readonly sizeBytes: number) {
    this.filler = path.join(dir, '.filler');
  }

  mount(): this {
    fs.mkdirSync(this.dir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${this.sizeBytes},mode=0700`, 'tmpfs', this.dir], { stdio: 'pipe' });
    this.mounted.push(this.dir);
    return this;
  }

  /** Writes a file until the disk is full; returns its size. */
  fill(): number {
    const fd = fs.openSync(this.filler, 'a');
    const block = Buffer.alloc(4096, 0x78);
    let bytes = 0;
    try {
      for (;;) bytes += fs.writeSync(fd, block);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    } finally {
      fs.closeSync(fd);
    }
    return bytes;
  }

  /** Gives the space back. */
  free(): void {
    fs.rmSync(this.filler, { force: true });
  }

  freeBytes(): number {
    const s = fs.statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  /** Makes the folder read-only (a read-only bind mount over it), as after a remount-ro. */
  readOnly(): void {
    execFileSync('mount', ['--bind', this.dir, this.dir], { stdio: 'pipe' });
    this.mounted.push(this.dir);
    execFileSync('mount', ['-o', 'remount,bind,ro', this.dir], { stdio: 'pipe' });
  }

  /** Undoes readOnly() (in place: processes may hold files open through the bind mount). */
  writable(): void {
    execFileSync('mount', ['-o', 'remount,bind,rw', this.dir], { stdio: 'pipe' });
  }

  /** Unmounts everything this mounted; lazily if something still holds it. */
  unmount(): void {
    while (this.mounted.length) {
      const dir = this.mounted.pop()!;
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
    }
  }
}
