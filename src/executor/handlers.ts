// Method name → handler, for every method an executor serves.
import type { CommandHandler } from './command.js';
import * as fsCommands from './commands/fs.js';
import * as logCommands from './commands/log.js';
import * as processCommands from './commands/process.js';
import * as shellCommands from './commands/shell.js';
import * as stateCommands from './commands/state.js';
import * as systemCommands from './commands/system.js';

export const handlers: ReadonlyMap<string, CommandHandler> = new Map<string, CommandHandler>([
  ['system.ping', systemCommands.ping],
  ['system.commands', systemCommands.commands],
  ['shell.exec', shellCommands.exec as CommandHandler],
  ['state.get', stateCommands.get as CommandHandler],
  ['state.set', stateCommands.set as CommandHandler],
  ['state.delete', stateCommands.remove as CommandHandler],
  ['state.list', stateCommands.list],
  ['fs.read', fsCommands.read as CommandHandler],
  ['fs.write', fsCommands.write as CommandHandler],
  ['fs.list', fsCommands.list as CommandHandler],
  ['fs.stat', fsCommands.stat as CommandHandler],
  ['fs.delete', fsCommands.remove as CommandHandler],
  ['log.write', logCommands.write as CommandHandler],
  ['process.info', processCommands.info],
]);
