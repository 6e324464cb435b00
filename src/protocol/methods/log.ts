import { z } from 'zod';
import { defineMethod } from '../method.js';

export const logLevelSchema = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
export type LogLevelName = z.infer<typeof logLevelSchema>;

export const logWrite = defineMethod({
  name: 'log.write',
  description: "Append a line to this environment's log, tagged with the session.",
  params: z.object({
    level: logLevelSchema,
    message: z.string().max(64 * 1024),
    data: z.record(z.string(), z.unknown()).optional(),
  }).strict(),
  result: z.object({ ok: z.literal(true) }),
});
