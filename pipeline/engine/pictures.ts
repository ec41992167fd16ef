/**
 * Pictures of a build for people: the stage graph (DOT, or SVG) and the timeline of a build
 * (SVG). Written here rather than by Graphviz: a picture needs no host package, the same
 * build gives the same bytes, and the layouts are simple (layers by depth; lanes by job slot).
 */

export interface GraphNode {
  name: string;
  deps: readonly string[];
  key: string;
  cached: boolean;
}

export interface TimelineEntry {
  stage: string;
  /** Milliseconds since the build started. */
  startMs: number;
  endMs: number;
  cached: boolean;
  /** Taken from the remote stage cache instead of built. */
  pulled?: boolean;
  /** The job slot it ran in; cached stages take none. */
  slot?: number;
}

const COLORS = { cached: '#9ccc65', build: '#ffb74d', pulled: '#64b5f6', edge: '#607d8b', text: '#212121', grid: '#e0e0e0' } as const;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function graphDot(nodes: readonly GraphNode[], title: string): string {
  const lines = [`digraph "${title}" {`, '  rankdir=LR;', '  node [shape=box, style="rounded,filled", fontname="sans-serif"];'];
  for (const n of nodes) {
    lines.push(`  "${n.name}" [label="${n.name}\\n${n.key.slice(0, 12)}\\n${n.cached ? 'cached' : 'to build'}", fillcolor="${n.cached ? COLORS.cached : COLORS.build}"];`);
  }
  for (const n of nodes) for (const dep of n.deps) lines.push(`  "${dep}" -> "${n.name}";`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** Layers by depth (a stage sits one column right of its deepest dependency), dependencies left. */
export function graphSvg(nodes: readonly GraphNode[], title: string): string {
  const depth = new Map<string, number>();
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const depthOf = (name: string): number => {
    if (!depth.has(name)) depth.set(name, Math.max(-1, ...(byName.get(name)?.deps ?? []).filter((d) => byName.has(d)).map(depthOf)) + 1);
    return depth.get(name)!;
  };
  const columns: string[][] = [];
  for (const n of nodes) (columns[depthOf(n.name)] ??= []).push(n.name);
  const [w, h, gapX, gapY, top] = [150, 46, 60, 18, 40];
  const position = new Map<string, { x: number; y: number }>();
  columns.forEach((names, column) => names.forEach((name, row) => position.set(name, { x: 20 + column * (w + gapX), y: top + row * (h + gapY) })));
  const width = 40 + columns.length * (w + gapX) - gapX;
  const height = top + 20 + Math.max(...columns.map((c) => c.length)) * (h + gapY) - gapY;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="20" y="24" font-size="15" fill="${COLORS.text}">${escape(title)}</text>`,
  ];
  for (const n of nodes) {
    const to = position.get(n.name)!;
    for (const dep of n.deps) {
      const from = position.get(dep);
      if (!from) continue;
      const [x1, y1, x2, y2] = [from.x + w, from.y + h / 2, to.x, to.y + h / 2];
      parts.push(`<path d="M${x1},${y1} C${x1 + gapX / 2},${y1} ${x2 - gapX / 2},${y2} ${x2 - 6},${y2}" fill="none" stroke="${COLORS.edge}"/>`);
      parts.push(`<path d="M${x2 - 6},${y2 - 4} L${x2},${y2} L${x2 - 6},${y2 + 4} z" fill="${COLORS.edge}"/>`);
    }
  }
  for (const n of nodes) {
    const { x, y } = position.get(n.name)!;
    parts.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="8" fill="${n.cached ? COLORS.cached : COLORS.build}" stroke="${COLORS.edge}"/>`);
    parts.push(`<text x="${x + w / 2}" y="${y + 19}" text-anchor="middle" fill="${COLORS.text}" font-weight="bold">${escape(n.name)}</text>`);
    parts.push(`<text x="${x + w / 2}" y="${y + 36}" text-anchor="middle" fill="${COLORS.text}">${n.key.slice(0, 12)} · ${n.cached ? 'cached' : 'to build'}</text>`);
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** Stages as bars over time, one lane per job slot and one for what came from the cache. */
export function timelineSvg(entries: readonly TimelineEntry[], title: string, jobs: number): string {
  const totalMs = Math.max(1, ...entries.map((e) => e.endMs));
  const [left, laneH, top, plotW] = [110, 34, 50, 900];
  const lanes = jobs + 1;
  const width = left + plotW + 30;
  const height = top + lanes * laneH + 40;
  const x = (ms: number) => left + (ms / totalMs) * plotW;
  const laneY = (e: TimelineEntry) => top + (e.cached ? jobs : e.slot!) * laneH;
  const step = niceStep(totalMs / 1000);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="24" font-size="15" fill="${COLORS.text}">${escape(title)} — ${formatSeconds(totalMs / 1000)}</text>`,
  ];
  for (let s = 0; s * 1000 <= totalMs; s += step) {
    parts.push(`<line x1="${x(s * 1000)}" y1="${top - 6}" x2="${x(s * 1000)}" y2="${top + lanes * laneH}" stroke="${COLORS.grid}"/>`);
    parts.push(`<text x="${x(s * 1000)}" y="${top + lanes * laneH + 16}" text-anchor="middle" fill="${COLORS.edge}">${formatSeconds(s)}</text>`);
  }
  for (let lane = 0; lane < lanes; lane++) {
    parts.push(`<text x="10" y="${top + lane * laneH + 21}" fill="${COLORS.text}">${lane < jobs ? `job slot ${lane + 1}` : 'from the cache'}</text>`);
  }
  for (const e of [...entries].sort((a, b) => a.startMs - b.startMs)) {
    const y = laneY(e) + 4;
    const barW = Math.max(3, x(e.endMs) - x(e.startMs));
    const took = formatSeconds((e.endMs - e.startMs) / 1000);
    parts.push(`<g><title>${escape(e.stage)}: ${e.cached ? 'cached' : e.pulled ? `pulled from the remote cache in ${took}` : `built in ${took}`}</title>`);
    parts.push(`<rect x="${x(e.startMs)}" y="${y}" width="${barW}" height="${laneH - 8}" rx="3" fill="${e.cached ? COLORS.cached : e.pulled ? COLORS.pulled : COLORS.build}" stroke="${COLORS.edge}"/>`);
    if (barW > 40) parts.push(`<text x="${x(e.startMs) + 4}" y="${y + 17}" fill="${COLORS.text}">${escape(e.stage)}</text>`);
    parts.push('</g>');
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function niceStep(seconds: number): number {
  return [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600].find((s) => seconds / s <= 12) ?? 7200;
}

export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return s === 0 ? `${m} min` : `${m} min ${String(s).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}
