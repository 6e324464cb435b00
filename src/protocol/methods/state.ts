import { z } from 'zod';
import { defineMethod } from '../method.js';

const key = z.string().min(1).max(512);
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
  params: z.object({ key, value: z.unknown() }).strict(),
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
