import { z } from 'zod';
import { defineMethod, executorRefSchema } from '../method.js';

export const processInfo = defineMethod({
  name: 'process.info',
  readOnly: true,
  description: 'What the executor process is: ids, sandbox profile and whether it is enforced, limits, namespaces.',
  concurrent: true,
  params: z.object({}).strict().optional(),
  result: z.object({
    pid: z.number().int(),
    uid: z.number().int(),
    gid: z.number().int(),
    environment: z.string(),
    executor: executorRefSchema,
    sandbox: z.object({
      profile: z.record(z.string(), z.unknown()),
      enforced: z.boolean(),
      /** `bubblewrap`, `none` (confined profile, nothing to enforce it with) or `unconfined by profile`. */
      mechanism: z.string().optional(),
      warnings: z.array(z.string()),
      /** The executor's latest self-check from the inside (confined executors). */
      attestation: z.object({ ok: z.boolean(), at: z.number(), checks: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string() })) }).nullable().optional(),
    }),
    limits: z.record(z.string(), z.unknown()),
    namespaces: z.record(z.string(), z.object({ id: z.string(), sharedWithSupervisor: z.boolean() })),
  }),
});
