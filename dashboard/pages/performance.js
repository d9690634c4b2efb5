// The performance test: create `count` events of a type through the event facade
// (`POST /api/events/performance-test`), watch the workers' progress meanwhile (polling
// `/api/events/queue-info`), then chart the server's report: throughput over time and the
// create→processed latency percentiles.

import { h, replace, stat, fmtInt, fmtRate } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { BarChart } from '../lib/bars.js';
import { LineChart } from '../lib/chart.js';

const EVENT_TYPES = ['NOTIFICATION', 'DATA_PROCESSING', 'HEAVY_TASK'];
const POLL_MS = 500;

export default {
  id: 'performance',
  title: 'Performance test',
  nav: '/performance',
  match: (path) => (path === '/performance' ? {} : null),
  render(main) {
    const count = h('input', { name: 'count', type: 'number', min: 1, required: true, value: '1000' });
    const eventType = h('select', { name: 'eventType' }, EVENT_TYPES.map((t) => h('option', { value: t }, t)));
    const run = h('button', { class: 'primary', type: 'submit' }, 'Run test');
    const progress = h('p', { class: 'muted', role: 'status', id: 'perf-progress' });
    const error = h('p', { class: 'error', role: 'alert' });
    const tiles = h('div', { class: 'grid', id: 'perf-tiles' });
    const throughput = new BarChart('Throughput (events per second)', { id: 'perf-throughput', unit: '/s' });
    const latency = new BarChart('Latency, create → processed (ms)', { id: 'perf-latency', format: (n) => fmtInt(Math.round(n)), unit: ' ms' });
    // While the test runs: the workers' processed counter, polled, as a rate.
    const running = new LineChart('Processed per second while running', [{ key: 'rate', label: 'processed / s (all events)' }], { windowMs: 60_000 });
    const runningBox = h('div', { class: 'charts', hidden: true, id: 'perf-running' }, running.el);
    const charts = h('div', { class: 'charts', hidden: true }, throughput.el, latency.el);
    let poll = null;
    let gone = false;

    const form = h('form', {
      class: 'panel stack', 'aria-label': 'Run a performance test',
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = '';
        run.disabled = true;
        const wanted = Number(count.value);
        let before = null;
        try { before = await api.queueInfo(); } catch { before = null; }
        progress.textContent = `Creating ${fmtInt(wanted)} ${eventType.value} events…`;
        const rates = [];
        let last = before ? { at: Date.now(), processed: before.processedCount } : null;
        runningBox.hidden = false;
        running.update({ rate: rates });
        // The workers' processed counter moves while the request runs.
        poll = setInterval(async () => {
          try {
            const info = await api.queueInfo();
            if (gone || !poll) return;
            const done = before ? Math.max(0, info.processedCount - before.processedCount) : info.processedCount;
            const now = Date.now();
            if (last && now > last.at) rates.push([now, Math.max(0, ((info.processedCount - last.processed) * 1000) / (now - last.at))]);
            last = { at: now, processed: info.processedCount };
            running.update({ rate: rates });
            progress.textContent = `Running: ${fmtInt(Math.min(done, wanted))} of ${fmtInt(wanted)} processed, ${fmtInt(info.queueSize)} waiting, ${fmtInt(info.inFlightCount)} in progress…`;
          } catch { /* the next poll or the answer will tell */ }
        }, POLL_MS);
        try {
          const report = await api.performanceTest(wanted, eventType.value);
          if (gone) return;
          show(report);
        } catch (e) {
          if (gone) return;
          progress.textContent = '';
          error.textContent = `${e.code}: ${e.message}`;
        } finally {
          clearInterval(poll);
          poll = null;
          run.disabled = false;
        }
      },
    },
    h('h2', {}, 'Run the performance test'),
    h('p', { class: 'muted' }, 'Creates the events through the event API and waits until the built-in workers have processed them.'),
    h('div', { class: 'row' },
      h('label', {}, 'Number of events', count),
      h('label', {}, 'Event type', eventType)),
    h('div', { class: 'actions' }, run),
    progress,
    error);

    function show(report) {
      progress.textContent = report.timedOut
        ? `Stopped waiting after ${fmtInt(report.elapsedMs)} ms: ${fmtInt(report.processed)} of ${fmtInt(report.count)} processed.`
        : `Done: ${fmtInt(report.processed)} of ${fmtInt(report.count)} ${report.eventType} events processed in ${fmtInt(report.elapsedMs)} ms.`;
      const l = report.latencyMs;
      replace(tiles,
        stat('Events', fmtInt(report.count)),
        stat('Processed', fmtInt(report.processed), { id: 'perf-processed' }),
        stat('Failed', fmtInt(report.failed), { bad: report.failed > 0 }),
        stat('Elapsed', `${fmtInt(report.elapsedMs)} ms`),
        stat('Events / s', fmtRate(report.eventsPerSecond), { id: 'perf-rate' }),
        stat('Latency p50', l ? `${fmtInt(l.p50)} ms` : '–'),
        stat('Latency p99', l ? `${fmtInt(l.p99)} ms` : '–'),
        stat('Timed out', report.timedOut ? 'yes' : 'no', { bad: report.timedOut }));
      charts.hidden = false;
      const seconds = (ms) => (report.bucketMs >= 1000 ? `${ms / 1000} s` : `${ms} ms`);
      throughput.update(
        (report.timeline || []).map((b) => ({ label: seconds(b.startMs), value: b.eventsPerSecond })),
        `${(report.timeline || []).length} intervals of ${report.bucketMs} ms, peak ${fmtRate(Math.max(0, ...(report.timeline || []).map((b) => b.eventsPerSecond)))}/s, average ${fmtRate(report.eventsPerSecond)}/s`);
      latency.update(l ? [
        { label: 'p50', value: l.p50 },
        { label: 'p90', value: l.p90 },
        { label: 'p99', value: l.p99 },
        { label: 'max', value: l.max },
      ] : []);
    }

    main.append(h('h1', {}, 'Performance test'), form, tiles, charts, runningBox);
    return () => {
      gone = true;
      if (poll) clearInterval(poll);
      throughput.destroy();
      running.destroy();
      latency.destroy();
    };
  },
};
