// JSON-RPC 2.0 envelopes and their checks. The edge runs `parseRequest` on every frame,
// so it is a few property checks rather than a schema walk; method params are checked
// with their zod schemas by whoever handles the method.
import { ContinuumError, type ErrorData } from './errors.js';

export type RequestId = string | number;

export interface RpcRequest {
  jsonrpc: '2.0';
  id?: RequestId | null;
  method: string;
  params?: unknown;
}

export interface RpcSuccess<R = unknown> {
  jsonrpc: '2.0';
  id: RequestId | null;
  result: R;
}

export interface RpcFailure {
  jsonrpc: '2.0';
  id: RequestId | null;
  error: { code: number; message: string; data?: ErrorData };
}

export type RpcResponse<R = unknown> = RpcSuccess<R> | RpcFailure;

export interface RpcNotification<P = unknown> {
  jsonrpc: '2.0';
  method: string;
  params: P;
}

export type ParsedRequest =
  | { ok: true; request: RpcRequest; id: RequestId | null; isNotification: boolean }
  | { ok: false; id: RequestId | null; error: ContinuumError };

/** Ids are echoed in every answer and log line, so they are kept short. */
export const MAX_ID_LENGTH = 256;

function isValidId(id: unknown): id is RequestId | null {
  return id === null || (typeof id === 'string' && id.length <= MAX_ID_LENGTH) || (typeof id === 'number' && Number.isFinite(id));
}

/** Parses one text frame into a request, or the error to answer it with. */
export function parseRequest(text: string): ParsedRequest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      id: null,
      error: new ContinuumError('PARSE_ERROR', `parse error: the frame is not valid JSON (${(err as Error).message}); send one JSON-RPC object per text frame`),
    };
  }
  return checkRequest(value);
}

export function checkRequest(value: unknown): ParsedRequest {
  if (Array.isArray(value)) {
    return { ok: false, id: null, error: invalid('batches are not supported: send one JSON-RPC object per frame') };
  }
  if (value === null || typeof value !== 'object') {
    return { ok: false, id: null, error: invalid('the frame must be a JSON-RPC request object') };
  }
  const v = value as Record<string, unknown>;
  const hasId = 'id' in v;
  const id = hasId && isValidId(v.id) ? (v.id as RequestId | null) : null;
  if (hasId && !isValidId(v.id)) return { ok: false, id: null, error: invalid(`"id" must be a string of at most ${MAX_ID_LENGTH} characters, a finite number or null`) };
  if (v.jsonrpc !== '2.0') return { ok: false, id, error: invalid('"jsonrpc" must be "2.0"') };
  if (typeof v.method !== 'string' || v.method.length === 0) {
    return { ok: false, id, error: invalid('"method" must be a non-empty string') };
  }
  if ('params' in v && v.params !== undefined && (v.params === null || typeof v.params !== 'object')) {
    return { ok: false, id, error: invalid('"params" must be an object or an array when present') };
  }
  return { ok: true, request: v as unknown as RpcRequest, id, isNotification: !hasId };
}

function invalid(message: string): ContinuumError {
  return new ContinuumError('INVALID_REQUEST', `invalid request: ${message}`);
}

export function successFrame(id: RequestId | null, result: unknown): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${JSON.stringify(result ?? null)}}`;
}

export function errorFrame(id: RequestId | null, error: ContinuumError): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error: error.toRpc() });
}

export function notificationFrame(method: string, params: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', method, params });
}

/** Best-effort id extraction for frames too large to parse fully. */
export function sniffId(text: string): RequestId | null {
  const m = /"id"\s*:\s*("(?:[^"\\]|\\.){0,256}"|-?\d{1,20})/.exec(text.slice(0, 4096));
  if (!m || m[1] === undefined) return null;
  try {
    return JSON.parse(m[1]) as RequestId;
  } catch {
    return null;
  }
}
