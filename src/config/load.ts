import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { defaultEnvironments } from './defaults.js';
import { configSchema, environmentSchema, type Config, type EnvironmentConfig } from './schema.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function describeIssues(source: string, prefix: (string | number)[], error: z.ZodError): string {
  const lines = error.issues.map((issue) => {
    const path = [...prefix, ...issue.path].reduce<string>(
      (acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)),
      '',
    );
    return `  ${path || '(root)'}: ${issue.message}`;
  });
  return `invalid config ${source}:\n${lines.join('\n')}`;
}

/** Validates a parsed config object; the error names every bad field with its path. */
export function resolveConfig(raw: unknown, source = '(inline)'): Config {
  const top = configSchema.safeParse(raw ?? {});
  if (!top.success) throw new ConfigError(describeIssues(source, [], top.error));
  const merged = new Map<string, Record<string, unknown>>(defaultEnvironments.map((e) => [e.name, { ...e } as Record<string, unknown>]));
  const seen = new Set<string>();
  top.data.environments.forEach((entry, index) => {
    const name = entry.name;
    if (typeof name !== 'string') {
      throw new ConfigError(`invalid config ${source}:\n  environments[${index}].name: every environment needs a name`);
    }
    if (seen.has(name)) throw new ConfigError(`invalid config ${source}:\n  environments[${index}].name: "${name}" is listed twice; give each environment one entry`);
    seen.add(name);
    if (entry.sandbox === null) throw new ConfigError(`invalid config ${source}:\n  environments[${index}].sandbox: must be an object (leave it out for the default)`);
    const base = merged.get(name);
    const sandbox = base && entry.sandbox && typeof entry.sandbox === 'object'
      ? { ...(base.sandbox as object), ...(entry.sandbox as object) }
      : (entry.sandbox ?? base?.sandbox);
    merged.set(name, { ...base, ...entry, ...(sandbox === undefined ? {} : { sandbox }) });
  });
  const environments: EnvironmentConfig[] = [];
  for (const entry of merged.values()) {
    const parsed = environmentSchema.safeParse(entry);
    if (!parsed.success) {
      const at = top.data.environments.findIndex((e) => e.name === entry.name);
      throw new ConfigError(describeIssues(source, at >= 0 ? ['environments', at] : ['defaults', entry.name as string], parsed.error));
    }
    if (parsed.data.enabled) environments.push(parsed.data);
  }
  if (environments.length === 0) throw new ConfigError(`invalid config ${source}: every environment is disabled; enable at least one`);
  if (top.data.limits.frameSoftBytes > top.data.limits.frameHardBytes) {
    throw new ConfigError(`invalid config ${source}:\n  limits.frameSoftBytes: must not exceed limits.frameHardBytes`);
  }
  return { ...top.data, environments };
}

export function loadConfig(file?: string): Config {
  if (!file) return resolveConfig({});
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return resolveConfig(raw, file);
}
