// One table of every error Continuum puts on the wire or raises in a client.
// JSON-RPC numbers are the contract of PROTOCOL.md; the string codes are stable names
// that cross process boundaries and that tests assert on.

export const ErrorCodes = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL: -32603,
  UNAUTHORIZED: -32001,
  FORBIDDEN: -32002,
  EXECUTOR_UNAVAILABLE: -32003,
  TIMEOUT: -32004,
  OVERLOADED: -32005,
  PAYLOAD_TOO_LARGE: -32006,
  STORAGE_UNAVAILABLE: -32007,
  SESSION_NOT_FOUND: -32010,
  SESSION_WRONG_ENVIRONMENT: -32011,
  NO_SESSION: -32012,
  SESSION_EXISTS: -32013,
  COMMAND_NOT_FOUND: -32014,
  COMMAND_LOST: -32015,
  RESULT_NOT_KEPT: -32016,
} as const;

export type ErrorName = keyof typeof ErrorCodes;
export type RpcErrorCode = (typeof ErrorCodes)[ErrorName];

const nameByCode = new Map<number, ErrorName>(
  Object.entries(ErrorCodes).map(([name, code]) => [code, name as ErrorName]),
);

/** Codes that exist only on the client side: they never travel as JSON-RPC errors. */
export type ClientErrorName = 'CONNECTION_LOST' | 'CLIENT_CLOSED' | 'CLIENT_TIMEOUT' | 'CONNECT_FAILED';

export interface ErrorData {
  retryable?: boolean;
  retryAfterMs?: number;
  reason?: string;
  issues?: unknown[];
  [key: string]: unknown;
}

export class ContinuumError extends Error {
  override readonly name = 'ContinuumError';
  /** Stable string code: `CONTINUUM_<NAME>`. */
  readonly code: string;
  /** JSON-RPC error number, or undefined for client-only errors. */
  readonly rpcCode: number | undefined;
  readonly data: ErrorData | undefined;

  constructor(name: ErrorName | ClientErrorName, message: string, data?: ErrorData, options?: { cause?: unknown }) {
    super(message, options);
    this.code = `CONTINUUM_${name}`;
    this.rpcCode = name in ErrorCodes ? ErrorCodes[name as ErrorName] : undefined;
    this.data = data;
  }

  /** Turns a JSON-RPC error object received from a peer back into a typed error. */
  static fromRpc(error: { code: number; message: string; data?: unknown }): ContinuumError {
    const name = nameByCode.get(error.code) ?? 'INTERNAL';
    const data = error.data && typeof error.data === 'object' ? (error.data as ErrorData) : undefined;
    return new ContinuumError(name, error.message, data);
  }

  toRpc(): { code: number; message: string; data?: ErrorData } {
    const out: { code: number; message: string; data?: ErrorData } = {
      code: this.rpcCode ?? ErrorCodes.INTERNAL,
      message: this.message,
    };
    if (this.data !== undefined) out.data = this.data;
    return out;
  }
}

export function isContinuumError(err: unknown, name?: ErrorName | ClientErrorName): err is ContinuumError {
  return err instanceof ContinuumError && (name === undefined || err.code === `CONTINUUM_${name}`);
}

/** Wraps anything thrown into a ContinuumError without losing the original. */
export function toContinuumError(err: unknown): ContinuumError {
  if (err instanceof ContinuumError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ContinuumError('INTERNAL', `internal error: ${message}`, undefined, { cause: err });
}
