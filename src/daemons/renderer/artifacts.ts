// A session's artifacts (<home>/artifacts/<sessionId>/, e.g. the browser daemon's
// screenshots): listed in the session's detail and served to the logged-in page.
import fs from 'node:fs';
import path from 'node:path';
import type { ArtifactEntry } from '../../protocol/dashboard.js';
import { SESSION_ID_PATTERN } from '../../protocol/method.js';

const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;
const MAX_LISTED = 200;
const TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.txt': 'text/plain; charset=utf-8', '.json': 'application/json' };

export class Artifacts {
  constructor(private readonly root: string) {}

  list(sessionId: string): ArtifactEntry[] {
    if (!SESSION_ID_PATTERN.test(sessionId)) return [];
    const dir = path.join(this.root, sessionId);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return [];
    }
    const out: ArtifactEntry[] = [];
    for (const name of names) {
      if (!NAME.test(name)) continue;
      const st = fs.lstatSync(path.join(dir, name), { throwIfNoEntry: false });
      if (!st?.isFile()) continue;
      out.push({ name, bytes: st.size, mtimeMs: st.mtimeMs, url: `/artifacts/${encodeURIComponent(sessionId)}/${encodeURIComponent(name)}` });
    }
    return out.sort((a, b) => b.mtimeMs - a.mtimeMs).slice(0, MAX_LISTED);
  }

  /** The file behind `/artifacts/<sessionId>/<name>`, if it is a plain file there (no links, no dot-dot). */
  open(sessionId: string, name: string): { file: string; type: string; bytes: number } | undefined {
    if (!SESSION_ID_PATTERN.test(sessionId) || !NAME.test(name)) return undefined;
    const file = path.join(this.root, sessionId, name);
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!st?.isFile()) return undefined;
    return { file, type: TYPES[path.extname(name).toLowerCase()] ?? 'application/octet-stream', bytes: st.size };
  }
}
