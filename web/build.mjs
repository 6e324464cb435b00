// Builds the dashboard front end into dist/web: one bundled, minified ES module and the
// stylesheet under dist/web/assets, and index.html. Run by `npm run build` (so by `npm ci`).
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(here, '../dist/web');
fs.rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: [path.join(here, 'src/main.tsx')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  sourcemap: true,
  outfile: path.join(out, 'assets/app.js'),
  logLevel: 'warning',
});
fs.copyFileSync(path.join(here, 'styles.css'), path.join(out, 'assets/app.css'));
fs.copyFileSync(path.join(here, 'index.html'), path.join(out, 'index.html'));
