import { z } from 'zod';
import { methods } from '../../protocol/methods/index.js';
import type { MethodDescriptor } from '../../protocol/method.js';
import type { CommandContext, ExecutorEnv } from '../command.js';

export function ping(_params: unknown, ctx: CommandContext) {
  return { pong: true as const, environment: ctx.env.environment.name, executor: ctx.env.executor, time: Date.now() };
}

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  // Top-level optional params are "may be omitted"; JSON Schema describes the object itself.
  const inner = schema instanceof z.ZodOptional ? (schema.unwrap() as z.ZodType) : schema;
  return z.toJSONSchema(inner, { io, unrepresentable: 'any' }) as Record<string, unknown>;
}

let cached: unknown[] | undefined;

export function allowedMethods(env: ExecutorEnv): MethodDescriptor[] {
  const allowed = new Set(env.environment.commands);
  return methods.filter((m) => m.namespace === 'session' || allowed.has(m.namespace));
}

export function commands(_params: unknown, ctx: CommandContext) {
  cached ??= allowedMethods(ctx.env).map((m) => ({
    name: m.name,
    description: m.description,
    params: schemaOf(m.params, 'input'),
    result: schemaOf(m.result, 'output'),
  }));
  return cached;
}
