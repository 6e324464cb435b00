import { z } from 'zod';
import { defineMethod } from '../method.js';

const MAX_SOURCE = 1024 * 1024;

export const renderHtml = defineMethod({
  name: 'render.html',
  description: 'Render markdown, or a logic-less (Mustache) template with data, to sanitised HTML (no scripts, no event handlers, no javascript: URLs).',
  params: z.union([
    z.object({ markdown: z.string().max(MAX_SOURCE) }).strict(),
    z.object({ template: z.string().max(MAX_SOURCE), data: z.record(z.string(), z.unknown()).default({}) }).strict(),
  ]),
  result: z.object({ html: z.string() }),
  host: 'renderer-daemon',
  concurrent: true,
});
