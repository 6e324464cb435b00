import { z } from 'zod';
import { defineMethod } from '../method.js';

export const shellExec = defineMethod({
  name: 'shell.exec',
  description:
    "Run a command in the session's persistent shell (bash): the working directory and exported variables persist across calls, reconnects and executor restarts.",
  params: z.object({
    command: z.string().min(1).max(1_000_000),
    timeoutMs: z.number().int().positive().max(24 * 3600_000).optional(),
    stdin: z.string().max(16 * 1024 * 1024).optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'variable names are [A-Za-z_][A-Za-z0-9_]*'), z.string()).optional(),
    stream: z.boolean().optional(),
  }).strict(),
  result: z.object({
    exitCode: z.number().int().nullable(),
    signal: z.string().nullable(),
    stdout: z.string(),
    stderr: z.string(),
    cwd: z.string(),
    timedOut: z.boolean(),
    truncated: z.boolean(),
  }),
});

export const shellOutputSchema = z.object({
  requestId: z.union([z.string(), z.number()]).nullable(),
  stream: z.enum(['stdout', 'stderr']),
  data: z.string(),
});
export type ShellOutput = z.infer<typeof shellOutputSchema>;
