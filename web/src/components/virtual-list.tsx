// A list that renders only the rows in view (fixed row height), so tens of thousands of
// lines cost the page what a screenful does. Sticks to the bottom while the reader is there.
import type { ComponentChildren } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';

interface Props<T> {
  items: readonly T[];
  rowHeight: number;
  /** Changes whenever items change (the array may be mutated in place). */
  version: number;
  render: (item: T, index: number) => ComponentChildren;
  follow: boolean;
  onFollowChange?: (follow: boolean) => void;
}

const OVERSCAN = 10;

export function VirtualList<T>({ items, rowHeight, version, render, follow, onFollowChange }: Props<T>) {
  const box = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(400);

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const resize = new ResizeObserver(() => setHeight(el.clientHeight));
    resize.observe(el);
    return () => resize.disconnect();
  }, []);

  useLayoutEffect(() => {
    const el = box.current;
    if (el && follow) {
      el.scrollTop = el.scrollHeight;
      setScrollTop(el.scrollTop);
    }
  }, [version, follow, height]);

  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - OVERSCAN);
  const last = Math.min(items.length, Math.ceil((scrollTop + height) / rowHeight) + OVERSCAN);
  const rows = [];
  for (let i = first; i < last; i++) {
    rows.push(
      <div class="vrow" key={i} style={{ top: `${i * rowHeight}px`, height: `${rowHeight}px` }}>
        {render(items[i]!, i)}
      </div>,
    );
  }
  return (
    <div
      class="vlist"
      ref={box}
      onScroll={(e) => {
        const el = e.currentTarget;
        setScrollTop(el.scrollTop);
        const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < rowHeight * 2;
        if (atBottom !== follow) onFollowChange?.(atBottom);
      }}
    >
      <div class="vlist-inner" style={{ height: `${items.length * rowHeight}px` }}>
        {rows}
      </div>
    </div>
  );
}
