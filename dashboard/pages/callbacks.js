// Failed completion callbacks (`GET /v1/callbacks/failed`): every message whose callback
// failed, with a retry button per message. The same list, narrowed to one queue, is a tab of
// the queue page (see `failedCallbacks`). Polled, since callbacks are not in the live stream.

import { h, replace, fmtInt, fmtTime, toast } from '../lib/dom.js';
import { api } from '../lib/api.js';

const POLL_MS = 2000;

export default {
  id: 'callbacks',
  title: 'Failed callbacks',
  nav: '/callbacks',
  match: (path) => (path === '/callbacks' ? {} : null),
  render(main) {
    main.append(h('h1', {}, 'Failed callbacks'),
      h('p', { class: 'muted' }, 'Messages whose completion callback failed. A callback is retried automatically a few times, then parked here. Retry attempts it now, whether it is still being retried or parked.'));
    const panel = h('div');
    main.append(panel);
    return failedCallbacks(panel, null);
  },
};

/** Renders the failed callbacks (of `queue`, or all) into `panel`; returns the cleanup. */
export function failedCallbacks(panel, queue) {
  const tbody = h('tbody');
  const status = h('p', { class: 'muted', role: 'status' });
  const table = h('table', { id: 'callbacks-table' },
    h('caption', { class: 'sr-only' }, queue ? `Failed callbacks of ${queue}` : 'Failed callbacks'),
    h('thead', {}, h('tr', {},
      queue ? null : h('th', { scope: 'col' }, 'Queue'),
      h('th', { scope: 'col' }, 'Message'),
      h('th', { scope: 'col' }, 'Reason'),
      h('th', { class: 'num', scope: 'col' }, 'Attempts'),
      h('th', { scope: 'col', class: 'hide-narrow' }, 'Failed at'),
      h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
    tbody);
  const rows = new Map();
  let stopped = false;
  let timer = null;

  function row(cb) {
    const key = `${cb.queue}/${cb.id}`;
    const result = h('span', { class: 'muted', role: 'status' });
    const retry = h('button', {
      type: 'button', 'aria-label': `Retry callback of ${cb.id}`,
      onclick: async () => {
        retry.disabled = true;
        result.textContent = 'Retrying…';
        try {
          const answer = await api.retryCallback(cb.queue, cb.id);
          if (answer.ok) {
            result.textContent = `Delivered: ${answer.message.status}`;
            toast(`Callback of ${cb.id} delivered`);
          } else {
            result.textContent = `Failed again: ${answer.error}`;
            retry.disabled = false;
          }
        } catch (error) {
          result.textContent = `${error.code}: ${error.message}`;
          retry.disabled = false;
        }
        load();
      },
    }, 'Retry');
    const cells = {
      reason: h('td', { class: 'body' }),
      attempts: h('td', { class: 'num' }),
      at: h('td', { class: 'hide-narrow' }),
    };
    const tr = h('tr', { dataset: { id: cb.id } },
      queue ? null : h('td', {}, h('a', { href: `#/queues/${encodeURIComponent(cb.queue)}/callbacks` }, cb.queue)),
      h('td', { class: 'mono' }, h('a', { href: `#/queues/${encodeURIComponent(cb.queue)}/lookup?id=${cb.id}` }, cb.id)),
      cells.reason, cells.attempts, cells.at,
      h('td', {}, h('div', { class: 'actions' }, retry, result)));
    return { key, tr, cells, retry, result };
  }

  async function load() {
    try {
      const list = await api.failedCallbacks();
      if (stopped) return;
      const shown = list.callbacks.filter((cb) => !queue || cb.queue === queue);
      const keys = new Set(shown.map((cb) => `${cb.queue}/${cb.id}`));
      // A row whose retry succeeded stays a moment with its result, then goes with the next poll.
      for (const [key, r] of rows) {
        if (!keys.has(key) && !r.leaving) { r.leaving = true; r.retry.disabled = true; }
        else if (!keys.has(key)) { r.tr.remove(); rows.delete(key); }
      }
      for (const cb of shown) {
        const key = `${cb.queue}/${cb.id}`;
        let r = rows.get(key);
        if (!r) { r = row(cb); rows.set(key, r); tbody.append(r.tr); }
        r.leaving = false;
        r.cells.reason.textContent = cb.reason || '–';
        r.cells.attempts.textContent = fmtInt(cb.attempts);
        r.cells.at.textContent = fmtTime(cb.failed_at);
      }
      status.textContent = shown.length === 0 ? 'No failed callbacks.' : `${fmtInt(shown.length)} failed callback${shown.length === 1 ? '' : 's'}.`;
    } catch (error) {
      if (!stopped) status.textContent = `Could not read the failed callbacks: ${error.message}`;
    }
  }

  function tick() {
    load().finally(() => { if (!stopped) timer = setTimeout(tick, POLL_MS); });
  }

  replace(panel, h('section', { class: 'panel', 'aria-label': 'Failed callbacks' },
    status, h('div', { class: 'table-wrap' }, table)));
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}
