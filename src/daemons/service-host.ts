// The command side of a system daemon (renderer, browser): it serves the methods declared
// with its host for every environment's sessions. The edge has already checked the caller's
// policy; here the params are checked and the handler runs. Same frames as an executor.
import { sendError, sendResult } from '../bus/answer.js';
import { decodeServiceRequest, FrameKind, type Frame } from '../bus/frame-codec.js';
import { listenFrameSockets, type FrameServer, type FrameSocket } from '../bus/frame-socket.js';
import { ContinuumError } from '../protocol/errors.js';
import { notificationFrame, type RequestId } from '../protocol/jsonrpc.js';
import { parseParams, type MethodHost } from '../protocol/method.js';
import { methodsByName } from '../protocol/methods/index.js';

export interface ServiceCall {
  sessionId: string;
  /** The caller's environment, whose policy (network, limits) applies to the call. */
  environment: string;
  requestId: RequestId | null;
  notify(method: string, params: unknown): void;
}

export type ServiceHandler = (params: never, call: ServiceCall) => unknown;

export function serveCommands(socketPath: string, host: MethodHost, handlers: ReadonlyMap<string, ServiceHandler>): Promise<FrameServer> {
  const onFrame = (socket: FrameSocket, frame: Frame): void => {
    if (frame.kind !== FrameKind.Request) return;
    let id: RequestId | null = null;
    try {
      const { sessionId, environment, body } = decodeServiceRequest(frame.payload);
      const req = JSON.parse(body.toString('utf8')) as { id?: RequestId | null; method: string; params?: unknown };
      id = req.id ?? null;
      const method = methodsByName.get(req.method);
      const handler = handlers.get(req.method);
      if (!method || method.host !== host || !handler) throw new ContinuumError('METHOD_NOT_FOUND', `method "${req.method}" is not served by the ${host}`);
      const call: ServiceCall = {
        sessionId,
        environment,
        requestId: id,
        notify: (m, p) => socket.send(FrameKind.Notify, frame.tag, notificationFrame(m, p)),
      };
      const requestId = id;
      Promise.resolve()
        .then(() => (handler as (p: unknown, c: ServiceCall) => unknown)(parseParams(method, req.params), call))
        .then(
          (result) => sendResult(socket, frame.tag, requestId, result),
          (err) => sendError(socket, frame.tag, requestId, err),
        );
    } catch (err) {
      sendError(socket, frame.tag, id, err);
    }
  };
  return listenFrameSockets(socketPath, (socket) => socket.onFrame((frame) => onFrame(socket, frame)));
}
