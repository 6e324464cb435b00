// A method is declared once: name, schemas, who serves it. Edge, executor, SDK and CLI
// all import the same descriptor, so a name or a shape can't drift between them.
import { z } from 'zod';
import { ContinuumError } from './errors.js';

/**
 * Who serves a method: the edge itself, the session's executor, or a system daemon that
 * serves a namespace for every environment (the edge routes there by this field).
 */
export type MethodHost = 'edge' | 'executor' | 'renderer-daemon' | 'browser-daemon';

export interface MethodDescriptor<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly namespace: string;
  readonly description: string;
  readonly params: P;
  readonly result: R;
  readonly host: MethodHost;
  /** Runs at once instead of queueing behind the session's earlier commands. */
  readonly concurrent: boolean;
  /**
   * Changes nothing: not kept in the command ledger, since running it again is the same as
   * running it once, and there is no effect to lose or to repeat.
   */
  readonly readOnly: boolean;
}

export type ParamsOf<M> = M extends MethodDescriptor<infer P, z.ZodType> ? z.input<P> : never;
export type ResultOf<M> = M extends MethodDescriptor<z.ZodType, infer R> ? z.output<R> : never;

export function defineMethod<P extends z.ZodType, R extends z.ZodType>(spec: {
  name: string;
  description: string;
  params: P;
  result: R;
  host?: MethodHost;
  concurrent?: boolean;
  readOnly?: boolean;
}): MethodDescriptor<P, R> {
  const dot = spec.name.indexOf('.');
  return Object.freeze({
    name: spec.name,
    namespace: spec.name.slice(0, dot),
    description: spec.description,
    params: spec.params,
    result: spec.result,
    host: spec.host ?? 'executor',
    concurrent: spec.concurrent ?? false,
    readOnly: spec.readOnly ?? false,
  });
}

/** `z.object({})` that also accepts an absent params member. */
export const noParams = z.object({}).strict().optional();

// `.` and `..` match the character set but name directories other than a session's own.
export const SESSION_ID_PATTERN = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,128}$/;
export const sessionIdSchema = z
  .string()
  .regex(SESSION_ID_PATTERN, 'session ids are 1-128 characters of [A-Za-z0-9._-], and not "." or ".."');

export const executorRefSchema = z.object({ id: z.string(), pid: z.number().int() });
export type ExecutorRef = z.infer<typeof executorRefSchema>;

/** Structural view of a descriptor, for APIs generic over methods. */
export type MethodDescriptorLike = MethodDescriptor<z.ZodType, z.ZodType>;

/** The params of a call, checked against the method's schema (-32602 listing every issue). */
export function parseParams<M extends MethodDescriptor>(method: M, raw: unknown): z.output<M['params']> {
  const parsed = method.params.safeParse(raw);
  if (parsed.success) return parsed.data as z.output<M['params']>;
  const issues = parsed.error.issues.map((i) => ({ path: i.path, message: i.message }));
  throw new ContinuumError('INVALID_PARAMS', `invalid params for ${method.name}: ${issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; ')}`, { issues });
}
