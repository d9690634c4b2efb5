// A bar chart on a canvas for data that is not a live time series (a performance test's
// throughput per interval, its latency percentiles). Like LineChart it redraws on resize and
// carries a text summary (role="img") for screen readers.

import { h, fmtRate } from './dom.js';

export class BarChart {
  /**
   * @param {string} title
   * @param {{format?: (n: number) => string, unit?: string, id?: string, labelEvery?: number}} options
   */
  constructor(title, options = {}) {
    this.title = title;
    this.format = options.format || fmtRate;
    this.unit = options.unit || '';
    this.bars = [];
    this.canvas = h('canvas', { class: 'chart', role: 'img', 'aria-label': `${title}: no data yet` });
    this.el = h('section', { class: 'panel', 'aria-label': title, id: options.id }, h('h2', {}, title), this.canvas);
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this.canvas);
  }

  /** `bars`: [{label, value}], drawn left to right. */
  update(bars, summary) {
    this.bars = bars;
    this.summary = summary;
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
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const style = getComputedStyle(document.documentElement);
    const muted = style.getPropertyValue('--muted').trim();
    const line = style.getPropertyValue('--line').trim();
    const fill = style.getPropertyValue('--s1').trim();

    const left = 52;
    const right = 8;
    const topPad = 8;
    const bottom = 20;
    const plotW = width - left - right;
    const plotH = height - topPad - bottom;
    const top = niceCeil(Math.max(1, ...this.bars.map((b) => b.value)));
    const y = (v) => topPad + plotH - (v / top) * plotH;

    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = muted;
    ctx.strokeStyle = line;
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i += 1) {
      const v = (top * i) / 4;
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, yy);
      ctx.lineTo(width - right, yy);
      ctx.stroke();
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      ctx.fillText(this.format(v), left - 6, yy);
    }
    const n = this.bars.length;
    if (n) {
      const slot = plotW / n;
      const barW = Math.max(1, slot * 0.8);
      // Label only as many bars as fit, evenly spaced.
      const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plotW / 56))));
      this.bars.forEach((bar, i) => {
        const x = left + i * slot + (slot - barW) / 2;
        ctx.fillStyle = fill;
        ctx.fillRect(x, y(bar.value), barW, topPad + plotH - y(bar.value));
        if (i % every === 0) {
          ctx.fillStyle = muted;
          ctx.textAlign = 'center';
          ctx.textBaseline = 'alphabetic';
          ctx.fillText(bar.label, left + i * slot + slot / 2, height - 4);
        }
      });
    }
    const text = this.summary || this.bars.map((b) => `${b.label} ${this.format(b.value)}${this.unit}`).join(', ');
    canvas.setAttribute('aria-label', `${this.title}: ${text || 'no data'}`);
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
