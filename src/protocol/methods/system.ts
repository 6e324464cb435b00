import { z } from 'zod';
import { defineMethod, executorRefSchema } from '../method.js';

export const systemPing = defineMethod({
  name: 'system.ping',
  readOnly: true,
  description: 'Round trip to the executor of the bound session.',
  concurrent: true,
  params: z.object({}).strict().optional(),
  result: z.object({ pong: z.literal(true), environment: z.string(), executor: executorRefSchema, time: z.number() }),
});

export const commandInfoSchema = z.object({
  name: z.string(),
  description: z.string(),
  params: z.record(z.string(), z.unknown()),
  result: z.record(z.string(), z.unknown()),
});

export const systemCommands = defineMethod({
  name: 'system.commands',
  readOnly: true,
  description: "The commands this environment's policy allows, with JSON Schemas of params and result.",
  concurrent: true,
  params: z.object({}).strict().optional(),
  result: z.array(commandInfoSchema),
});
