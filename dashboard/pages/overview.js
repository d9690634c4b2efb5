// Overview: the node, its storage, totals over every queue, live rates and errors.

import { h, replace, stat, fmtInt, fmtRate, fmtDuration, fmtBytes } from '../lib/dom.js';
import * as live from '../lib/live.js';
import { LineChart } from '../lib/chart.js';

export default {
  id: 'overview',
  title: 'Overview',
  nav: '/',
  match: (path) => (path === '/' ? {} : null),
  render(main) {
    const tiles = h('div', { class: 'grid', id: 'overview-tiles' });
    const node = h('section', { class: 'panel', 'aria-label': 'Node' });
    const rates = new LineChart('Messages per second', [
      { key: 'sent', label: 'sent' },
      { key: 'received', label: 'received' },
      { key: 'acked', label: 'acked' },
      { key: 'dead_lettered', label: 'dead-lettered' },
    ]);
    const depth = new LineChart('Messages in queues', [
      { key: 'visible', label: 'visible' },
      { key: 'in_flight', label: 'in flight' },
      { key: 'delayed', label: 'delayed' },
    ], { format: (n) => fmtInt(Math.round(n)) });
    const errors = new LineChart('HTTP errors per second', [
      { key: 'client', label: '4xx' },
      { key: 'server', label: '5xx' },
    ]);
    main.append(h('h1', {}, 'Overview'), node, tiles, h('div', { class: 'charts' }, rates.el, depth.el, errors.el));

    const unsubscribe = live.subscribe((s) => {
      const totals = (snap) => snap.totals;
      const t = s.totals;
      const wal = s.wal;
      replace(node,
        h('h2', {}, 'Node'),
        h('div', { class: 'grid' },
          kv('Node', s.server.node_id),
          kv('Version', s.server.version),
          kv('Uptime', fmtDuration(s.server.uptime_ms)),
          kv('Engine', s.server.engine),
          kv('Storage', storageText(s)),
          diskLine(s.readiness),
          memoryLine(s.readiness),
          kv('Data dir', s.server.data_dir),
          kv('Listening on', s.server.listen),
          wal ? kv('Write-ahead log', `${fmtInt(wal.records)} records, ${fmtBytes(wal.bytes)}, ${fmtInt(wal.syncs)} fsyncs`) : null));
      replace(tiles,
        stat('Queues', fmtInt(s.queues.length) + (s.queues_truncated ? '+' : '')),
        stat('Visible', fmtInt(t.visible)),
        stat('In flight', fmtInt(t.in_flight)),
        stat('Delayed', fmtInt(t.delayed)),
        stat('Oldest message', fmtDuration(t.oldest_age_ms)),
        stat('Sent', fmtInt(t.sent_total)),
        stat('Acked', fmtInt(t.acked_total)),
        stat('Dead-lettered', fmtInt(t.dead_lettered_total), { bad: t.dead_lettered_total > 0 }),
        stat('Sent / s', fmtRate(live.lastRate(totals, 'sent'))),
        stat('Acked / s', fmtRate(live.lastRate(totals, 'acked'))),
        // Streams and topics: absent from a server older than the page.
        s.streams ? stat('Streams', fmtInt(s.streams.count), { id: 'stat-streams' }) : null,
        s.streams ? stat('Stream records', fmtInt(s.streams.records)) : null,
        s.streams ? stat('Stream lag', fmtInt(s.streams.lag_total)) : null,
        s.topics ? stat('Topics', fmtInt(s.topics.count), { id: 'stat-topics' }) : null,
        s.topics ? stat('Published / s', fmtRate(live.lastRate((x) => x.topics, 'published_total'))) : null,
        stat('HTTP 4xx', fmtInt(s.http.client_errors_total)),
        stat('HTTP 5xx', fmtInt(s.http.server_errors_total), { bad: s.http.server_errors_total > 0 }));
      rates.update(live.rateSeries(totals, ['sent', 'received', 'acked', 'dead_lettered']));
      depth.update({
        visible: live.gaugeSeries((x) => x.totals.visible),
        in_flight: live.gaugeSeries((x) => x.totals.in_flight),
        delayed: live.gaugeSeries((x) => x.totals.delayed),
      });
      const snaps = live.snapshots();
      const errorRate = (field) => snaps.slice(1).map((b, i) => {
        const a = snaps[i];
        const dt = (b.at - a.at) / 1000;
        return [b.at, dt > 0 ? Math.max(0, (b.http[field] - a.http[field]) / dt) : 0];
      });
      errors.update({ client: errorRate('client_errors_total'), server: errorRate('server_errors_total') });
    });
    return () => {
      unsubscribe();
      rates.destroy();
      depth.destroy();
      errors.destroy();
    };
  },
};

function kv(label, value) {
  return h('div', { class: 'stat' }, h('div', { class: 'label' }, label), h('div', { class: 'mono' }, value));
}

/** The disk and its alarm: free space against `disk_free_min`, and whether writes are refused. */
function diskLine(readiness) {
  const disk = readiness && readiness.disk;
  if (!disk) return null;
  const text = `${fmtBytes(disk.free_bytes)} free, alarm below ${fmtBytes(disk.free_min_bytes)}`
    + (disk.low ? ' — ALARM: sends, publishes and stream appends refused; consumers drain' : '')
    + (disk.refused_writes ? ` (${fmtInt(disk.refused_writes)} writes refused)` : '');
  const line = kv('Disk', text);
  line.id = 'disk-alarm';
  if (disk.low) line.classList.add('bad');
  line.dataset.alarm = disk.low ? 'on' : 'off';
  return line;
}

/** The process's memory against `memory_high_watermark`, and whether writes are refused. */
function memoryLine(readiness) {
  const memory = readiness && readiness.memory;
  if (!memory) return null;
  const budget = memory.high_watermark_bytes
    ? `alarm at ${fmtBytes(memory.high_watermark_bytes)}` : 'no alarm (memory_high_watermark 0)';
  const text = `messages hold ${fmtBytes(memory.used_bytes)} (process ${fmtBytes(memory.resident_bytes || 0)}), ${budget}`
    + (memory.alarm ? ' — ALARM: sends, publishes and stream appends refused; consumers drain' : '')
    + (memory.refused_writes ? ` (${fmtInt(memory.refused_writes)} writes refused)` : '');
  const line = kv('Memory', text);
  line.id = 'memory-alarm';
  if (memory.alarm) line.classList.add('bad');
  line.dataset.alarm = memory.alarm ? 'on' : 'off';
  return line;
}

/** The storage state as `/ready` reports it. */
function storageText(s) {
  if (s.storage_failure) return `failing: ${s.storage_failure}`;
  if (!s.ready) return 'recovering';
  const state = s.readiness && s.readiness.storage;
  return state === 'disk_low' ? 'disk low: producers refused' : 'ok';
}
