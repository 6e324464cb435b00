// The config file's schema. Every field has a default, so `{}` is a valid config and the
// five environments of DESIGN.md are what you get without one.
import { z } from 'zod';
import { commandNamespaces } from '../protocol/methods/index.js';
import { parseEgressRule } from './egress-rule.js';

const MiB = 1024 * 1024;

export const ENVIRONMENT_NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;

const hostRule = z.string().superRefine((rule, ctx) => {
  try {
    parseEgressRule(rule);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

export const sandboxSchema = z
  .object({
    /** Refuse to start the environment when the profile can't be enforced on this host. */
    strict: z.boolean().default(false),
    /** `none` runs the executor like any local process (the `server` environment). */
    isolation: z.enum(['none', 'confined']).default('confined'),
    memory: z.number().int().min(16 * MiB).optional().describe('bytes, no swap'),
    cpu: z.number().positive().max(256).optional().describe('share of one core'),
    pids: z.number().int().min(8).optional(),
    filesystem: z
      .object({
        readOnly: z.array(z.string().startsWith('/')).default([]),
        writable: z.array(z.string().startsWith('/')).default([]),
      })
      .strict()
      .default({ readOnly: [], writable: [] }),
    network: z.union([z.literal('none'), z.literal('host'), z.object({ allow: z.array(hostRule) }).strict()]).default('none'),
    seccomp: z.boolean().default(true),
  })
  .strict();
export type SandboxProfile = z.infer<typeof sandboxSchema>;

export const environmentSchema = z
  .object({
    name: z.string().regex(ENVIRONMENT_NAME_PATTERN, 'environment names are 1-32 characters of [a-z0-9-], starting with a letter'),
    enabled: z.boolean().default(true),
    replicas: z.number().int().min(1).max(64).default(1),
    sessionIdleMs: z.number().int().min(1000).default(24 * 3600_000),
    output: z
      .object({ maxBytes: z.number().int().min(1024).max(16 * MiB).default(MiB) })
      .strict()
      .default({ maxBytes: MiB }),
    commands: z
      .array(z.string().refine((ns) => commandNamespaces.includes(ns), { message: `known namespaces: ${commandNamespaces.join(', ')}` }))
      .default([...commandNamespaces]),
    shell: z
      .object({
        defaultTimeoutMs: z.number().int().positive().default(60_000),
        maxTimeoutMs: z.number().int().positive().default(3600_000),
      })
      .strict()
      .refine((s) => s.defaultTimeoutMs <= s.maxTimeoutMs, { message: 'defaultTimeoutMs must not exceed maxTimeoutMs', path: ['defaultTimeoutMs'] })
      .default({ defaultTimeoutMs: 60_000, maxTimeoutMs: 3600_000 }),
    sandbox: sandboxSchema.default(sandboxSchema.parse({})),
    /**
     * Keep a booted spare executor process per replica that takes over at once after a
     * crash (a fresh Node process needs ~100 ms to boot; a standby, a few ms).
     */
    standby: z.boolean().default(true),
    /** The command ledger's retention for this environment's sessions, and its copy of each result. */
    ledger: z
      .object({
        maxEntries: z.number().int().min(1).default(10_000).describe('per environment; the oldest finished entries go first'),
        maxAgeMs: z.number().int().min(1000).default(24 * 3600_000).describe('finished entries older than this go'),
        outputBytes: z.number().int().min(256).max(16 * MiB).default(64 * 1024).describe("cap of the result copy (shell.exec: of stdout and of stderr each); the cut is marked"),
      })
      .strict()
      .default({ maxEntries: 10_000, maxAgeMs: 24 * 3600_000, outputBytes: 64 * 1024 }),
  })
  .strict();
export type EnvironmentConfig = z.infer<typeof environmentSchema>;

export const configSchema = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(7070),
    limits: z
      .object({
        frameSoftBytes: z.number().int().min(1024).default(4 * MiB),
        frameHardBytes: z.number().int().min(1024).default(16 * MiB),
        maxInFlightPerConnection: z.number().int().min(1).default(64),
        defaultTimeoutMs: z.number().int().positive().default(30_000),
        /** Unread bytes at which a client's streamed output is paused at its source (resumed below half). */
        streamPauseBytes: z.number().int().min(16 * 1024).default(MiB),
        /** Unread bytes past which a client is closed with 1008. */
        maxUnreadBytes: z.number().int().min(1024 * 1024).default(64 * MiB),
      })
      .strict()
      .default({ frameSoftBytes: 4 * MiB, frameHardBytes: 16 * MiB, maxInFlightPerConnection: 64, defaultTimeoutMs: 30_000, streamPauseBytes: MiB, maxUnreadBytes: 64 * MiB }),
    restart: z
      .object({
        intensity: z.number().int().min(1).default(5).describe('restarts allowed within periodMs before the environment is marked failed'),
        periodMs: z.number().int().min(100).default(60_000),
        backoffInitialMs: z.number().int().min(0).default(100),
        backoffMaxMs: z.number().int().min(0).default(5_000),
        stableAfterMs: z.number().int().min(0).default(10_000),
      })
      .strict()
      .default({ intensity: 5, periodMs: 60_000, backoffInitialMs: 100, backoffMaxMs: 5_000, stableAfterMs: 10_000 }),
    heartbeat: z
      .object({ intervalMs: z.number().int().min(50).default(1_000), timeoutMs: z.number().int().min(100).default(3_000) })
      .strict()
      .default({ intervalMs: 1_000, timeoutMs: 3_000 }),
    logs: z
      .object({ maxBytes: z.number().int().min(4096).default(10 * MiB), maxFiles: z.number().int().min(1).max(100).default(5) })
      .strict()
      .default({ maxBytes: 10 * MiB, maxFiles: 5 }),
    /** The egress proxy (environments whose `sandbox.network` is an allowlist). */
    egress: z
      .object({
        maxConnectionsPerEnvironment: z.number().int().min(1).max(10_000).default(64).describe('open tunnels + forwarded requests'),
        connectTimeoutMs: z.number().int().min(100).default(10_000).describe('name resolution + TCP connect'),
        idleTimeoutMs: z.number().int().min(1_000).default(300_000),
        maxHeaderBytes: z.number().int().min(1024).max(1024 * 1024).default(16 * 1024),
      })
      .strict()
      .default({ maxConnectionsPerEnvironment: 64, connectTimeoutMs: 10_000, idleTimeoutMs: 300_000, maxHeaderBytes: 16 * 1024 }),
    /** `enabled: false` runs without the command ledger (a baseline for the bench; no command.* answers). */
    ledger: z.object({ enabled: z.boolean().default(true) }).strict().default({ enabled: true }),
    /** Merged by name onto the five default environments; `enabled: false` removes one. */
    environments: z.array(z.record(z.string(), z.unknown())).default([]),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;
export type EgressLimits = RawConfig['egress'];
export interface Config extends Omit<RawConfig, 'environments'> {
  environments: EnvironmentConfig[];
}
