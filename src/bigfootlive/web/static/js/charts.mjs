// Charts of the consoles: each `.chart[data-chart]` holds {x: [epoch s], series: [{label,
// values}]} and is drawn with uPlot (vendored, pinned in vendor/manifest.json). The same
// figures are in a table next to it, so the chart is decoration for sighted readers.
import uPlot from '../vendor/uplot-1.6.32.esm.mjs';

const COLOURS = ['#2563eb', '#dc2626', '#059669', '#d97706'];

// The y axis as wide as its longest label (uPlot's fixed 50 px cut "1000 s" to ".000 s").
function fitLabels(u, values, axisIdx, cycleNum) {
  const axis = u.axes[axisIdx];
  if (cycleNum > 1) return axis._size;  // uPlot asks again once the ticks settle
  let size = axis.ticks.size + axis.gap;
  const longest = (values ?? []).reduce((a, v) => (v.length > a.length ? v : a), '');
  if (longest) {
    u.ctx.font = axis.font[0];
    size += u.ctx.measureText(longest).width / devicePixelRatio;
  }
  return Math.ceil(size) + 4;
}

function draw(el) {
  const data = JSON.parse(el.dataset.chart);
  const unit = el.dataset.unit || '';
  const width = Math.max(280, Math.min(el.clientWidth || 640, 900));
  const opts = {
    width,
    height: 220,
    scales: { x: { time: true } },
    axes: [{}, { values: (u, ticks) => ticks.map((v) => `${v} ${unit}`.trim()), size: fitLabels }],
    series: [
      {},
      ...data.series.map((s, i) => ({
        label: s.label,
        stroke: COLOURS[i % COLOURS.length],
        width: 2,
        fill: `${COLOURS[i % COLOURS.length]}22`,
      })),
    ],
  };
  el.replaceChildren();
  return new uPlot(opts, [data.x, ...data.series.map((s) => s.values)], el);
}

for (const el of document.querySelectorAll('.chart[data-chart]')) {
  try {
    el.chart = draw(el);
    el.dataset.drawn = 'true';
  } catch (error) {
    console.error('chart', error);
  }
}
