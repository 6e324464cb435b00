// Length-prefixed frames: [u32 length of the rest][u8 kind][u32 tag][payload].
// Bytes only: this file never touches a socket and never sees JSON-RPC.

export const FrameKind = {
  /** edge → executor: [u8 sessionId length][sessionId][client JSON-RPC request bytes] */
  Request: 1,
  /** executor → edge: [u8 flags][JSON-RPC response bytes, ready for the client] */
  Response: 2,
  /** executor → edge: a JSON-RPC notification belonging to the request `tag` */
  Notify: 3,
  /** internal call, JSON payload; a reply carries the same tag */
  Call: 4,
  Reply: 5,
  /** internal one-way message, JSON payload */
  Event: 6,
  /** edge → executor: [u8 1 = pause, 0 = resume] the streamed output of the request `tag` */
  Flow: 7,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export const HEADER_BYTES = 9;
/** Frames on the bus are bounded too, so a confused peer can't make us buffer forever. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export interface Frame {
  kind: number;
  tag: number;
  payload: Buffer;
}

/** `lead` is a few bytes placed before the payload (the session id of a request, a flags byte). */
export function encodeFrame(kind: FrameKind, tag: number, payload: Buffer | string, lead?: Buffer): Buffer {
  const leadBytes = lead?.length ?? 0;
  const bodyBytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const out = Buffer.allocUnsafe(HEADER_BYTES + leadBytes + bodyBytes);
  out.writeUInt32BE(5 + leadBytes + bodyBytes, 0);
  out.writeUInt8(kind, 4);
  out.writeUInt32BE(tag >>> 0, 5);
  if (lead) lead.copy(out, HEADER_BYTES);
  if (typeof payload === 'string') out.write(payload, HEADER_BYTES + leadBytes);
  else payload.copy(out, HEADER_BYTES + leadBytes);
  return out;
}

export class FrameTooLargeError extends Error {
  override readonly name = 'FrameTooLargeError';
}

/** Incremental decoder: push chunks in, get whole frames out (payloads are views, not copies). */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the frame at the head of `pending` needs in all; 0 while its header is incomplete. */
  private need = 0;

  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    let buf: Buffer;
    if (this.pendingBytes === 0) {
      buf = chunk;
    } else {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      // A large frame arrives in many chunks: join them once, when it is whole, not at each chunk.
      if (this.pendingBytes < this.need) return;
      buf = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    let offset = 0;
    while (buf.length - offset >= 4) {
      const length = buf.readUInt32BE(offset);
      if (length < 5 || length > MAX_FRAME_BYTES) throw new FrameTooLargeError(`bus frame of ${length} bytes is outside 5..${MAX_FRAME_BYTES}`);
      if (buf.length - offset < 4 + length) break;
      onFrame({
        kind: buf.readUInt8(offset + 4),
        tag: buf.readUInt32BE(offset + 5),
        payload: buf.subarray(offset + HEADER_BYTES, offset + 4 + length),
      });
      offset += 4 + length;
    }
    this.need = 0;
    if (offset < buf.length) {
      // Copy the tail so we don't pin the whole chunk in memory while waiting for the rest.
      const rest = Buffer.from(buf.subarray(offset));
      this.pending.push(rest);
      this.pendingBytes = rest.length;
      if (rest.length >= 4) this.need = 4 + rest.readUInt32BE(0);
    }
  }
}

/** The lead of a Request frame: the session id, length-prefixed. */
export function requestLead(sessionId: string): Buffer {
  const sid = Buffer.from(sessionId, 'latin1');
  const out = Buffer.allocUnsafe(1 + sid.length);
  out.writeUInt8(sid.length, 0);
  sid.copy(out, 1);
  return out;
}

export function decodeRequestPayload(payload: Buffer): { sessionId: string; body: Buffer } {
  const len = payload.readUInt8(0);
  return { sessionId: payload.toString('latin1', 1, 1 + len), body: payload.subarray(1 + len) };
}

/**
 * The lead of a Request frame to a system daemon: the session id and the caller's
 * environment (a daemon serves every environment and applies its policy), each
 * length-prefixed.
 */
export function serviceLead(sessionId: string, environment: string): Buffer {
  const sid = Buffer.from(sessionId, 'latin1');
  const env = Buffer.from(environment, 'latin1');
  const out = Buffer.allocUnsafe(2 + sid.length + env.length);
  out.writeUInt8(sid.length, 0);
  sid.copy(out, 1);
  out.writeUInt8(env.length, 1 + sid.length);
  env.copy(out, 2 + sid.length);
  return out;
}

export function decodeServiceRequest(payload: Buffer): { sessionId: string; environment: string; body: Buffer } {
  const sidLen = payload.readUInt8(0);
  const envLen = payload.readUInt8(1 + sidLen);
  const envStart = 2 + sidLen;
  return {
    sessionId: payload.toString('latin1', 1, 1 + sidLen),
    environment: payload.toString('latin1', envStart, envStart + envLen),
    body: payload.subarray(envStart + envLen),
  };
}

export const ResponseFlags = { Ok: 0, Error: 1 } as const;
export const OK_LEAD = Buffer.from([ResponseFlags.Ok]);
export const ERROR_LEAD = Buffer.from([ResponseFlags.Error]);
