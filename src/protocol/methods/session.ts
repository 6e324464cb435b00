import { z } from 'zod';
import { defineMethod, executorRefSchema, sessionIdSchema } from '../method.js';

export const sessionModeSchema = z.enum(['auto', 'new', 'join', 'fork']);
export type SessionMode = z.infer<typeof sessionModeSchema>;

export const sessionBindResultSchema = z.object({
  sessionId: z.string(),
  environment: z.string(),
  action: z.enum(['created', 'joined', 'forked']),
  executor: executorRefSchema,
  createdAt: z.number(),
});
export type SessionBindResult = z.infer<typeof sessionBindResultSchema>;

export const sessionRecordSchema = z.object({
  sessionId: z.string(),
  environment: z.string(),
  label: z.string().nullable(),
  createdAt: z.number(),
  lastActiveAt: z.number(),
  executor: executorRefSchema.extend({ pid: z.number().int().nullable() }),
});
export type SessionRecord = z.infer<typeof sessionRecordSchema>;

export const sessionConnect = defineMethod({
  name: 'session.connect',
  description: 'Bind this connection to a session of an environment: join, create or fork one.',
  host: 'edge',
  params: z.object({
    environment: z.string().min(1),
    sessionId: sessionIdSchema.optional(),
    mode: sessionModeSchema.optional(),
    label: z.string().max(200).optional(),
  }).strict(),
  result: sessionBindResultSchema,
});

export const sessionJoin = defineMethod({
  name: 'session.join',
  description: 'Bind this connection to an existing session; its environment comes from the session.',
  host: 'edge',
  params: z.object({ sessionId: sessionIdSchema }).strict(),
  result: sessionBindResultSchema,
});

export const sessionInfo = defineMethod({
  name: 'session.info',
  readOnly: true,
  description: "The bound session's record.",
  host: 'edge',
  params: z.object({}).strict().optional(),
  result: sessionRecordSchema,
});

export const sessionClose = defineMethod({
  name: 'session.close',
  description: 'End the bound session: its state and workspace are deleted.',
  host: 'edge',
  params: z.object({}).strict().optional(),
  result: z.object({ ok: z.literal(true) }),
});

export const sessionExecutorRestartedSchema = z.object({ sessionId: z.string(), executor: executorRefSchema });
