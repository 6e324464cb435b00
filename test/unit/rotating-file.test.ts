import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { RotatingFile } from '../../src/logging/rotating-file.js';

describe('rotating log file', () => {
  it('rotates by size and keeps maxFiles old files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rot-'));
    const f = new RotatingFile(path.join(dir, 'x.log'), { maxBytes: 1000, maxFiles: 2 });
    for (let i = 0; i < 100; i++) {
      f.write(JSON.stringify({ i, pad: 'p'.repeat(40) }));
      if (i % 7 === 0) f.flush();
    }
    f.close();
    const files = fs.readdirSync(dir).sort();
    assert.deepEqual(files, ['x.log', 'x.log.1', 'x.log.2']);
    for (const name of files) {
      const text = fs.readFileSync(path.join(dir, name), 'utf8');
      assert.ok(Buffer.byteLength(text) <= 1000, `${name} is within maxBytes`);
      for (const line of text.trim().split('\n')) JSON.parse(line);
    }
    const last = fs.readFileSync(path.join(dir, 'x.log'), 'utf8').trim().split('\n').pop()!;
    assert.equal((JSON.parse(last) as { i: number }).i, 99);
    fs.rmSync(dir, { recursive: true });
  });

  it('counts lines it could not write instead of throwing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rot-'));
    const f = new RotatingFile(path.join(dir, 'missing-dir', 'x.log'), { maxBytes: 1000, maxFiles: 2 });
    f.write('{"a":1}');
    f.write('{"a":2}');
    f.flush();
    assert.equal(f.lostLines, 2);
    assert.equal(f.lastError, 'ENOENT');
    fs.rmSync(dir, { recursive: true });
  });
});
