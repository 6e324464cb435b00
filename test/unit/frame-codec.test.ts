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

  it('refuses a length outside the bounds instead of buffering forever', () => {
    const bad = Buffer.alloc(9);
    bad.writeUInt32BE(0x7fffffff, 0);
    assert.throws(() => new FrameDecoder().push(bad, () => undefined), FrameTooLargeError);
  });
});
