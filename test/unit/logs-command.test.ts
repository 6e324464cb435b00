import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { logs } from '../../src/cli/commands/logs.js';
import { RotatingFile } from '../../src/logging/rotating-file.js';

function home(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logs-cmd-'));
  fs.mkdirSync(path.join(dir, 'logs'));
  return dir;
}

describe('continuum logs', () => {
  it('-n keeps the last n lines, and -n 0 none', async () => {
    const h = home();
    const lines = Array.from({ length: 5 }, (_, i) => JSON.stringify({ time: 0, level: 30, msg: `m${i}` }));
    fs.writeFileSync(path.join(h, 'logs', 'remote.log'), `${lines.join('\n')}\n`);
    let out = '';
    await logs('remote', { home: h, lines: 2, json: true }, (s) => (out += s));
    assert.deepEqual(out.trim().split('\n'), lines.slice(-2));
    out = '';
    await logs('remote', { home: h, lines: 0, json: true }, (s) => (out += s));
    assert.equal(out, '');
    fs.rmSync(h, { recursive: true });
  });

  it('-f follows across rotations without losing a line', async () => {
    const h = home();
    const file = new RotatingFile(path.join(h, 'logs', 'remote.log'), { maxBytes: 4_096, maxFiles: 50 });
    file.write(JSON.stringify({ time: 0, level: 30, msg: 'line 0' }));
    file.flush();
    let out = '';
    const following = logs('remote', { home: h, follow: true, json: true }, (s) => (out += s));
    // About one rotation per batch, and a poll (200 ms) between batches: each rotation
    // happens while the follower holds the file that is being renamed away.
    const total = 600;
    for (let i = 1; i < total; i++) {
      file.write(JSON.stringify({ time: 0, level: 30, msg: `line ${i}` }));
      if (i % 40 === 0) {
        file.flush();
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    file.close();
    const deadline = Date.now() + 5_000;
    while (out.trim().split('\n').length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    process.emit('SIGINT');
    await following;
    const seen = out.trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
    assert.ok(fs.existsSync(path.join(h, 'logs', 'remote.log.5')), 'the file rotated many times');
    assert.deepEqual(seen, Array.from({ length: total }, (_, i) => `line ${i}`));
    fs.rmSync(h, { recursive: true });
  });
});
