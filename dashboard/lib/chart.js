// A small line chart on a canvas: time on x, one or more series on y, drawn again on each
// update and on resize. The canvas carries a text summary (role="img") for screen readers.

import { h, fmtRate } from './dom.js';

const COLORS = ['--s1', '--s2', '--s3', '--s4', '--s5'];

export class LineChart {
  /**
   * @param {string} title
   * @param {{key: string, label: string}[]} series
   * @param {{unit?: string, windowMs?: number, format?: (n: number) => string}} options
   */
  constructor(title, series, options = {}) {
    this.title = title;
    this.series = series.map((s, i) => ({ ...s, color: COLORS[i % COLORS.length] }));
    this.unit = options.unit || '';
    this.windowMs = options.windowMs || 120_000;
    this.format = options.format || fmtRate;
    this.data = {};
    this.canvas = h('canvas', { class: 'chart', role: 'img', 'aria-label': `${title}: no data yet` });
    this.el = h('section', { class: 'panel', 'aria-label': title },
      h('h2', {}, title),
      this.canvas,
      h('div', { class: 'legend' },
        this.series.map((s) => h('span', { style: `--c: var(${s.color})` }, s.label))));
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.canvas);
  }

  /** `data`: key → [[at_ms, value], ...]. */
  update(data) {
    this.data = data;
    this.draw();
  }

  destroy() {
    this.resize.disconnect();
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const style = getComputedStyle(document.documentElement);
    const muted = style.getPropertyValue('--muted').trim();
    const line = style.getPropertyValue('--line').trim();

    const all = this.series.flatMap((s) => this.data[s.key] || []);
    const end = all.length ? Math.max(...all.map((p) => p[0])) : Date.now();
    const startAt = end - this.windowMs;
    const maxValue = Math.max(1, ...all.filter((p) => p[0] >= startAt).map((p) => p[1]));
    const top = niceCeil(maxValue);

    const left = 44;
    const right = 8;
    const topPad = 8;
    const bottom = 20;
    const plotW = width - left - right;
    const plotH = height - topPad - bottom;
    const x = (t) => left + ((t - startAt) / this.windowMs) * plotW;
    const y = (v) => topPad + plotH - (v / top) * plotH;

    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = muted;
    ctx.strokeStyle = line;
    ctx.lineWidth = 1;
    for (let i = 0; i <= 5; i += 1) {
      const v = (top * i) / 5;
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, yy);
      ctx.lineTo(width - right, yy);
      ctx.stroke();
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      ctx.fillText(this.format(v), left - 6, yy);
    }
    ctx.textAlign = 'left';
    ctx.textBaseline = 'alphabetic';
    ctx.fillText(`−${Math.round(this.windowMs / 1000)} s`, left, height - 4);
    ctx.textAlign = 'right';
    ctx.fillText('now', width - right, height - 4);

    const summary = [];
    for (const s of this.series) {
      const points = (this.data[s.key] || []).filter((p) => p[0] >= startAt);
      ctx.strokeStyle = style.getPropertyValue(s.color).trim();
      ctx.lineWidth = 2;
      ctx.beginPath();
      points.forEach(([t, v], i) => (i === 0 ? ctx.moveTo(x(t), y(v)) : ctx.lineTo(x(t), y(v))));
      ctx.stroke();
      const last = points.length ? points[points.length - 1][1] : 0;
      summary.push(`${s.label} ${this.format(last)}${this.unit}`);
    }
    canvas.setAttribute('aria-label', `${this.title}, latest: ${summary.join(', ')}`);
  }
}

/** The next "round" number at or above `v` (1, 2, 5 × 10^n). */
function niceCeil(v) {
  const exp = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) {
    if (v <= m * exp) return m * exp;
  }
  return 10 * exp;
}
