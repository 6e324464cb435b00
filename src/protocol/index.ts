export * from './errors.js';
export * from './jsonrpc.js';
export * from './method.js';
export * from './methods/index.js';
