import { z } from 'zod';
import { defineMethod } from '../method.js';

const path = z.string().min(1).max(4096);
const encoding = z.enum(['utf8', 'base64']);
const fileType = z.enum(['file', 'directory', 'symlink', 'other']);

export const fsRead = defineMethod({
  name: 'fs.read',
  readOnly: true,
  description: 'Read a file of the session workspace.',
  params: z.object({ path, encoding: encoding.optional() }).strict(),
  result: z.object({ content: z.string(), encoding, bytes: z.number().int() }),
});

export const fsWrite = defineMethod({
  name: 'fs.write',
  description: 'Write a file of the session workspace, creating parent folders.',
  params: z.object({ path, content: z.string(), encoding: encoding.optional() }).strict(),
  result: z.object({ ok: z.literal(true), bytes: z.number().int() }),
});

export const fsEntrySchema = z.object({ name: z.string(), type: fileType, size: z.number(), mtimeMs: z.number() });

export const fsList = defineMethod({
  name: 'fs.list',
  readOnly: true,
  description: 'List a folder of the session workspace (its root when no path is given).',
  params: z.object({ path: path.optional() }).strict().optional(),
  result: z.object({ entries: z.array(fsEntrySchema) }),
});

export const fsStat = defineMethod({
  name: 'fs.stat',
  readOnly: true,
  description: 'Type, size, mode and times of a path in the session workspace.',
  params: z.object({ path }).strict(),
  result: z.object({ type: fileType, size: z.number(), mode: z.number().int(), mtimeMs: z.number(), ctimeMs: z.number() }),
});

export const fsDelete = defineMethod({
  name: 'fs.delete',
  description: 'Delete a file or folder (recursively) of the session workspace.',
  params: z.object({ path }).strict(),
  result: z.object({ ok: z.literal(true) }),
});
