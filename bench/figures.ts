// What the phases measure, kept for the summary table.
import type { LoadResult, SequentialResult } from './load.js';

export interface Figures {
  rawSeq: SequentialResult[];
  relaySeq: SequentialResult[];
  ctSeq: SequentialResult[];
  edgeSeq: SequentialResult[];
  execSeq: SequentialResult[];
  rawLoad: LoadResult[];
  relayLoad: LoadResult[];
  ctLoad: LoadResult[];
  spreadLoad?: LoadResult;
  coldBanner: number[];
  coldPing: number[];
  restart: number[];
  restartPaced: number[];
  sessionsCreated?: number;
  rss10k?: number;
  rssOpen?: number;
  openConnections?: number;
  /** Throughput with the command ledger on and off, per workload. */
  ledger: { workload: string; on: number; off: number; ratio: number }[];
}

/** Share of a core other processes used during each measurement, in the same order as the figures. */
export const N: Record<'rawSeq' | 'relaySeq' | 'ctSeq' | 'edgeSeq' | 'execSeq' | 'rawLoad' | 'relayLoad' | 'ctLoad', number[]> = { rawSeq: [], relaySeq: [], ctSeq: [], edgeSeq: [], execSeq: [], rawLoad: [], relayLoad: [], ctLoad: [] };

export const F: Figures = { rawSeq: [], relaySeq: [], ctSeq: [], edgeSeq: [], execSeq: [], rawLoad: [], relayLoad: [], ctLoad: [], coldBanner: [], coldPing: [], restart: [], restartPaced: [], ledger: [] };
