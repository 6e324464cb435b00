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
    sandbox: z.object({ profile: z.record(z.string(), z.unknown()), enforced: z.boolean(), warnings: z.array(z.string()) }),
    limits: z.record(z.string(), z.unknown()),
    namespaces: z.record(z.string(), z.object({ id: z.string(), sharedWithSupervisor: z.boolean() })),
  }),
});
