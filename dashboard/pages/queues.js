// Queues: a live, sortable table of every queue, and forms to create, purge and delete.

import { h, replace, fmtInt, fmtRate, fmtDuration, toast } from '../lib/dom.js';
import * as live from '../lib/live.js';
import { api } from '../lib/api.js';

const COLUMNS = [
  { key: 'name', label: 'Queue', num: false, get: (q) => q.name },
  { key: 'visible', label: 'Visible', num: true, get: (q) => q.stats.visible },
  { key: 'in_flight', label: 'In flight', num: true, get: (q) => q.stats.in_flight },
  { key: 'delayed', label: 'Delayed', num: true, get: (q) => q.stats.delayed },
  { key: 'dlq', label: 'DLQ', num: true, get: (q, ctx) => ctx.dlqDepth(q) },
  { key: 'oldest', label: 'Oldest', num: true, get: (q) => q.stats.oldest_age_ms, fmt: fmtDuration },
  { key: 'in_rate', label: 'Sent/s', num: true, get: (q) => live.lastRate((s) => statsOf(s, q.name), 'sent'), fmt: fmtRate },
  { key: 'out_rate', label: 'Acked/s', num: true, get: (q) => live.lastRate((s) => statsOf(s, q.name), 'acked'), fmt: fmtRate },
];

function statsOf(snapshot, name) {
  const found = snapshot.queues.find((q) => q.name === name);
  return found ? found.stats : null;
}

export function depthOf(stats) {
  return stats.visible + stats.in_flight + stats.delayed;
}

export default {
  id: 'queues',
  title: 'Queues',
  nav: '/queues',
  match: (path) => (path === '/queues' ? {} : null),
  render(main) {
    let sort = { key: 'name', dir: 'ascending' };
    const rows = new Map();
    const tbody = h('tbody');
    const empty = h('p', { class: 'empty', hidden: true }, 'No queues yet. Create one above.');
    const headerCells = COLUMNS.map((c) => {
      const th = h('th', { class: c.num ? 'num' : '', scope: 'col', 'aria-sort': c.key === sort.key ? sort.dir : 'none' },
        h('button', { type: 'button', onclick: () => setSort(c.key) }, c.label));
      th.dataset.key = c.key;
      return th;
    });
    const table = h('table', { id: 'queues-table' },
      h('caption', { class: 'sr-only' }, 'Queues, live; column headers sort'),
      h('thead', {}, h('tr', {}, headerCells, h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      tbody);

    const form = createForm(() => refresh(live.latest()));
    main.append(h('h1', {}, 'Queues'), form, h('section', { class: 'panel' }, h('div', { class: 'table-wrap' }, table), empty));

    function setSort(key) {
      sort = sort.key === key ? { key, dir: sort.dir === 'ascending' ? 'descending' : 'ascending' } : { key, dir: key === 'name' ? 'ascending' : 'descending' };
      for (const th of headerCells) th.setAttribute('aria-sort', th.dataset.key === sort.key ? sort.dir : 'none');
      refresh(live.latest());
    }

    function refresh(snapshot) {
      if (!snapshot) return;
      const byName = new Map(snapshot.queues.map((q) => [q.name, q]));
      const ctx = { dlqDepth: (q) => (q.attributes.dead_letter && byName.has(q.attributes.dead_letter.queue) ? depthOf(byName.get(q.attributes.dead_letter.queue).stats) : null) };
      for (const [name, row] of rows) {
        if (!byName.has(name)) { row.tr.remove(); rows.delete(name); }
      }
      for (const q of snapshot.queues) {
        let row = rows.get(q.name);
        if (!row) { row = makeRow(q.name, () => refresh(live.latest())); rows.set(q.name, row); }
        row.values = {};
        COLUMNS.forEach((c, i) => {
          const v = c.get(q, ctx);
          row.values[c.key] = v;
          if (i === 0) return;
          row.cells[i].textContent = v === null ? '–' : (c.fmt || fmtInt)(v);
        });
      }
      const col = COLUMNS.find((c) => c.key === sort.key);
      const ordered = [...rows.values()].sort((a, b) => {
        const x = a.values[col.key] ?? -1;
        const y = b.values[col.key] ?? -1;
        const cmp = col.num ? x - y : String(x).localeCompare(String(y));
        return (sort.dir === 'ascending' ? cmp : -cmp) || a.name.localeCompare(b.name);
      });
      // Move rows only when the order changed, so a focused button keeps its focus.
      const current = [...tbody.children];
      if (ordered.some((row, i) => current[i] !== row.tr)) {
        for (const row of ordered) tbody.append(row.tr);
      }
      empty.hidden = rows.size > 0;
    }

    const unsubscribe = live.subscribe(refresh);
    return unsubscribe;
  },
};

function makeRow(name, changed) {
  const link = h('a', { href: `#/queues/${encodeURIComponent(name)}` }, name);
  const cells = COLUMNS.map((c, i) => h('td', { class: c.num ? 'num' : '' }, i === 0 ? link : ''));
  const purge = h('button', {
    type: 'button', class: 'danger', 'aria-label': `Purge ${name}`,
    onclick: async () => {
      if (!confirm(`Delete every message of ${name}?`)) return;
      try {
        const result = await api.purge(name);
        toast(`Purged ${fmtInt(result.purged)} messages from ${name}`);
      } catch (error) { toast(`Purge failed: ${error.message}`, 'error'); }
      changed();
    },
  }, 'Purge');
  const del = h('button', {
    type: 'button', class: 'danger', 'aria-label': `Delete ${name}`,
    onclick: async () => {
      if (!confirm(`Delete queue ${name} and its messages?`)) return;
      try {
        await api.deleteQueue(name);
        toast(`Deleted ${name}`);
      } catch (error) { toast(`Delete failed: ${error.message}`, 'error'); }
      changed();
    },
  }, 'Delete');
  const tr = h('tr', { dataset: { queue: name } }, cells, h('td', {}, h('div', { class: 'actions' }, purge, del)));
  return { name, tr, cells, values: {} };
}

function createForm(created) {
  const name = h('input', { name: 'name', required: true, pattern: '[A-Za-z0-9_\\-]{1,75}(\\.fifo)?', maxlength: 80, placeholder: 'orders', autocomplete: 'off' });
  const visibility = h('input', { name: 'visibility_timeout_ms', type: 'number', min: 0, max: 43200000, placeholder: '30000' });
  const dlq = h('input', { name: 'dead_letter_queue', placeholder: 'orders-dlq', autocomplete: 'off' });
  const maxReceives = h('input', { name: 'max_receive_count', type: 'number', min: 1, max: 1000, placeholder: '3' });
  const error = h('p', { class: 'muted', role: 'alert' });
  const form = h('form', {
    class: 'panel stack', 'aria-label': 'Create a queue',
    onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = '';
      const attributes = {};
      if (visibility.value !== '') attributes.visibility_timeout_ms = Number(visibility.value);
      if (dlq.value.trim() !== '') {
        attributes.dead_letter = { queue: dlq.value.trim(), max_receive_count: Number(maxReceives.value || 3) };
      }
      try {
        await api.createQueue(name.value.trim(), attributes);
        toast(`Created ${name.value.trim()}`);
        form.reset();
        created();
      } catch (e) {
        error.textContent = `${e.code}: ${e.message}`;
      }
    },
  },
  h('h2', {}, 'Create a queue'),
  h('div', { class: 'row' },
    h('label', {}, 'Name (FIFO queues end in .fifo)', name),
    h('label', {}, 'Visibility timeout (ms)', visibility),
    h('label', {}, 'Dead-letter queue (must exist)', dlq),
    h('label', {}, 'Max receives before dead-lettering', maxReceives)),
  h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Create queue')),
  error);
  return form;
}
