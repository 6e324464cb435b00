// A small line chart of one figure over the chart window (SVG, no library).
import type { Sample } from '../../../src/protocol/dashboard.js';

interface Props {
  points: Sample[] | undefined;
  /** Which figure of a sample: 1 = CPU %, 2 = RSS bytes. */
  field: 1 | 2;
  windowMs: number;
  /** The scale's top is at least this (so 0.2 % CPU doesn't fill the chart); else a bit above the peak. */
  floor?: number;
  label: string;
}

const W = 96;
const H = 24;

export function Sparkline({ points, field, windowMs, floor = 0, label }: Props) {
  if (!points || points.length < 2) return <svg class="spark" width={W} height={H} role="img" aria-label={`${label}: not enough samples yet`} />;
  // The x axis spans the samples there are, up to the window (at least a minute), so a young
  // process's chart isn't a sliver at the right edge.
  const end = points[points.length - 1]![0];
  const span = Math.min(windowMs, Math.max(20_000, end - points[0]![0]));
  const start = end - span;
  const top = Math.max(floor, 1.2 * Math.max(...points.map((p) => p[field]))) || 1;
  const xy = points.filter((p) => p[0] >= start).map((p) => `${(((p[0] - start) / span) * W).toFixed(1)},${(H - 1 - (p[field] / top) * (H - 2)).toFixed(1)}`);
  return (
    <svg class="spark" width={W} height={H} viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label}>
      <polyline points={`${xy[0]!.split(',')[0]},${H} ${xy.join(' ')} ${xy[xy.length - 1]!.split(',')[0]},${H}`} class="spark-fill" />
      <polyline points={xy.join(' ')} class="spark-line" />
    </svg>
  );
}
