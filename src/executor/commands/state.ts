import type { CommandContext } from '../command.js';

export function get(params: { key: string }, ctx: CommandContext) {
  const value = ctx.session.kv.get(params.key);
  return { value: value === undefined ? null : value };
}

/** Acknowledged only once the session daemon has it on disk. */
export async function set(params: { key: string; value: unknown }, ctx: CommandContext) {
  const value = params.value === undefined ? null : params.value;
  await ctx.env.sessions.call('state.set', { sessionId: ctx.session.sessionId, key: params.key, value });
  ctx.session.setKv(params.key, value);
  return { ok: true as const };
}

export async function remove(params: { key: string }, ctx: CommandContext) {
  await ctx.env.sessions.call('state.delete', { sessionId: ctx.session.sessionId, key: params.key });
  ctx.session.deleteKv(params.key);
  return { ok: true as const };
}

export function list(_params: unknown, ctx: CommandContext) {
  return { keys: [...ctx.session.kv.keys()].sort() };
}
