// Dependency-free SVG charts for benchmark and evaluation reports: a line chart (several series, optional log-scale
// axes) and a grouped bar chart. Pure functions: data in, an SVG document string out (no DOM, no fonts to load).

export interface Series {
  name: string;
  points: Array<[number, number]>;
  /** CSS colour; defaults to the palette entry for the series index. */
  color?: string;
  /** Draw markers only (a scatter), no connecting line. */
  markersOnly?: boolean;
}

export interface LineChartOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  logX?: boolean;
  logY?: boolean;
  width?: number;
  height?: number;
  /** Force axis ranges (data units); otherwise taken from the data (with a little padding on linear axes). */
  xRange?: [number, number];
  yRange?: [number, number];
  /** x ticks at these data values with these labels (e.g. the measured sizes as "16K"), instead of computed ones. */
  xTicks?: Array<[number, string]>;
}

export interface BarChartOptions {
  title?: string;
  yLabel?: string;
  width?: number;
  height?: number;
  /** Force the y range (linear, starts at 0 by default). */
  yRange?: [number, number];
  /** Print each bar's value above it. */
  showValues?: boolean;
}

export interface BarGroup {
  label: string;
  /** One value per series name (same order as `seriesNames`); NaN draws no bar. */
  values: number[];
}

/** Colour-blind-friendly palette (Okabe-Ito). */
export const palette = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];

const margin = { left: 64, right: 16, top: 36, bottom: 48 };
/** Room for the legend: wide enough for the longest name (≈7 px a character at font-size 12). */
const legendWidthFor = (names: string[]): number => Math.max(110, 36 + 7 * Math.max(0, ...names.map((n) => n.length)));

/** Escape text for XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Compact number formatting for tick labels (no trailing zeros, exponent for extremes). */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0).replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

/** "Nice" linear ticks (1, 2, 5 × 10^k steps) covering [lo, hi], about `count` of them. */
export function linearTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  // The 1-2-5 step nearest to the raw step (in ratio), so the tick count stays close to `count`.
  const step = [1, 2, 5, 10].map((m) => m * mag).reduce((a, b) => (Math.abs(Math.log(b / raw)) < Math.abs(Math.log(a / raw)) ? b : a));
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

/** Ticks at powers of ten inside [lo, hi] (both > 0); adds 2× and 5× when the range spans under two decades. */
export function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  const few = Math.log10(hi / lo) < 2;
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of few ? [1, 2, 5] : [1]) {
      const t = m * 10 ** e;
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks.push(Number(t.toPrecision(12)));
    }
  }
  return ticks.length ? ticks : [lo, hi];
}

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
  ticks: number[];
}

function makeAxis(values: number[], log: boolean, forced?: [number, number]): Axis {
  let vs = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  if (!vs.length) vs = log ? [1, 10] : [0, 1];
  let lo = forced ? forced[0] : Math.min(...vs);
  let hi = forced ? forced[1] : Math.max(...vs);
  if (lo === hi) {
    if (log) { lo /= 2; hi *= 2; } else { lo -= lo === 0 ? 1 : Math.abs(lo) * 0.1; hi += hi === 0 ? 1 : Math.abs(hi) * 0.1; }
  }
  if (log) {
    // A little headroom in log space so the extreme markers do not sit on the frame.
    if (!forced) { const pad = (hi / lo) ** 0.03; lo /= pad; hi *= pad; }
    return { lo, hi, log, ticks: logTicks(lo, hi) };
  }
  if (!forced) {
    const pad = (hi - lo) * 0.05;
    lo = lo >= 0 && lo - pad < 0 ? 0 : lo - pad;
    hi += pad;
  }
  const ticks = linearTicks(lo, hi).filter((t) => t >= lo - 1e-12 && t <= hi + 1e-12);
  return { lo, hi, log, ticks };
}

/** Maps a data value onto [0, 1] along the axis. */
function unit(axis: Axis, v: number): number {
  if (axis.log) return (Math.log10(v) - Math.log10(axis.lo)) / (Math.log10(axis.hi) - Math.log10(axis.lo));
  return (v - axis.lo) / (axis.hi - axis.lo);
}

const f = (v: number) => (Math.round(v * 100) / 100).toString();

function frame(width: number, height: number, title?: string): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
  ];
  if (title) out.push(`<text x="${f(width / 2)}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(title)}</text>`);
  return out;
}

function legend(names: string[], colors: string[], x: number, y: number): string[] {
  const out = [`<g class="legend">`];
  names.forEach((name, i) => {
    const cy = y + i * 18;
    out.push(`<rect x="${f(x)}" y="${f(cy - 9)}" width="12" height="12" fill="${colors[i]}"/>`);
    out.push(`<text x="${f(x + 18)}" y="${f(cy + 1)}">${escapeXml(name)}</text>`);
  });
  out.push(`</g>`);
  return out;
}

/** A line chart: one polyline (with markers) per series, axes with ticks, labels and a legend on the right. */
export function lineChart(series: Series[], opts: LineChartOptions = {}): string {
  const legendWidth = legendWidthFor(series.map((s) => s.name));
  // opts.width sizes the chart with a 150 px legend; a longer legend widens the picture, not squeezes the plot.
  const width = (opts.width ?? 640) - 150 + legendWidth;
  const height = opts.height ?? 400;
  const plotW = width - margin.left - margin.right - legendWidth;
  const plotH = height - margin.top - margin.bottom;
  const x = makeAxis(series.flatMap((s) => s.points.map((p) => p[0])), !!opts.logX, opts.xRange);
  const y = makeAxis(series.flatMap((s) => s.points.map((p) => p[1])), !!opts.logY, opts.yRange);
  const px = (v: number) => margin.left + unit(x, v) * plotW;
  const py = (v: number) => margin.top + (1 - unit(y, v)) * plotH;
  const out = frame(width, height, opts.title);
  out.push(...axes(x, y, px, py, plotW, plotH, width, height, opts.xLabel, opts.yLabel, opts.xTicks));
  const colors = series.map((s, i) => s.color ?? palette[i % palette.length]);
  series.forEach((s, i) => {
    const pts = s.points
      .filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b) && (!x.log || a > 0) && (!y.log || b > 0))
      .map(([a, b]) => [px(a), py(b)] as const);
    out.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    if (!s.markersOnly && pts.length > 1) {
      out.push(`<polyline fill="none" stroke="${colors[i]}" stroke-width="2" points="${pts.map(([a, b]) => `${f(a)},${f(b)}`).join(' ')}"/>`);
    }
    for (const [a, b] of pts) out.push(`<circle cx="${f(a)}" cy="${f(b)}" r="${s.markersOnly ? 2.5 : 3}" fill="${colors[i]}"${s.markersOnly ? ' fill-opacity="0.7"' : ''}/>`);
    out.push(`</g>`);
  });
  out.push(...legend(series.map((s) => s.name), colors, width - legendWidth + 8, margin.top + 8));
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function axes(x: Axis, y: Axis, px: (v: number) => number, py: (v: number) => number, plotW: number, plotH: number,
  width: number, height: number, xLabel?: string, yLabel?: string, xTicks?: Array<[number, string]>): string[] {
  const out: string[] = [`<g class="axes" stroke="#333" fill="none">`];
  const x0 = margin.left, y0 = margin.top + plotH;
  out.push(`<rect x="${x0}" y="${margin.top}" width="${f(plotW)}" height="${f(plotH)}" stroke="#999"/>`);
  out.push(`</g>`, `<g class="ticks">`);
  const inside = (t: number) => t >= x.lo * (1 - 1e-9) && t <= x.hi * (1 + 1e-9) && (!x.log || t > 0);
  const xs = xTicks ? xTicks.filter(([t]) => inside(t)) : x.ticks.map((t) => [t, formatTick(t)] as [number, string]);
  for (const [t, label] of xs) {
    const tx = px(t);
    out.push(`<line x1="${f(tx)}" y1="${margin.top}" x2="${f(tx)}" y2="${f(y0)}" stroke="#eee"/>`);
    out.push(`<line x1="${f(tx)}" y1="${f(y0)}" x2="${f(tx)}" y2="${f(y0 + 5)}" stroke="#333"/>`);
    out.push(`<text x="${f(tx)}" y="${f(y0 + 18)}" text-anchor="middle">${escapeXml(label)}</text>`);
  }
  for (const t of y.ticks) {
    const ty = py(t);
    out.push(`<line x1="${x0}" y1="${f(ty)}" x2="${f(x0 + plotW)}" y2="${f(ty)}" stroke="#eee"/>`);
    out.push(`<line x1="${x0 - 5}" y1="${f(ty)}" x2="${x0}" y2="${f(ty)}" stroke="#333"/>`);
    out.push(`<text x="${x0 - 8}" y="${f(ty + 4)}" text-anchor="end">${escapeXml(formatTick(t))}</text>`);
  }
  out.push(`</g>`);
  if (xLabel) out.push(`<text x="${f(x0 + plotW / 2)}" y="${f(height - 10)}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  if (yLabel) {
    const cy = margin.top + plotH / 2;
    out.push(`<text x="16" y="${f(cy)}" text-anchor="middle" transform="rotate(-90 16 ${f(cy)})">${escapeXml(yLabel)}</text>`);
  }
  void width;
  return out;
}

/** A grouped bar chart: one group per label, one bar per series inside each group, legend on the right. */
export function barChart(groups: BarGroup[], seriesNames: string[], opts: BarChartOptions = {}): string {
  const legendWidth = legendWidthFor(seriesNames);
  const width = (opts.width ?? 640) - 150 + legendWidth;
  const height = opts.height ?? 400;
  const plotW = width - margin.left - margin.right - legendWidth;
  const plotH = height - margin.top - margin.bottom;
  const values = groups.flatMap((g) => g.values);
  const y = makeAxis([0, ...values], false, opts.yRange);
  if (!opts.yRange) { y.lo = Math.min(0, y.lo); y.ticks = linearTicks(y.lo, y.hi).filter((t) => t >= y.lo && t <= y.hi); }
  const py = (v: number) => margin.top + (1 - unit(y, v)) * plotH;
  const out = frame(width, height, opts.title);
  const x0 = margin.left, y0 = margin.top + plotH;
  out.push(`<rect x="${x0}" y="${margin.top}" width="${f(plotW)}" height="${f(plotH)}" stroke="#999" fill="none"/>`);
  out.push(`<g class="ticks">`);
  for (const t of y.ticks) {
    const ty = py(t);
    out.push(`<line x1="${x0}" y1="${f(ty)}" x2="${f(x0 + plotW)}" y2="${f(ty)}" stroke="#eee"/>`);
    out.push(`<text x="${x0 - 8}" y="${f(ty + 4)}" text-anchor="end">${escapeXml(formatTick(t))}</text>`);
  }
  out.push(`</g>`);
  const colors = seriesNames.map((_, i) => palette[i % palette.length]);
  const groupW = plotW / Math.max(1, groups.length);
  const barW = (groupW * 0.8) / Math.max(1, seriesNames.length);
  const base = py(Math.max(y.lo, Math.min(0, y.hi)));
  groups.forEach((g, gi) => {
    const gx = x0 + gi * groupW + groupW * 0.1;
    out.push(`<g class="group" data-label="${escapeXml(g.label)}">`);
    g.values.forEach((v, si) => {
      if (!Number.isFinite(v)) return;
      const top = py(v);
      const bx = gx + si * barW;
      out.push(`<rect x="${f(bx)}" y="${f(Math.min(top, base))}" width="${f(barW * 0.92)}" height="${f(Math.abs(base - top))}" fill="${colors[si]}"><title>${escapeXml(`${seriesNames[si]}: ${formatTick(v)}`)}</title></rect>`);
      if (opts.showValues) out.push(`<text x="${f(bx + barW * 0.46)}" y="${f(Math.min(top, base) - 3)}" text-anchor="middle" font-size="9">${escapeXml(formatTick(v))}</text>`);
    });
    out.push(`<text x="${f(x0 + (gi + 0.5) * groupW)}" y="${f(y0 + 18)}" text-anchor="middle">${escapeXml(g.label)}</text>`);
    out.push(`</g>`);
  });
  if (opts.yLabel) {
    const cy = margin.top + plotH / 2;
    out.push(`<text x="16" y="${f(cy)}" text-anchor="middle" transform="rotate(-90 16 ${f(cy)})">${escapeXml(opts.yLabel)}</text>`);
  }
  out.push(...legend(seriesNames, colors, width - legendWidth + 8, margin.top + 8));
  out.push('</svg>');
  return out.join('\n') + '\n';
}
