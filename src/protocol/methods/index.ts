// The registry of every method of the wire protocol (PROTOCOL.md, "Commands").
import type { MethodDescriptor } from '../method.js';
import { browserMethods } from './browser.js';
import { commandList, commandStatus } from './command.js';
import { fsDelete, fsList, fsRead, fsStat, fsWrite } from './fs.js';
import { logWrite } from './log.js';
import { processInfo } from './process.js';
import { renderHtml } from './render.js';
import { sessionClose, sessionConnect, sessionInfo, sessionJoin } from './session.js';
import { shellExec } from './shell.js';
import { stateDelete, stateGet, stateList, stateSet } from './state.js';
import { systemCommands, systemPing } from './system.js';

export * from './browser.js';
export * from './command.js';
export * from './fs.js';
export * from './log.js';
export * from './process.js';
export * from './render.js';
export * from './session.js';
export * from './shell.js';
export * from './state.js';
export * from './system.js';
export type { MethodDescriptorLike } from '../method.js';

export const methods: readonly MethodDescriptor[] = [
  sessionConnect, sessionJoin, sessionInfo, sessionClose,
  systemPing, systemCommands,
  shellExec,
  stateGet, stateSet, stateDelete, stateList,
  fsRead, fsWrite, fsList, fsStat, fsDelete,
  logWrite,
  processInfo,
  renderHtml,
  ...browserMethods,
  commandStatus, commandList,
];

export const methodsByName: ReadonlyMap<string, MethodDescriptor> = new Map(methods.map((m) => [m.name, m]));

/** Namespaces an environment's `commands` policy can name. `session` is always allowed. */
export const commandNamespaces: readonly string[] = [...new Set(methods.filter((m) => m.namespace !== 'session').map((m) => m.namespace))];
