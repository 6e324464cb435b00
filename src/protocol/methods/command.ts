// The command ledger on the wire: what happened to a request, asked by its id. Served by
// the edge from the session daemon's ledger, never by an executor (which may be dead).
import { z } from 'zod';
import { defineMethod } from '../method.js';

export const commandStateSchema = z.enum(['accepted', 'started', 'completed', 'failed', 'lost']);
export type CommandState = z.infer<typeof commandStateSchema>;
export const FINAL_COMMAND_STATES: ReadonlySet<CommandState> = new Set(['completed', 'failed', 'lost']);

/** Why a command was lost: the process that ran or routed it died under it. */
export const lostReasonSchema = z.object({
  kind: z.enum(['signal', 'oom', 'limit', 'heartbeat', 'exit', 'link', 'edge']),
  signal: z.string().nullable(),
  exitCode: z.number().int().nullable(),
  detail: z.string(),
});
export type LostReason = z.infer<typeof lostReasonSchema>;

export const commandEntrySchema = z.object({
  requestId: z.string(),
  /** `request`: the client's string id; `connection`: a numeric id, scoped to its connection. */
  idScope: z.enum(['request', 'connection']),
  sessionId: z.string(),
  environment: z.string(),
  method: z.string(),
  state: commandStateSchema,
  executorId: z.string().nullable(),
  acceptedAt: z.number(),
  startedAt: z.number().nullable(),
  finishedAt: z.number().nullable(),
  durationMs: z.number().nullable(),
  /** shell.exec only: how the command ended. */
  exit: z.object({ exitCode: z.number().int().nullable(), signal: z.string().nullable(), timedOut: z.boolean() }).nullable(),
  error: z.object({ code: z.number(), message: z.string(), data: z.unknown().optional() }).nullable(),
  lostReason: lostReasonSchema.nullable(),
  /** The result as answered, when it fits the ledger's cap (shell.exec output is cut to fit, marked). */
  result: z.unknown().nullable(),
  /** The result (or part of shell.exec's output) was over the cap and was cut or not kept. */
  resultCut: z.boolean(),
});
export type CommandEntry = z.infer<typeof commandEntrySchema>;

export const commandStatus = defineMethod({
  name: 'command.status',
  readOnly: true,
  description: "A request's ledger entry in the bound session, by its string id: state (accepted, started, completed, failed, lost), times, exit status, the result kept.",
  host: 'edge',
  concurrent: true,
  params: z.object({ requestId: z.string().min(1).max(256) }).strict(),
  result: commandEntrySchema,
});

export const commandList = defineMethod({
  name: 'command.list',
  readOnly: true,
  description: "The bound session's ledger entries accepted at or after `since` (epoch ms), oldest first.",
  host: 'edge',
  concurrent: true,
  params: z.object({ since: z.number().int().min(0).optional(), limit: z.number().int().min(1).max(10_000).optional() }).strict().optional(),
  result: z.object({ entries: z.array(commandEntrySchema), more: z.boolean() }),
});
