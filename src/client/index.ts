// The SDK's only entry point.
export { connect, ContinuumClient } from './client.js';
export type { ConnectOptions, ExecOptions, ReconnectOptions, RequestOptions, ClientEvents } from './client.js';
export { ContinuumError, ErrorCodes, isContinuumError } from '../protocol/errors.js';
export type { ErrorData } from '../protocol/errors.js';
export * as methods from '../protocol/methods/index.js';
