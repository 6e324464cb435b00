// Follows one log file as the supervisor writes and rotates it: `continuum logs -f` and the
// dashboard's live tail. The file is held open, so after a rotation the old file (renamed)
// is read to its end before the new one: no line written in between is lost.
import fs from 'node:fs';

/** How much of the file a follower starting at the end reads back (whole lines only). */
export interface StartAt {
  /** Read back this many bytes at most from the end; undefined reads the whole file. */
  tailBytes?: number;
}

export class LogFollower {
  private fd: number | undefined;
  private inode = -1;
  private position = 0;
  private partial = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly file: string, private readonly onLines: (lines: string[], initial: boolean) => void) {}

  /** Reads what is there now (within `start.tailBytes` of the end). */
  readInitial(start: StartAt = {}): void {
    this.readNew(true, start.tailBytes);
  }

  /** Polls for new lines every `intervalMs` until close(). */
  follow(intervalMs = 200): void {
    this.timer ??= setInterval(() => this.readNew(false), intervalMs);
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private open(tailBytes?: number): void {
    try {
      this.fd = fs.openSync(this.file, 'r');
      const st = fs.fstatSync(this.fd);
      this.inode = st.ino;
      this.position = tailBytes === undefined ? 0 : Math.max(0, st.size - tailBytes);
    } catch {
      this.fd = undefined;
      this.position = 0;
    }
    // Starting mid-file, the first (partial) line is skipped.
    this.partial = '';
    this.skipFirst = this.position > 0;
  }

  private skipFirst = false;

  private drain(initial: boolean): void {
    if (this.fd === undefined) return;
    const size = fs.fstatSync(this.fd).size;
    if (size < this.position) {
      this.position = 0; // truncated in place
      this.partial = '';
    }
    if (size <= this.position) return;
    const buf = Buffer.alloc(size - this.position);
    fs.readSync(this.fd, buf, 0, buf.length, this.position);
    this.position = size;
    const lines = (this.partial + buf.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    if (this.skipFirst) {
      lines.shift();
      this.skipFirst = false;
    }
    const whole = lines.filter((l) => l.length > 0);
    if (whole.length) this.onLines(whole, initial);
  }

  private readNew(initial: boolean, tailBytes?: number): void {
    this.drain(initial);
    let current: fs.Stats;
    try {
      current = fs.statSync(this.file);
    } catch {
      return;
    }
    if (this.fd === undefined || current.ino !== this.inode) {
      if (this.fd !== undefined) {
        this.drain(false);
        fs.closeSync(this.fd);
      }
      this.open(initial ? tailBytes : undefined);
      this.drain(initial);
    }
  }
}
