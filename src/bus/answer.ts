// How a Request frame is answered, by an executor or by a system daemon: the JSON-RPC
// response as the payload, with a flags lead the edge reads without parsing the JSON.
import { ContinuumError, toContinuumError } from '../protocol/errors.js';
import { errorFrame, successFrame, type RequestId } from '../protocol/jsonrpc.js';
import { ERROR_LEAD, FrameKind, MAX_FRAME_BYTES, OK_LEAD } from './frame-codec.js';
import type { FrameSocket } from './frame-socket.js';

/**
 * A RangeError out of a handler is JSON too deeply nested to serialise (a client's value on
 * its way to the session daemon or a log line): the client's params, not our fault.
 */
function wireError(err: unknown): ContinuumError {
  if (err instanceof RangeError) return new ContinuumError('INVALID_PARAMS', `invalid params: a value is nested too deeply to handle (${err.message}); send a flatter value`, { issues: [{ path: [], message: 'nested too deeply' }] });
  return toContinuumError(err);
}

/** An answer too big for one bus frame (JSON escaping can multiply output) is refused, not sent. */
export function sendResult(socket: FrameSocket, tag: number, id: RequestId | null, result: unknown): void {
  let text: string;
  try {
    text = successFrame(id, result);
  } catch (err) {
    // Often called from a promise callback: a throw here would be an unhandled rejection.
    sendError(socket, tag, id, err);
    return;
  }
  if (text.length * 3 > MAX_FRAME_BYTES - 64 && Buffer.byteLength(text) > MAX_FRAME_BYTES - 64) {
    const err = new ContinuumError('PAYLOAD_TOO_LARGE', `the result is ${Buffer.byteLength(text)} bytes as JSON, over the ${MAX_FRAME_BYTES}-byte limit; ask for less (a lower output cap, or read in parts)`);
    socket.send(FrameKind.Response, tag, errorFrame(id, err), ERROR_LEAD);
    return;
  }
  socket.send(FrameKind.Response, tag, text, OK_LEAD);
}

export function sendError(socket: FrameSocket, tag: number, id: RequestId | null, err: unknown): void {
  socket.send(FrameKind.Response, tag, errorFrame(id, wireError(err)), ERROR_LEAD);
}
