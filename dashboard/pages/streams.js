// Streams: a table of every stream, and a stream page with its partitions (offsets, records,
// bytes) and consumer groups (mode, lag per partition, pending records, live consumers, and the
// pending list on demand). Streams are not in the live stats stream, so both pages poll.

import { h, replace, stat, fmtInt, fmtBytes, fmtDuration } from '../lib/dom.js';
import { api } from '../lib/api.js';

const POLL_MS = 2000;

/** Calls `load()` now and every POLL_MS after the previous call ends; returns the stop. */
function poll(load) {
  let stopped = false;
  let timer = null;
  const tick = () => load(() => stopped).finally(() => { if (!stopped) timer = setTimeout(tick, POLL_MS); });
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

function table(caption, headers, id) {
  const tbody = h('tbody');
  const el = h('table', { id },
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, headers.map(([label, cls]) => h('th', { scope: 'col', class: cls || null }, label)))),
    tbody);
  return { el, tbody };
}

const streamHref = (name) => `#/streams/${encodeURIComponent(name)}`;
const lagTotal = (s) => s.stats.groups.reduce((sum, g) => sum + g.stats.lag_total, 0);
const pendingTotal = (s) => s.stats.groups.reduce((sum, g) => sum + g.stats.pending, 0);

export const streamsPage = {
  id: 'streams',
  title: 'Streams',
  nav: '/streams',
  match: (path) => (path === '/streams' ? {} : null),
  render(main) {
    const status = h('p', { class: 'muted', role: 'status' });
    const t = table('Streams', [['Stream'], ['Partitions', 'num'], ['Records', 'num'], ['Size', 'num hide-narrow'], ['Groups', 'num'], ['Lag', 'num'], ['Pending', 'num']], 'streams-table');
    main.append(h('h1', {}, 'Streams'),
      h('section', { class: 'panel' }, status, h('div', { class: 'table-wrap' }, t.el)));
    return poll(async (stopped) => {
      try {
        const { streams } = await api.streams();
        if (stopped()) return;
        replace(t.tbody, streams.map((s) => h('tr', { dataset: { stream: s.name } },
          h('td', {}, h('a', { href: streamHref(s.name) }, s.name)),
          h('td', { class: 'num' }, fmtInt(s.attributes.partitions)),
          h('td', { class: 'num' }, fmtInt(s.stats.records)),
          h('td', { class: 'num hide-narrow' }, fmtBytes(s.stats.bytes)),
          h('td', { class: 'num' }, fmtInt(s.stats.groups.length)),
          h('td', { class: 'num' }, fmtInt(lagTotal(s))),
          h('td', { class: 'num' }, fmtInt(pendingTotal(s))))));
        status.textContent = streams.length ? `${fmtInt(streams.length)} stream${streams.length === 1 ? '' : 's'}.` : 'No streams yet. Create one with PUT /v1/streams/{name} (see docs/api.md).';
      } catch (error) {
        if (!stopped()) status.textContent = `Could not read the streams: ${error.message}`;
      }
    });
  },
};

export const streamPage = {
  id: 'stream',
  title: (params) => params.name,
  navParent: 'streams',
  match(path) {
    const m = path.match(/^\/streams\/([^/?]+)$/);
    return m ? { name: decodeURIComponent(m[1]) } : null;
  },
  render(main, { name }) {
    const status = h('p', { class: 'muted', role: 'status' });
    const tiles = h('div', { class: 'grid', id: 'stream-tiles' });
    const parts = table(`Partitions of ${name}`, [['Partition', 'num'], ['First offset', 'num'], ['Next offset', 'num'], ['Records', 'num'], ['Size', 'num hide-narrow']], 'partitions-table');
    const groups = table(`Consumer groups of ${name}`, [['Group'], ['Mode'], ['Lag', 'num'], ['Lag per partition', 'hide-narrow'], ['Pending', 'num'], ['Consumers'], ['']], 'groups-table');
    const pendingOut = h('div', { id: 'pending-list', 'aria-live': 'polite' });
    main.append(
      h('p', { class: 'muted' }, h('a', { href: '#/streams' }, 'Streams'), ' / '),
      h('h1', {}, name), status, tiles,
      h('section', { class: 'panel', 'aria-label': 'Partitions' }, h('h2', {}, 'Partitions'), h('div', { class: 'table-wrap' }, parts.el)),
      h('section', { class: 'panel', 'aria-label': 'Consumer groups' }, h('h2', {}, 'Consumer groups'), h('div', { class: 'table-wrap' }, groups.el), pendingOut));

    async function showPending(group) {
      replace(pendingOut, h('p', { class: 'muted' }, 'Loading…'));
      try {
        const list = await api.pending(name, group);
        const t = table(`Pending records of ${group}`, [['Record'], ['Consumer'], ['Idle', 'num'], ['Deliveries', 'num']]);
        replace(t.tbody, list.pending.map((p) => h('tr', {},
          h('td', { class: 'mono' }, p.id), h('td', {}, p.consumer),
          h('td', { class: 'num' }, fmtDuration(p.idle_ms)), h('td', { class: 'num' }, fmtInt(p.delivery_count)))));
        replace(pendingOut, h('h3', {}, `Pending in ${group}: ${fmtInt(list.count)}`),
          list.pending.length ? h('div', { class: 'table-wrap' }, t.el) : h('p', { class: 'muted' }, 'Nothing pending.'));
      } catch (error) {
        replace(pendingOut, h('p', { role: 'alert' }, `Could not read the pending list: ${error.message}`));
      }
    }

    // Redraw only on change, so a focused button keeps its focus between polls.
    let shown = '';
    return poll(async (stopped) => {
      try {
        const s = await api.stream(name);
        if (stopped()) return;
        const json = JSON.stringify(s);
        if (json === shown) return;
        shown = json;
        const a = s.attributes;
        status.textContent = '';
        replace(tiles,
          stat('Partitions', fmtInt(a.partitions)),
          stat('Records', fmtInt(s.stats.records), { id: 'stat-records' }),
          stat('Size', fmtBytes(s.stats.bytes)),
          stat('Groups', fmtInt(s.stats.groups.length)),
          stat('Lag', fmtInt(lagTotal(s)), { bad: lagTotal(s) > 0 }),
          stat('Pending', fmtInt(pendingTotal(s))),
          stat('Retention', [a.retention_ms ? fmtDuration(a.retention_ms) : null, a.retention_bytes ? fmtBytes(a.retention_bytes) : null, a.max_records ? `${fmtInt(a.max_records)} records` : null].filter(Boolean).join(', ') || 'keep all'));
        replace(parts.tbody, s.stats.partitions.map((p) => h('tr', {},
          h('td', { class: 'num' }, p.partition),
          h('td', { class: 'num' }, fmtInt(p.first_offset)),
          h('td', { class: 'num' }, fmtInt(p.next_offset)),
          h('td', { class: 'num' }, fmtInt(p.records)),
          h('td', { class: 'num hide-narrow' }, fmtBytes(p.bytes)))));
        replace(groups.tbody, s.stats.groups.map((g) => h('tr', { dataset: { group: g.name } },
          h('td', {}, g.name),
          h('td', {}, g.mode),
          h('td', { class: 'num' }, fmtInt(g.stats.lag_total)),
          h('td', { class: 'hide-narrow mono' }, g.stats.lag.join(' · ')),
          h('td', { class: 'num' }, fmtInt(g.stats.pending)),
          h('td', { class: 'body' }, g.stats.consumers.length
            ? g.stats.consumers.map((c) => `${c.name}${c.partitions.length ? ` (${c.partitions.join(', ')})` : ''}`).join('; ')
            : '–'),
          h('td', {}, h('button', { type: 'button', onclick: () => showPending(g.name), 'aria-label': `Pending records of ${g.name}` }, 'Pending')))));
        if (!s.stats.groups.length) replace(groups.tbody, h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No consumer groups.')));
      } catch (error) {
        if (!stopped()) status.textContent = `Could not read stream ${name}: ${error.message}`;
      }
    });
  },
};
