// A log file with size-based rotation: `name.log` → `name.log.1` → … → `name.log.N`.
// One owner per file (the supervisor), so rotation needs no locking. Lines are buffered
// and written once per tick; a write error (disk full, read-only) drops the batch, counts
// the loss and keeps going, so logging never stops commands. A batch cut short by a full
// disk is cut back to its last whole line, and the first write that succeeds after a loss
// tells `onRecovered`, so the gap is visible in the log itself.
import fs from 'node:fs';

export interface RotationPolicy {
  maxBytes: number;
  maxFiles: number;
}

/** A run of lost lines that has ended: the first write after it succeeded. */
export interface LogLoss {
  lines: number;
  error: string;
  since: number;
  until: number;
}

export class RotatingFile {
  private fd: number | undefined;
  private size = 0;
  private buffer: string[] = [];
  private scheduled = false;
  /** Lines that could not be written, for `continuum ps` and the metrics. */
  lostLines = 0;
  lastError: string | undefined;
  /** The loss not yet reported: lines lost since the last successful write. */
  private openLoss: { lines: number; since: number } | undefined;

  constructor(readonly path: string, private readonly policy: RotationPolicy, private readonly onRecovered: (loss: LogLoss) => void = () => {}) {}

  write(line: string): void {
    this.buffer.push(line.endsWith('\n') ? line : `${line}\n`);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.buffer.length === 0) return;
    const lines = this.buffer;
    this.buffer = [];
    try {
      // Open first: the size left by an earlier run decides whether this batch rotates.
      this.open();
      let chunk = '';
      let chunkBytes = 0;
      for (const line of lines) {
        const bytes = Buffer.byteLength(line);
        if (this.size + chunkBytes + bytes > this.policy.maxBytes && this.size + chunkBytes > 0) {
          this.writeOut(chunk);
          chunk = '';
          chunkBytes = 0;
          this.rotate();
        }
        chunk += line;
        chunkBytes += bytes;
      }
      this.writeOut(chunk);
    } catch (err) {
      // Lines of this batch written before a rotation count as lost too: simpler than exact.
      this.lostLines += lines.length;
      this.lastError = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      this.openLoss ??= { lines: 0, since: Date.now() };
      this.openLoss.lines += lines.length;
      this.closeFd();
      return;
    }
    if (this.openLoss) {
      const loss = { ...this.openLoss, error: this.lastError ?? 'unknown', until: Date.now() };
      this.openLoss = undefined;
      this.onRecovered(loss);
    }
  }

  close(): void {
    this.flush();
    this.closeFd();
  }

  private writeOut(chunk: string): void {
    if (!chunk) return;
    const fd = this.open();
    const buf = Buffer.from(chunk);
    let written = 0;
    try {
      while (written < buf.length) written += fs.writeSync(fd, buf, written);
    } catch (err) {
      // A full disk takes part of a chunk: cut it back, or the file would hold a half line.
      if (written > 0) {
        try {
          fs.ftruncateSync(fd, this.size);
        } catch {
          // Nothing better to do; the next successful write starts on a fresh line anyway.
        }
      }
      throw err;
    }
    this.size += buf.length;
  }

  private open(): number {
    if (this.fd === undefined) {
      this.fd = fs.openSync(this.path, 'a', 0o640);
      this.size = fs.fstatSync(this.fd).size;
    }
    return this.fd;
  }

  private closeFd(): void {
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // Already gone; nothing to release.
      }
      this.fd = undefined;
    }
  }

  private rotate(): void {
    this.closeFd();
    const { maxFiles } = this.policy;
    fs.rmSync(`${this.path}.${maxFiles}`, { force: true });
    for (let i = maxFiles - 1; i >= 1; i--) {
      try {
        fs.renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    fs.renameSync(this.path, `${this.path}.1`);
    this.size = 0;
  }
}
