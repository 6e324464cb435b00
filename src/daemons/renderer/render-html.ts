// render.html: markdown or a Mustache template with data → HTML that is safe to insert into
// a page. Templates are logic-less (no code runs) and escape by default; the sanitiser then
// removes whatever could script the page (tags, handlers, URLs), whatever the source said.
import { marked } from 'marked';
import Mustache from 'mustache';
import sanitizeHtml from 'sanitize-html';
import type { ParamsOf, ResultOf } from '../../protocol/method.js';
import type { renderHtml as RenderHtml } from '../../protocol/methods/render.js';
import { ContinuumError } from '../../protocol/errors.js';

const allowed: sanitizeHtml.IOptions = {
  allowedTags: [...sanitizeHtml.defaults.allowedTags, 'img', 'h1', 'h2', 'del', 'input'],
  allowedAttributes: {
    ...sanitizeHtml.defaults.allowedAttributes,
    img: ['src', 'alt', 'title', 'width', 'height'],
    input: ['type', 'checked', 'disabled'],
    '*': ['class', 'id'],
  },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedSchemesByTag: { img: ['http', 'https', 'data'] },
};

export function renderHtml(params: ParamsOf<typeof RenderHtml>): ResultOf<typeof RenderHtml> {
  let raw: string;
  if ('markdown' in params) {
    raw = marked.parse(params.markdown, { async: false, gfm: true });
  } else {
    try {
      raw = Mustache.render(params.template, params.data ?? {});
    } catch (err) {
      throw new ContinuumError('INVALID_PARAMS', `invalid template: ${(err as Error).message}`);
    }
  }
  return { html: sanitizeHtml(raw, allowed) };
}
