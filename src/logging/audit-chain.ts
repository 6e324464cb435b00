// The audit trail's chain: each record (one JSON line of `<home>/audit/<env>.jsonl`) carries
// `seq` and `prev`, the SHA-256 of the line before it, so an edited, deleted or reordered
// record breaks the chain at that point. `<env>.head` holds the count and the hash of the
// last line, so the tail (which no later record vouches for) is covered too.
import { hash } from 'node:crypto';
import fs from 'node:fs';

export const GENESIS = '0'.repeat(64);

export function lineHash(line: string | Buffer): string {
  return hash('sha256', line, 'hex');
}

export interface ChainHead {
  seq: number;
  hash: string;
}

export function headPath(file: string): string {
  return file.replace(/\.jsonl$/, '.head');
}

export function readHead(file: string): ChainHead | undefined {
  try {
    const h = JSON.parse(fs.readFileSync(headPath(file), 'utf8')) as ChainHead;
    return Number.isInteger(h.seq) && typeof h.hash === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

export interface VerifyResult {
  records: number;
  ok: boolean;
  /** The first broken record: its line number (1-based) and what is wrong. */
  broken?: { line: number; reason: string };
}

export function verifyChain(text: string, head: ChainHead | undefined): VerifyResult {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  let prev = GENESIS;
  const hashes: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fail = (reason: string): VerifyResult => ({ records: lines.length, ok: false, broken: { line: i + 1, reason } });
    let rec: { seq?: unknown; prev?: unknown };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      return fail('not a JSON record');
    }
    if (rec.prev !== prev) return fail(i === 0 ? 'the first record does not start the chain' : 'its prev is not the SHA-256 of the record before it (that record was edited, or records were deleted or reordered)');
    if (rec.seq !== i + 1) return fail(`its seq is ${String(rec.seq)}, expected ${i + 1}`);
    prev = lineHash(line);
    hashes.push(prev);
  }
  if (head && head.seq > 0) {
    if (head.seq > lines.length) return { records: lines.length, ok: false, broken: { line: lines.length + 1, reason: `the head says ${head.seq} records were written, but the file holds ${lines.length}: the tail was deleted` } };
    if (hashes[head.seq - 1] !== head.hash) return { records: lines.length, ok: false, broken: { line: head.seq, reason: 'it is not the record the head vouches for (edited)' } };
  }
  return { records: lines.length, ok: true };
}
