import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lineChart, barChart, linearTicks, logTicks } from '../../bench/svg';

/** Minimal XML well-formedness check: balanced tags, quoted attributes, only the five predefined entities. */
function parseXml(svg: string): { root: string; elements: Array<{ name: string; attrs: Record<string, string>; text: string }> } {
  const stack: string[] = [];
  const open: Array<{ text: string }> = [];
  const elements: Array<{ name: string; attrs: Record<string, string>; text: string }> = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  let root = '';
  let pos = 0;
  while (pos < svg.length) {
    re.lastIndex = pos;
    const m = re.exec(svg);
    if (!m) throw new Error(`malformed XML at ${pos}: ${svg.slice(pos, pos + 40)}`);
    pos = re.lastIndex;
    if (m[5] !== undefined) {
      const text = m[5];
      if (/&(?!(amp|lt|gt|quot|apos);)/.test(text)) throw new Error(`bad entity in ${text}`);
      if (stack.length) open[open.length - 1].text += text;
      else if (text.trim()) throw new Error(`text outside root: ${text}`);
      continue;
    }
    const [, close, name, attrText, selfClose] = m;
    if (close) {
      if (stack.pop() !== name) throw new Error(`unbalanced </${name}>`);
      open.pop();
      continue;
    }
    if (!root) root = name;
    else if (!stack.length) throw new Error('second root element');
    const attrs: Record<string, string> = {};
    for (const a of attrText.matchAll(/([\w:-]+)="([^"]*)"/g)) {
      if (a[1] in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      if (/&(?!(amp|lt|gt|quot|apos);)/.test(a[2])) throw new Error(`bad entity in attribute ${a[2]}`);
      attrs[a[1]] = a[2];
    }
    const el = { name, attrs, text: '' };
    elements.push(el);
    if (!selfClose) { stack.push(name); open.push(el); }
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  return { root, elements };
}

test('lineChart: well-formed SVG with one polyline per series, legend entries and escaped names', () => {
  const svg = lineChart(
    [
      { name: 'dense', points: [[1, 40], [2, 42], [4, 45]] },
      { name: 'magic<pig> & co', points: [[1, 30], [2, 38], [4, 44]] },
      { name: 'topk', points: [[1, 20], [4, 41]] },
    ],
    { title: 'score vs budget', xLabel: 'budget (%)', yLabel: 'ES', logX: true },
  );
  const { root, elements } = parseXml(svg);
  assert.equal(root, 'svg');
  const groups = elements.filter((e) => e.name === 'g' && e.attrs.class === 'series');
  assert.deepEqual(groups.map((g) => g.attrs['data-name']), ['dense', 'magic<pig> & co'.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'), 'topk']);
  assert.equal(elements.filter((e) => e.name === 'polyline').length, 3);
  assert.equal(elements.filter((e) => e.name === 'circle').length, 8);
  const texts = elements.filter((e) => e.name === 'text').map((e) => e.text);
  assert.ok(texts.includes('score vs budget') && texts.includes('budget (%)') && texts.includes('ES'));
  assert.ok(texts.includes('magic&lt;pig&gt; &amp; co'));
  // Every coordinate lands inside the canvas.
  for (const c of elements.filter((e) => e.name === 'circle')) {
    const cx = Number(c.attrs.cx), cy = Number(c.attrs.cy);
    assert.ok(cx >= 0 && cx <= 640 && cy >= 0 && cy <= 400, `${cx},${cy}`);
  }
});

test('lineChart: larger y is drawn higher, log axes place decades evenly', () => {
  const svg = lineChart([{ name: 's', points: [[1, 1], [10, 10], [100, 100]] }], { logX: true, logY: true });
  const { elements } = parseXml(svg);
  const pts = elements.filter((e) => e.name === 'circle').map((e) => [Number(e.attrs.cx), Number(e.attrs.cy)]);
  assert.ok(pts[0][1] > pts[1][1] && pts[1][1] > pts[2][1]);
  assert.ok(Math.abs((pts[1][0] - pts[0][0]) - (pts[2][0] - pts[1][0])) < 0.05);
  assert.ok(Math.abs((pts[0][1] - pts[1][1]) - (pts[1][1] - pts[2][1])) < 0.05);
});

test('lineChart: scatter series draw markers only; empty/degenerate data still gives a valid document', () => {
  const svg = lineChart([{ name: 'heads', points: [[0.5, 0.1], [1.5, 0.3]], markersOnly: true }, { name: 'none', points: [] }]);
  const { elements } = parseXml(svg);
  assert.equal(elements.filter((e) => e.name === 'polyline').length, 0);
  assert.equal(elements.filter((e) => e.name === 'circle').length, 2);
  parseXml(lineChart([{ name: 'flat', points: [[3, 3], [3, 3]] }], { logY: true }));
});

test('lineChart: explicit x ticks label the measured sizes, at the same place as the points', () => {
  const svg = lineChart([{ name: 's', points: [[16384, 5], [65536, 12], [131072, 18]] }],
    { logX: true, logY: true, xTicks: [[16384, '16K'], [65536, '64K'], [131072, '128K'], [1e9, 'off the axis']] });
  const { elements } = parseXml(svg);
  const labels = elements.filter((e) => e.name === 'text' && /K$|axis$/.test(e.text));
  assert.deepEqual(labels.map((e) => e.text), ['16K', '64K', '128K'], 'only ticks inside the axis, no computed ones');
  const cx = elements.filter((e) => e.name === 'circle').map((e) => Number(e.attrs.cx));
  labels.forEach((e, i) => assert.ok(Math.abs(Number(e.attrs.x) - cx[i]) < 0.01, `${e.text} under its point`));
});

test('barChart: one rect per finite value, taller for larger values, group labels present', () => {
  const svg = barChart(
    [{ label: 'EM', values: [10, 20, NaN] }, { label: 'ES', values: [50, 40, 30] }],
    ['dense', 'magicpig', 'topk'],
    { title: 'scores', yLabel: '0-100', showValues: true },
  );
  const { elements } = parseXml(svg);
  const bars = elements.filter((e) => e.name === 'rect' && e.attrs.fill && e.attrs.fill !== '#ffffff' && e.attrs.fill !== 'none' && e.attrs.width !== '12');
  assert.equal(bars.length, 5);
  const h = bars.map((b) => Number(b.attrs.height));
  assert.ok(Math.abs(h[1] / h[0] - 2) < 0.01);
  assert.ok(h[2] > h[3] && h[3] > h[4]);
  const texts = elements.filter((e) => e.name === 'text').map((e) => e.text);
  for (const t of ['EM', 'ES', 'dense', 'magicpig', 'topk', 'scores']) assert.ok(texts.includes(t), t);
});

test('tick helpers: nice linear steps and decade log ticks', () => {
  assert.deepEqual(linearTicks(0, 100, 5), [0, 20, 40, 60, 80, 100]);
  assert.deepEqual(linearTicks(0.1, 0.95, 4), [0.2, 0.4, 0.6, 0.8]);
  assert.deepEqual(logTicks(1, 1000), [1, 10, 100, 1000]);
  assert.deepEqual(logTicks(1, 20), [1, 2, 5, 10, 20]);
});

test('a long legend name widens the picture instead of running off its edge', () => {
  const name = 'floor (bytes / bandwidth measured in this run)';
  const svg = lineChart([{ name, points: [[1, 1], [2, 2]] }]);
  const width = Number(/<svg[^>]* width="(\d+(?:\.\d+)?)"/.exec(svg)![1]);
  const legendX = Number(new RegExp(`<text x="([\\d.]+)"[^>]*>${name.replace(/[()/]/g, (c) => '\\' + c)}<`).exec(svg)![1]);
  assert.ok(legendX + 6.5 * name.length <= width, `legend text ends at ≈${legendX + 6.5 * name.length}, picture is ${width} wide`);
});
