import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeRequestPayload, encodeFrame, FrameDecoder, FrameKind, FrameTooLargeError, requestLead, type Frame } from '../../src/bus/frame-codec.js';

describe('frame codec', () => {
  it('round-trips frames split at every byte boundary', () => {
    const frames = [encodeFrame(FrameKind.Call, 7, '{"m":"x"}'), encodeFrame(FrameKind.Request, 0xffffffff, 'héllo', requestLead('s-1')), encodeFrame(FrameKind.Event, 0, '')];
    const all = Buffer.concat(frames);
    for (let cut = 0; cut <= all.length; cut++) {
      const out: Frame[] = [];
      const d = new FrameDecoder();
      d.push(all.subarray(0, cut), (f) => out.push({ ...f, payload: Buffer.from(f.payload) }));
      d.push(all.subarray(cut), (f) => out.push({ ...f, payload: Buffer.from(f.payload) }));
      assert.equal(out.length, 3);
      assert.deepEqual(out.map((f) => f.kind), [FrameKind.Call, FrameKind.Request, FrameKind.Event]);
      assert.equal(out[1]!.tag, 0xffffffff);
      const req = decodeRequestPayload(out[1]!.payload);
      assert.equal(req.sessionId, 's-1');
      assert.equal(req.body.toString(), 'héllo');
      assert.equal(out[2]!.payload.length, 0);
    }
  });

  it('decodes frames fed a byte at a time, and a large frame fed in many chunks', () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 0x61);
    const all = Buffer.concat([encodeFrame(FrameKind.Notify, 1, 'a'), encodeFrame(FrameKind.Response, 2, big), encodeFrame(FrameKind.Notify, 3, 'bc')]);
    const out: Frame[] = [];
    const d = new FrameDecoder();
    for (let i = 0; i < 64; i++) d.push(all.subarray(i, i + 1), (f) => out.push({ ...f, payload: Buffer.from(f.payload) }));
    for (let i = 64; i < all.length; i += 65_536) d.push(all.subarray(i, i + 65_536), (f) => out.push({ ...f, payload: Buffer.from(f.payload) }));
    assert.deepEqual(out.map((f) => f.tag), [1, 2, 3]);
    assert.ok(out[1]!.payload.equals(big));
    assert.equal(out[2]!.payload.toString(), 'bc');
  });

  it('refuses a length outside the bounds instead of buffering forever', () => {
    const bad = Buffer.alloc(9);
    bad.writeUInt32BE(0x7fffffff, 0);
    assert.throws(() => new FrameDecoder().push(bad, () => undefined), FrameTooLargeError);
  });
});
