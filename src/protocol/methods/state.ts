import { z } from 'zod';
import { defineMethod } from '../method.js';

const key = z.string().min(1).max(512);

/** How deep a stored value may nest: deeper is refused, not kept (a 500 000-deep array costs tens of MiB in memory). */
export const STATE_MAX_DEPTH = 64;

/** Whether `value` nests deeper than `limit` (iterative: the value may be deeper than the stack). */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

const storedValue = z.unknown().refine((v) => !nestsDeeperThan(v, STATE_MAX_DEPTH), { message: `the value nests deeper than ${STATE_MAX_DEPTH} levels; store it flatter` });
const ok = z.object({ ok: z.literal(true) });

export const stateGet = defineMethod({
  name: 'state.get',
  readOnly: true,
  description: "Read a key of the session's key-value state (null when absent).",
  params: z.object({ key }).strict(),
  result: z.object({ value: z.unknown() }),
});

export const stateSet = defineMethod({
  name: 'state.set',
  description: "Write a key of the session's key-value state; acknowledged once durable.",
  params: z.object({ key, value: storedValue }).strict(),
  result: ok,
});

export const stateDelete = defineMethod({
  name: 'state.delete',
  description: "Delete a key of the session's key-value state.",
  params: z.object({ key }).strict(),
  result: ok,
});

export const stateList = defineMethod({
  name: 'state.list',
  readOnly: true,
  description: "List the keys of the session's key-value state.",
  params: z.object({}).strict().optional(),
  result: z.object({ keys: z.array(z.string()) }),
});
