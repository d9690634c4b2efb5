// Topics: a table of every topic with its counters, and a topic page with its subscriptions
// (target, routing pattern, attribute filter) and a live tail over the topic's SSE endpoint
// (`/v1/topics/{t}/live?pattern=`), newest first and bounded. Counters are polled.

import { h, replace, stat, fmtInt, fmtTime } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { withTicket } from '../lib/auth.js';

const POLL_MS = 2000;
/** Messages the tail keeps on screen. */
const TAIL_MAX = 200;

function poll(load) {
  let stopped = false;
  let timer = null;
  const tick = () => load(() => stopped).finally(() => { if (!stopped) timer = setTimeout(tick, POLL_MS); });
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

const topicHref = (name) => `#/topics/${encodeURIComponent(name)}`;

function target(t) {
  if (t.queue) return h('span', {}, 'queue ', h('a', { href: `#/queues/${encodeURIComponent(t.queue)}` }, t.queue));
  if (t.stream) return h('span', {}, 'stream ', h('a', { href: `#/streams/${encodeURIComponent(t.stream)}` }, t.stream));
  if (t.url) return h('span', { class: 'mono' }, t.url);
  return '–';
}

export const topicsPage = {
  id: 'topics',
  title: 'Topics',
  nav: '/topics',
  match: (path) => (path === '/topics' ? {} : null),
  render(main) {
    const status = h('p', { class: 'muted', role: 'status' });
    const tbody = h('tbody');
    const t = h('table', { id: 'topics-table' },
      h('caption', { class: 'sr-only' }, 'Topics'),
      h('thead', {}, h('tr', {},
        ['Topic', 'Subscriptions', 'Published', 'Delivered', 'Unmatched', 'Live'].map((label, i) =>
          h('th', { scope: 'col', class: i ? `num${i > 3 ? ' hide-narrow' : ''}` : null }, label)))),
      tbody);
    main.append(h('h1', {}, 'Topics'), h('section', { class: 'panel' }, status, h('div', { class: 'table-wrap' }, t)));
    return poll(async (stopped) => {
      try {
        const { topics } = await api.topics();
        if (stopped()) return;
        replace(tbody, topics.map((x) => h('tr', { dataset: { topic: x.name } },
          h('td', {}, h('a', { href: topicHref(x.name) }, x.name)),
          h('td', { class: 'num' }, fmtInt(x.subscriptions.length)),
          h('td', { class: 'num' }, fmtInt(x.stats.published_total)),
          h('td', { class: 'num' }, fmtInt(x.stats.delivered_total)),
          h('td', { class: 'num hide-narrow' }, fmtInt(x.stats.unmatched_total)),
          h('td', { class: 'num hide-narrow' }, fmtInt(x.stats.live_subscribers)))));
        status.textContent = topics.length ? `${fmtInt(topics.length)} topic${topics.length === 1 ? '' : 's'}.` : 'No topics yet. Create one with PUT /v1/topics/{name} (see docs/api.md).';
      } catch (error) {
        if (!stopped()) status.textContent = `Could not read the topics: ${error.message}`;
      }
    });
  },
};

export const topicPage = {
  id: 'topic',
  title: (params) => params.name,
  navParent: 'topics',
  match(path) {
    const m = path.match(/^\/topics\/([^/?]+)$/);
    return m ? { name: decodeURIComponent(m[1]) } : null;
  },
  render(main, { name }) {
    const status = h('p', { class: 'muted', role: 'status' });
    const tiles = h('div', { class: 'grid', id: 'topic-tiles' });
    const subs = h('tbody');
    const subsTable = h('table', { id: 'subscriptions-table' },
      h('caption', { class: 'sr-only' }, `Subscriptions of ${name}`),
      h('thead', {}, h('tr', {}, ['Subscription', 'Target', 'Pattern', 'Filter'].map((l) => h('th', { scope: 'col' }, l)))),
      subs);

    // The live tail.
    const pattern = h('input', { name: 'pattern', placeholder: 'all messages, or e.g. order.#', autocomplete: 'off' });
    const toggle = h('button', { type: 'submit', class: 'primary', id: 'tail-toggle' }, 'Start tail');
    const tailStatus = h('p', { class: 'muted', role: 'status', id: 'tail-status' }, 'Not tailing.');
    const tail = h('ol', { class: 'tail', id: 'tail', 'aria-label': 'Messages, newest first' });
    let source = null;
    let received = 0;
    function stopTail(text) {
      if (source) source.close();
      source = null;
      toggle.textContent = 'Start tail';
      pattern.disabled = false;
      if (text) tailStatus.textContent = text;
    }
    async function startTail() {
      const p = pattern.value.trim();
      // Refuse what the server would refuse, rather than have the browser log a 400.
      if (p && !p.split('.').every((word) => word === '*' || word === '#' || /^[^\s*#]+$/.test(word))) {
        tailStatus.textContent = 'A pattern is dot-separated words; * is one word, # any number of words.';
        return;
      }
      received = 0;
      replace(tail);
      const path = `/v1/topics/${encodeURIComponent(name)}/live${p ? `?pattern=${encodeURIComponent(p)}` : ''}`;
      try {
        source = new EventSource(await withTicket(path));
      } catch (error) {
        tailStatus.textContent = `Cannot open the live stream: ${error.message}`;
        return;
      }
      toggle.textContent = 'Stop tail';
      pattern.disabled = true;
      tailStatus.textContent = 'Connecting…';
      source.addEventListener('open', () => { tailStatus.textContent = `Tailing ${p ? `messages matching ${p}` : 'every message'}; ${fmtInt(received)} received.`; });
      source.addEventListener('message', (event) => {
        const m = JSON.parse(event.data);
        received += 1;
        const attrs = Object.entries(m.attributes || {}).map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? v.value : v}`).join(', ');
        tail.prepend(h('li', { dataset: { id: m.id } },
          h('div', {}, h('span', { class: 'badge' }, m.routing_key || '(no key)'), ' ', h('span', { class: 'muted' }, fmtTime(m.published_at))),
          h('div', { class: 'mono body' }, m.body.length > 500 ? `${m.body.slice(0, 500)}…` : m.body),
          attrs ? h('div', { class: 'muted' }, attrs) : null));
        while (tail.children.length > TAIL_MAX) tail.lastElementChild.remove();
        tailStatus.textContent = `Tailing ${p ? `messages matching ${p}` : 'every message'}; ${fmtInt(received)} received${received > TAIL_MAX ? `, the newest ${TAIL_MAX} shown` : ''}.`;
      });
      source.addEventListener('dropped', (event) => {
        const d = JSON.parse(event.data);
        tail.prepend(h('li', { class: 'error' }, `${fmtInt(d.dropped)} messages dropped: this page did not keep up.`));
      });
      // EventSource retries by itself after a network error; a refused stream (404, 429) ends it.
      source.addEventListener('error', () => {
        if (source && source.readyState === EventSource.CLOSED) stopTail('The live stream ended (the topic may be gone, or too many live connections are open).');
        else tailStatus.textContent = 'Reconnecting…';
      });
    }
    const form = h('form', {
      class: 'panel stack', 'aria-label': 'Live tail',
      onsubmit: (event) => {
        event.preventDefault();
        if (source) stopTail(`Stopped after ${fmtInt(received)} messages.`);
        else startTail();
      },
    },
    h('h2', {}, 'Live tail'),
    h('p', { class: 'muted' }, 'Messages published while the tail is open, in publish order. Nothing is consumed from any queue.'),
    h('div', { class: 'row' }, h('label', {}, 'Routing pattern (optional)', pattern)),
    h('div', { class: 'actions' }, toggle),
    tailStatus,
    tail);

    main.append(
      h('p', { class: 'muted' }, h('a', { href: '#/topics' }, 'Topics'), ' / '),
      h('h1', {}, name), status, tiles,
      h('section', { class: 'panel', 'aria-label': 'Subscriptions' }, h('h2', {}, 'Subscriptions'), h('div', { class: 'table-wrap' }, subsTable)),
      form);

    let shown = '';
    const stopPoll = poll(async (stopped) => {
      try {
        const t = await api.topic(name);
        if (stopped()) return;
        status.textContent = '';
        replace(tiles,
          stat('Subscriptions', fmtInt(t.subscriptions.length)),
          stat('Published', fmtInt(t.stats.published_total), { id: 'stat-published' }),
          stat('Delivered', fmtInt(t.stats.delivered_total)),
          stat('Unmatched', fmtInt(t.stats.unmatched_total)),
          stat('Live subscribers', fmtInt(t.stats.live_subscribers)),
          stat('Live dropped', fmtInt(t.stats.live_dropped_total), { bad: t.stats.live_dropped_total > 0 }));
        const json = JSON.stringify(t.subscriptions);
        if (json === shown) return;
        shown = json;
        replace(subs, t.subscriptions.length ? t.subscriptions.map((s) => h('tr', { dataset: { subscription: s.name } },
          h('td', {}, s.name),
          h('td', {}, target(s.target)),
          h('td', { class: 'mono' }, s.pattern || 'every key'),
          h('td', { class: 'mono body' }, s.filter ? JSON.stringify(s.filter) : 'none'))) : h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No subscriptions: published messages reach only live tails.')));
      } catch (error) {
        if (!stopped()) status.textContent = `Could not read topic ${name}: ${error.message}`;
      }
    });
    return () => { stopPoll(); stopTail(); };
  },
};
