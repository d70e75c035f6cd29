/**
 * A line chart as a standalone SVG document (no dependencies): numeric x and y series on shared
 * axes, with labelled vertical markers (phases of a run). Used by `npm run load` for memory over time.
 */

/** One line of the chart. */
export interface ChartSeries {
  name: string;
  color: string;
  points: Array<[x: number, y: number]>;
}

/** What {@link lineChartSvg} draws. */
export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  /** Vertical lines at x with a label (e.g. where a phase starts). */
  markers?: Array<{ x: number; label: string }>;
  width?: number;
  height?: number;
}

const esc = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** Round ticks (steps of 1, 2, 5 × 10^k), about `count` of them, from 0 to the first one ≥ max. */
function ticks(max: number, count: number): number[] {
  if (!(max > 0)) return [0];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out = [0];
  while (out[out.length - 1]! < max) out.push(+(out.length * step).toPrecision(12));
  return out;
}

/** Renders the chart. Axes start at 0; the y axis leaves 10 % headroom above the highest point. */
export function lineChartSvg(o: LineChartOptions): string {
  const width = o.width ?? 900;
  const height = o.height ?? 420;
  const m = { left: 70, right: 20, top: 40, bottom: 70 };
  const all = o.series.flatMap((s) => s.points);
  const xMax = Math.max(1e-9, ...all.map((p) => p[0]), ...(o.markers ?? []).map((k) => k.x));
  const yTicks = ticks(Math.max(1e-9, ...all.map((p) => p[1])) * 1.1, 6);
  const yMax = yTicks[yTicks.length - 1]!;
  const xTicks = ticks(xMax, 10);
  const xEnd = Math.max(xMax, xTicks[xTicks.length - 1]!);
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const X = (x: number) => (m.left + (x / xEnd) * w).toFixed(1);
  const Y = (y: number) => (m.top + h - (y / yMax) * h).toFixed(1);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${esc(o.title)}</title>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`,
  ];
  for (const t of yTicks)
    parts.push(
      `<line x1="${m.left}" x2="${width - m.right}" y1="${Y(t)}" y2="${Y(t)}" stroke="#e5e5e5"/>`,
      `<text x="${m.left - 6}" y="${Y(t)}" text-anchor="end" dominant-baseline="middle">${t}</text>`,
    );
  for (const t of xTicks)
    parts.push(
      `<text x="${X(t)}" y="${m.top + h + 16}" text-anchor="middle">${t}</text>`,
      `<line x1="${X(t)}" x2="${X(t)}" y1="${m.top + h}" y2="${m.top + h + 4}" stroke="#333"/>`,
    );
  parts.push(
    `<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + h}" stroke="#333"/>`,
    `<line x1="${m.left}" x2="${width - m.right}" y1="${m.top + h}" y2="${m.top + h}" stroke="#333"/>`,
    `<text x="${m.left + w / 2}" y="${m.top + h + 34}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text transform="translate(18 ${m.top + h / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  // Marker labels on alternating rows, so that markers close together stay readable.
  for (const [i, k] of (o.markers ?? []).entries())
    parts.push(
      `<line x1="${X(k.x)}" x2="${X(k.x)}" y1="${m.top}" y2="${m.top + h}" stroke="#999" stroke-dasharray="4 3"/>`,
      `<text x="${Number(X(k.x)) + 3}" y="${m.top + 12 + (i % 3) * 14}" fill="#555">${esc(k.label)}</text>`,
    );
  o.series.forEach((s, i) => {
    const pts = s.points.map(([x, y]) => `${X(x)},${Y(y)}`).join(' ');
    parts.push(
      `<polyline data-series="${esc(s.name)}" fill="none" stroke="${esc(s.color)}" stroke-width="2" points="${pts}"/>`,
      `<rect x="${m.left + 10 + i * 200}" y="${height - 22}" width="14" height="4" fill="${esc(s.color)}"/>`,
      `<text x="${m.left + 30 + i * 200}" y="${height - 17}">${esc(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
