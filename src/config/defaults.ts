// The five environments of DESIGN.md. Limits are sized for a 2-core machine.
import type { z } from 'zod';
import { commandNamespaces } from '../protocol/methods/index.js';
import type { environmentSchema } from './schema.js';

const MiB = 1024 * 1024;
const aiApiHosts = ['api.anthropic.com:443', 'api.openai.com:443', 'generativelanguage.googleapis.com:443'];

type EnvironmentInput = z.input<typeof environmentSchema>;

// browser.* (headless Chromium) is for the human console and for AI callers; local operations
// and remote machines have no use for it, so their policies leave it out unless configured.
const withoutBrowser = commandNamespaces.filter((ns) => ns !== 'browser');

export const defaultEnvironments: readonly EnvironmentInput[] = [
  {
    name: 'browser',
    sandbox: { isolation: 'confined', memory: 512 * MiB, cpu: 0.5, pids: 128, network: 'none' },
  },
  {
    name: 'server',
    commands: withoutBrowser,
    sandbox: { isolation: 'none', network: 'host', seccomp: false },
  },
  {
    name: 'remote',
    commands: withoutBrowser,
    sandbox: { isolation: 'confined', memory: 512 * MiB, cpu: 0.5, pids: 128, network: 'none' },
  },
  {
    name: 'agent',
    sandbox: { isolation: 'confined', memory: 512 * MiB, cpu: 0.5, pids: 256, network: { allow: aiApiHosts } },
  },
  {
    name: 'persona',
    sandbox: { isolation: 'confined', memory: 512 * MiB, cpu: 0.5, pids: 128, network: { allow: aiApiHosts } },
  },
];
