import { emitRecord } from '../../logging/child-log.js';
import { makeRecord } from '../../logging/record.js';
import type { LogLevelName } from '../../protocol/methods/log.js';
import type { CommandContext } from '../command.js';

/** The supervisor writes the line to this environment's log, stamping env and pid itself. */
export function write(params: { level: LogLevelName; message: string; data?: Record<string, unknown> }, ctx: CommandContext) {
  emitRecord(
    makeRecord(params.level, params.message, {
      sessionId: ctx.session.sessionId,
      requestId: ctx.requestId,
      source: 'log.write',
      ...(params.data ? { data: params.data } : {}),
    }),
  );
  return { ok: true as const };
}
