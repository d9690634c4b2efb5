// The live connection: one EventSource on /v1/live/stats for the whole page, a bounded
// history of snapshots, and per-second rates derived from consecutive snapshots.

import { fmtBytes } from './dom.js';
import { withTicket } from './auth.js';

/** Snapshots kept: five minutes at one a second. */
const HISTORY_MAX = 300;

const history = [];
const listeners = new Set();
let source = null;

/** The counters rates are derived from, by the name the charts use. */
export const RATE_FIELDS = {
  sent: 'sent_total',
  received: 'received_total',
  acked: 'acked_total',
  nacked: 'nacked_total',
  dead_lettered: 'dead_lettered_total',
};

function setConn(text, cls) {
  const el = document.getElementById('conn');
  el.textContent = text;
  el.className = `conn ${cls}`;
}

/** What the disk-free and the memory alarms say while they refuse producers. */
function alarms(readiness) {
  const out = [];
  if (!readiness) return out;
  if (readiness.storage === 'disk_low') {
    const disk = readiness.disk || {};
    out.push(`Disk space low: ${fmtBytes(disk.free_bytes || 0)} free, below disk_free_min (${fmtBytes(disk.free_min_bytes || 0)}). Sends, publishes and stream appends are refused until space is freed; consumers go on draining.`);
  }
  const memory = readiness.memory;
  if (memory && memory.alarm) {
    out.push(`Memory above memory_high_watermark: messages hold ${fmtBytes(memory.used_bytes)}, budget ${fmtBytes(memory.high_watermark_bytes)}. Sends, publishes and stream appends are refused until consumers drain.`);
  }
  return out;
}

/** Opens the live stream (with a ticket for the signed-in key, if any). */
export async function start() {
  if (source) return;
  source = {};
  let url;
  try {
    url = await withTicket('/v1/live/stats');
  } catch (error) {
    source = null;
    setConn('not signed in', 'down');
    return;
  }
  source = new EventSource(url);
  source.addEventListener('open', () => setConn('live', 'live'));
  source.addEventListener('stats', (event) => {
    const snapshot = JSON.parse(event.data);
    history.push(snapshot);
    if (history.length > HISTORY_MAX) history.shift();
    setConn('live', 'live');
    const banner = document.getElementById('banner');
    const readiness = snapshot.readiness;
    if (snapshot.storage_failure) {
      banner.textContent = `Storage refuses writes: ${snapshot.storage_failure}`;
      banner.hidden = false;
    } else if (alarms(readiness).length) {
      banner.textContent = alarms(readiness).join(' ');
      banner.hidden = false;
    } else if (!snapshot.ready) {
      banner.textContent = 'Storage is recovering; the broker is not ready yet.';
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
    for (const listener of listeners) listener(snapshot);
  });
  // The server cannot take a snapshot (storage still recovering): say why.
  source.addEventListener('unavailable', (event) => {
    setConn('not ready', 'down');
    const banner = document.getElementById('banner');
    banner.textContent = `The broker is not ready: ${event.data}`;
    banner.hidden = false;
  });
  // EventSource reconnects by itself after a network error; say so meanwhile. A refused
  // stream (its ticket expired while the server was away) is opened again with a new one.
  source.addEventListener('error', () => {
    setConn('reconnecting…', 'down');
    if (source && source.readyState === EventSource.CLOSED) {
      source = null;
      setTimeout(start, 2000);
    }
  });
}

/** Closes the live stream (signing out). */
export function stop() {
  if (source && source.close) source.close();
  source = null;
}

/** Calls `listener(snapshot)` for every snapshot from now on (and the latest at once). */
export function subscribe(listener) {
  listeners.add(listener);
  const last = latest();
  if (last) listener(last);
  return () => listeners.delete(listener);
}

export function latest() {
  return history[history.length - 1] || null;
}

export function snapshots() {
  return history;
}

/** Per-second rates of `stats` counters between consecutive snapshots, as chart series. */
export function rateSeries(pickStats, fields = Object.keys(RATE_FIELDS)) {
  const series = Object.fromEntries(fields.map((f) => [f, []]));
  for (let i = 1; i < history.length; i += 1) {
    const a = pickStats(history[i - 1]);
    const b = pickStats(history[i]);
    const dt = (history[i].at - history[i - 1].at) / 1000;
    for (const f of fields) {
      const key = RATE_FIELDS[f];
      const v = a && b && dt > 0 ? Math.max(0, (b[key] - a[key]) / dt) : 0;
      series[f].push([history[i].at, v]);
    }
  }
  return series;
}

/** A gauge over time: `pick(snapshot)` for each snapshot. */
export function gaugeSeries(pick) {
  return history.map((s) => [s.at, pick(s) ?? 0]);
}

/** The latest per-second rate of one counter. */
export function lastRate(pickStats, field) {
  const n = history.length;
  if (n < 2) return 0;
  const a = pickStats(history[n - 2]);
  const b = pickStats(history[n - 1]);
  const dt = (history[n - 1].at - history[n - 2].at) / 1000;
  if (!a || !b || dt <= 0) return 0;
  return Math.max(0, (b[RATE_FIELDS[field] || field] - a[RATE_FIELDS[field] || field]) / dt);
}
