// What a command handler gets and returns.
import type { EnvironmentConfig } from '../config/schema.js';
import type { Attestation, ChildBoot } from '../protocol/internal.js';
import type { RequestId } from '../protocol/jsonrpc.js';
import type { ExecutorRef } from '../protocol/method.js';
import type { SessionDaemonClient } from '../bus/session-client.js';
import type { SessionContext } from './session-context.js';

export interface ExecutorEnv {
  boot: ChildBoot;
  environment: EnvironmentConfig;
  executor: ExecutorRef;
  sessions: SessionDaemonClient;
  /** Set where the environment's network is an allowlist: the proxy URL for a session's commands. */
  egress?: { proxyUrl(sessionId: string): Promise<string> };
  /** Tell the supervisor about process groups we start, so it can reap them if we die. */
  trackProcessGroup(op: 'add' | 'remove', pgid: number): void;
  /** The latest self-check of a confined executor's isolation (null until the first one). */
  attestation: Attestation | null;
}

export interface CommandContext {
  env: ExecutorEnv;
  session: SessionContext;
  requestId: RequestId | null;
  /** Sends a notification to the client that made this request. */
  notify(method: string, params: unknown): void;
  /**
   * Listens for the edge pausing (true) and resuming (false) this request's notifications
   * because its client is not reading; returns the function that stops listening.
   */
  onFlow(handler: (paused: boolean) => void): () => void;
}

export type CommandHandler = (params: never, ctx: CommandContext) => unknown;
