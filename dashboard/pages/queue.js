// One queue: live charts and attributes, message browsing (peek, nothing consumed), the send
// form with its advanced fields, message lookup with the status timeline, and dead letters
// with redrive.

import { h, replace, stat, fmtInt, fmtRate, fmtDuration, fmtTime, toast } from '../lib/dom.js';
import * as live from '../lib/live.js';
import { api } from '../lib/api.js';
import { LineChart } from '../lib/chart.js';
import { failedCallbacks } from './callbacks.js';

const TABS = [
  { id: 'overview', label: 'Overview' },
  { id: 'messages', label: 'Messages' },
  { id: 'send', label: 'Send' },
  { id: 'lookup', label: 'Lookup' },
  { id: 'dead-letters', label: 'Dead letters' },
  { id: 'callbacks', label: 'Callbacks & push' },
];

const PAGE_SIZE = 20;

export default {
  id: 'queue',
  title: (params) => params.name,
  navParent: 'queues',
  match(path) {
    const m = path.match(/^\/queues\/([^/?]+)(?:\/([a-z-]+))?(?:\?(.*))?$/);
    if (!m) return null;
    const tab = m[2] || 'overview';
    if (!TABS.some((t) => t.id === tab)) return null;
    return { name: decodeURIComponent(m[1]), tab, query: new URLSearchParams(m[3] || '') };
  },
  render(main, params) {
    const { name, tab } = params;
    const base = `#/queues/${encodeURIComponent(name)}`;
    const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Queue views' },
      TABS.map((t) => h('button', {
        type: 'button', role: 'tab', id: `tab-${t.id}`,
        'aria-selected': t.id === tab ? 'true' : 'false',
        tabindex: t.id === tab ? '0' : '-1',
        onclick: () => { location.hash = `${base}/${t.id}`; },
        onkeydown: (event) => {
          const i = TABS.findIndex((x) => x.id === tab);
          const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
          if (step) location.hash = `${base}/${TABS[(i + step + TABS.length) % TABS.length].id}`;
        },
      }, t.label)));
    const panel = h('div', { role: 'tabpanel', 'aria-labelledby': `tab-${tab}` });
    main.append(
      h('p', { class: 'muted' }, h('a', { href: '#/queues' }, 'Queues'), ' / '),
      h('h1', {}, name),
      tablist,
      panel);
    const views = { overview, messages, lookup, callbacks };
    if (views[tab]) return views[tab](panel, name, params);
    // Send and dead letters depend on the queue's attributes and its neighbours: read them
    // fresh rather than from a live snapshot that may not have arrived yet.
    const needsQueues = { send, 'dead-letters': deadLetters };
    api.queues().then(
      (list) => needsQueues[tab](panel, name, list.queues),
      (error) => panel.append(h('p', { role: 'alert' }, `Could not read the queues: ${error.message}`)));
    return undefined;
  },
};

function findQueue(snapshot, name) {
  return snapshot ? snapshot.queues.find((q) => q.name === name) : null;
}

function dlqSources(queues, name) {
  return queues.filter((q) => q.attributes.dead_letter && q.attributes.dead_letter.queue === name).map((q) => q.name);
}

// ---- Overview --------------------------------------------------------------------------------

function overview(panel, name) {
  const tiles = h('div', { class: 'grid', id: 'queue-tiles' });
  const attrs = h('section', { class: 'panel', 'aria-label': 'Attributes' });
  const missing = h('p', { class: 'empty', hidden: true }, `Queue ${name} does not exist (any more).`);
  const rates = new LineChart('Messages per second', [
    { key: 'sent', label: 'sent' },
    { key: 'received', label: 'received' },
    { key: 'acked', label: 'acked' },
    { key: 'dead_lettered', label: 'dead-lettered' },
  ]);
  const depth = new LineChart('Depth', [
    { key: 'visible', label: 'visible' },
    { key: 'in_flight', label: 'in flight' },
    { key: 'delayed', label: 'delayed' },
  ], { format: (n) => fmtInt(Math.round(n)) });
  panel.append(missing, tiles, h('div', { class: 'charts' }, rates.el, depth.el), attrs);
  let attrsShown = null;
  const pick = (s) => (findQueue(s, name) || {}).stats;
  const unsubscribe = live.subscribe((snapshot) => {
    const q = findQueue(snapshot, name);
    missing.hidden = Boolean(q);
    if (!q) return;
    const st = q.stats;
    replace(tiles,
      stat('Visible', fmtInt(st.visible), { id: 'stat-visible' }),
      stat('In flight', fmtInt(st.in_flight), { id: 'stat-in-flight' }),
      stat('Delayed', fmtInt(st.delayed), { id: 'stat-delayed' }),
      stat('Oldest message', fmtDuration(st.oldest_age_ms)),
      stat('Sent', fmtInt(st.sent_total)),
      stat('Received', fmtInt(st.received_total)),
      stat('Acked', fmtInt(st.acked_total)),
      stat('Nacked', fmtInt(st.nacked_total)),
      stat('Dead-lettered', fmtInt(st.dead_lettered_total), { bad: st.dead_lettered_total > 0 }),
      stat('Sent / s', fmtRate(live.lastRate(pick, 'sent'))));
    rates.update(live.rateSeries(pick, ['sent', 'received', 'acked', 'dead_lettered']));
    depth.update({
      visible: live.gaugeSeries((s) => (pick(s) || {}).visible),
      in_flight: live.gaugeSeries((s) => (pick(s) || {}).in_flight),
      delayed: live.gaugeSeries((s) => (pick(s) || {}).delayed),
    });
    const json = JSON.stringify(q.attributes);
    if (json !== attrsShown) {
      attrsShown = json;
      const a = q.attributes;
      replace(attrs, h('h2', {}, 'Attributes'), h('div', { class: 'grid' },
        kv('Kind', a.fifo ? 'FIFO' : 'standard'),
        kv('Visibility timeout', fmtDuration(a.visibility_timeout_ms)),
        kv('Delay', fmtDuration(a.delay_ms)),
        kv('Retention', fmtDuration(a.retention_ms)),
        kv('Max message size', `${fmtInt(a.max_message_bytes)} B`),
        kv('Receive wait', fmtDuration(a.receive_wait_ms)),
        kv('Dead-letter queue', a.dead_letter ? h('a', { href: `#/queues/${encodeURIComponent(a.dead_letter.queue)}` }, `${a.dead_letter.queue} after ${a.dead_letter.max_receive_count} receives`) : 'none'),
        kv('Content-based dedup', a.content_based_dedup ? 'yes' : 'no'),
        kv('Max depth', a.max_depth ? fmtInt(a.max_depth) : 'unbounded'),
        kv('Retry backoff', a.retry ? `${fmtDuration(a.retry.base_delay_ms)} doubling to ${fmtDuration(a.retry.max_delay_ms)}` : 'none')));
    }
  });
  return () => { unsubscribe(); rates.destroy(); depth.destroy(); };
}

function kv(label, value) {
  return h('div', { class: 'stat' }, h('div', { class: 'label' }, label), h('div', {}, value));
}

// ---- Messages (peek) -------------------------------------------------------------------------

/** A table of peeked messages with "load more"; `extra` adds columns for dead letters. */
function messageBrowser(name, { showSource = false } = {}) {
  const tbody = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  const status = h('p', { class: 'muted', role: 'status' });
  let after = 0;
  const table = h('table', { class: 'messages' },
    h('caption', { class: 'sr-only' }, `Messages of ${name}, oldest first`),
    h('thead', {}, h('tr', {},
      h('th', { class: 'num', scope: 'col' }, 'Seq'),
      h('th', { scope: 'col' }, 'State'),
      h('th', { scope: 'col' }, 'Body'),
      h('th', { class: 'num', scope: 'col' }, 'Receives'),
      h('th', { scope: 'col', class: 'hide-narrow' }, 'Sent'),
      h('th', { scope: 'col', class: 'hide-narrow' }, showSource ? 'Dead-lettered from' : 'Group'),
      h('th', { scope: 'col' }, 'Id'))),
    tbody);

  async function load(reset) {
    if (reset) { after = 0; tbody.replaceChildren(); }
    status.textContent = 'Loading…';
    try {
      const page = await api.peek(name, PAGE_SIZE, after);
      for (const m of page.messages) {
        const state = m.state === 'visible' ? 'visible' : `${m.state.replace('_', ' ')} until ${new Date(m.until).toLocaleTimeString()}`;
        tbody.append(h('tr', { dataset: { id: m.id } },
          h('td', { class: 'num' }, m.seq),
          h('td', {}, h('span', { class: `badge ${m.state}` }, state)),
          h('td', { class: 'body mono' }, m.body.length > 300 ? `${m.body.slice(0, 300)}…` : m.body),
          h('td', { class: 'num' }, m.receive_count),
          h('td', { class: 'hide-narrow' }, fmtTime(m.sent_at)),
          h('td', { class: 'hide-narrow' }, showSource ? (m.dead_letter_source || '–') : (m.group_id || '–')),
          h('td', { class: 'mono' }, h('a', { href: `#/queues/${encodeURIComponent(name)}/lookup?id=${m.id}` }, m.id))));
      }
      if (page.next_after !== null && page.next_after !== undefined) after = page.next_after;
      more.hidden = page.next_after === null || page.next_after === undefined;
      const n = tbody.children.length;
      status.textContent = n === 0 ? 'No messages.' : `${fmtInt(n)} message${n === 1 ? '' : 's'} shown, oldest first. Browsing consumes nothing.`;
    } catch (error) {
      status.textContent = `Could not load messages: ${error.message}`;
    }
  }
  more.addEventListener('click', () => load(false));
  const refresh = h('button', { type: 'button', onclick: () => load(true) }, 'Refresh');
  const el = h('section', { class: 'panel', 'aria-label': 'Messages' },
    h('div', { class: 'actions' }, refresh), status, h('div', { class: 'table-wrap' }, table), more);
  load(true);
  return { el, reload: () => load(true) };
}

function messages(panel, name) {
  panel.append(messageBrowser(name).el);
}

// ---- Send ------------------------------------------------------------------------------------

/** "Name: value" or "name=value" lines → object; throws on a malformed line. */
function parsePairs(text, separator, what) {
  const out = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf(separator);
    if (at <= 0) throw new Error(`${what}: "${line}" is not "name${separator}value"`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

function send(panel, name, queues) {
  const q = queues.find((x) => x.name === name);
  const fifo = q ? q.attributes.fifo : name.endsWith('.fifo');
  const field = (label, input, hint) => h('label', {}, label, input, hint ? h('span', { class: 'muted' }, hint) : null);
  const body = h('textarea', { name: 'body', required: true, placeholder: '{"order": 1001}' });
  const attributes = h('textarea', { name: 'attributes', placeholder: 'customer=ada\npriority=high', rows: 2 });
  const group = h('input', { name: 'group_id', placeholder: fifo ? 'required on FIFO queues' : 'FIFO queues only', autocomplete: 'off' });
  const dedup = h('input', { name: 'dedup_id', autocomplete: 'off' });
  const delay = h('input', { name: 'delay_ms', type: 'number', min: 0, max: 900000 });
  const notifyUrl = h('input', { name: 'notify_url', type: 'url', placeholder: 'https://example.test/done' });
  const notifyHeaders = h('textarea', { name: 'notify_headers', placeholder: 'X-Token: secret', rows: 2 });
  const visibility = h('input', { name: 'visibility_timeout_ms', type: 'number', min: 0, max: 43200000, placeholder: q ? String(q.attributes.visibility_timeout_ms) : '' });
  const hasDlq = Boolean(q && q.attributes.dead_letter);
  const retries = h('input', {
    name: 'max_receive_count', type: 'number', min: 1, max: 1000, disabled: !hasDlq,
    placeholder: hasDlq ? String(q.attributes.dead_letter.max_receive_count) : 'needs a dead-letter queue',
  });
  const result = h('div', { role: 'status', 'aria-live': 'polite' });
  const advanced = h('details', { id: 'advanced' },
    h('summary', {}, 'Advanced'),
    h('fieldset', {}, h('legend', {}, 'This message'),
      h('div', { class: 'row' },
        field('Group id', group),
        field('Dedup id', dedup, 'a repeat within 5 min is not enqueued again'),
        field('Delay (ms)', delay)),
      field('Notify URL (called when the message is acked)', notifyUrl),
      field('Notify headers (one "Name: value" per line)', notifyHeaders)),
    h('fieldset', {}, h('legend', {}, 'Processing policy of the queue (applies to all its messages)'),
      h('div', { class: 'row' },
        field('Visibility timeout (ms)', visibility),
        field('Retries: receives before dead-lettering', retries))));
  const form = h('form', {
    class: 'panel stack', 'aria-label': 'Send a message',
    onsubmit: async (event) => {
      event.preventDefault();
      replace(result);
      const message = { body: body.value };
      try {
        const attrs = parsePairs(attributes.value, '=', 'Attributes');
        if (Object.keys(attrs).length) message.attributes = attrs;
        if (group.value.trim()) message.group_id = group.value.trim();
        if (dedup.value.trim()) message.dedup_id = dedup.value.trim();
        if (delay.value !== '') message.delay_ms = Number(delay.value);
        if (notifyUrl.value.trim()) {
          message.notify = { url: notifyUrl.value.trim() };
          const headers = parsePairs(notifyHeaders.value, ':', 'Notify headers');
          if (Object.keys(headers).length) message.notify.headers = headers;
        }
        const patch = {};
        if (visibility.value !== '') patch.visibility_timeout_ms = Number(visibility.value);
        if (retries.value !== '' && hasDlq) patch.dead_letter = { queue: q.attributes.dead_letter.queue, max_receive_count: Number(retries.value) };
        if (Object.keys(patch).length) await api.updateQueue(name, patch);
        const answer = await api.send(name, [message]);
        const sent = answer.messages[0];
        replace(result, h('p', {},
          sent.duplicate ? 'Duplicate of ' : 'Sent ',
          h('a', { id: 'sent-id', href: `#/queues/${encodeURIComponent(name)}/lookup?id=${sent.id}`, class: 'mono' }, sent.id),
          ` (seq ${sent.seq}). `,
          h('a', { href: `#/queues/${encodeURIComponent(name)}/lookup?id=${sent.id}` }, 'Look up its status')));
        toast(sent.duplicate ? 'Duplicate: not enqueued again' : 'Message sent');
      } catch (error) {
        replace(result, h('p', { class: 'error', role: 'alert' }, `${error.code ? `${error.code}: ` : ''}${error.message}`));
      }
    },
  },
  h('h2', {}, 'Send a message'),
  field('Body', body),
  field('Attributes (one "name=value" per line)', attributes),
  advanced,
  h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Send')),
  result);
  if (fifo) advanced.open = true;
  panel.append(form);
}

// ---- Lookup ----------------------------------------------------------------------------------

function lookup(panel, name, params) {
  const id = h('input', { name: 'id', required: true, placeholder: 'message id (a UUID)', autocomplete: 'off', size: 40 });
  const out = h('div', { id: 'lookup-result', 'aria-live': 'polite' });
  async function run(value) {
    replace(out, h('p', { class: 'muted' }, 'Looking up…'));
    try {
      const status = await api.status(name, value);
      replace(out, h('section', { class: 'panel', 'aria-label': 'Message status' },
        h('h2', {}, 'Status ', h('span', { class: `badge ${status.status}`, id: 'message-status' }, status.status)),
        h('p', { class: 'mono' }, status.id),
        h('ol', { class: 'timeline', 'aria-label': 'History' }, status.history.map((e) =>
          h('li', {},
            h('div', {}, h('span', { class: 'event' }, e.event.replace('_', ' ')), ` · receive ${e.receive_count}`),
            h('div', { class: 'muted' }, fmtTime(e.at), e.detail ? ` · ${e.detail}` : ''))))));
    } catch (error) {
      replace(out, h('p', { role: 'alert' }, `${error.code}: ${error.message}`));
    }
  }
  const form = h('form', {
    class: 'panel inline', 'aria-label': 'Look up a message',
    onsubmit: (event) => {
      event.preventDefault();
      const value = id.value.trim();
      location.hash = `#/queues/${encodeURIComponent(name)}/lookup?id=${encodeURIComponent(value)}`;
    },
  }, h('label', {}, 'Message id', id), h('button', { class: 'primary', type: 'submit' }, 'Look up'));
  panel.append(form, out);
  const preset = params.query.get('id');
  if (preset) { id.value = preset; run(preset); }
}

// ---- Dead letters ----------------------------------------------------------------------------

function deadLetters(panel, name, queues) {
  const q = queues.find((x) => x.name === name);
  const sources = dlqSources(queues, name);
  if (q && q.attributes.dead_letter) {
    const dlq = q.attributes.dead_letter.queue;
    panel.append(h('section', { class: 'panel' },
      h('p', {}, `Messages of ${name} go to `, h('a', { href: `#/queues/${encodeURIComponent(dlq)}/dead-letters` }, dlq),
        ` after ${q.attributes.dead_letter.max_receive_count} receives.`)));
  }
  if (!sources.length && !(q && q.attributes.dead_letter)) {
    panel.append(h('p', { class: 'empty' }, `${name} has no dead-letter queue and is no other queue's dead-letter queue.`));
    return;
  }
  if (!sources.length) return;
  const browser = messageBrowser(name, { showSource: true });
  const result = h('p', { role: 'status', 'aria-live': 'polite' });
  const redrive = h('button', {
    type: 'button', class: 'primary', id: 'redrive',
    onclick: async () => {
      redrive.disabled = true;
      try {
        const answer = await api.redrive(name);
        result.textContent = `Moved ${fmtInt(answer.moved)} message${answer.moved === 1 ? '' : 's'} back to where they came from.`;
        toast(result.textContent);
        browser.reload();
      } catch (error) {
        result.textContent = `Redrive failed: ${error.code}: ${error.message}`;
      } finally {
        redrive.disabled = false;
      }
    },
  }, 'Redrive all to their source queues');
  panel.append(h('section', { class: 'panel' },
    h('h2', {}, 'Dead-letter queue'),
    h('p', {}, `${name} is the dead-letter queue of `, sources.map((s, i) => [i ? ', ' : '', h('a', { href: `#/queues/${encodeURIComponent(s)}` }, s)]), '.'),
    h('div', { class: 'actions' }, redrive), result), browser.el);
}

// ---- Callbacks and push ----------------------------------------------------------------------

/** The queue's push subscription (target, counters, breaker) and its failed callbacks. */
function callbacks(panel, name) {
  const push = h('section', { class: 'panel', 'aria-label': 'Push delivery', id: 'push-status' }, h('h2', {}, 'Push delivery'), h('p', { class: 'muted' }, 'Loading…'));
  const list = h('div');
  panel.append(push, h('h2', { class: 'section' }, 'Failed callbacks'), list);
  let stopped = false;
  let timer = null;
  async function loadPush() {
    try {
      const { push: info } = await api.push(name);
      if (stopped) return;
      if (!info) {
        replace(push, h('h2', {}, 'Push delivery'), h('p', { class: 'muted' }, 'No push subscription: consumers receive from this queue themselves.'));
        return;
      }
      const st = info.stats;
      replace(push, h('h2', {}, 'Push delivery ', h('span', { class: `badge breaker-${st.breaker}`, id: 'push-breaker' }, `breaker ${st.breaker.replace('_', '-')}`)),
        h('p', { class: 'mono' }, info.url),
        h('div', { class: 'grid' },
          kv('Delivered', fmtInt(st.delivered_total)),
          kv('Failed', fmtInt(st.failed_total)),
          kv('In flight', `${fmtInt(st.in_flight)} of ${fmtInt(info.concurrency)}`),
          kv('Breaker opened', `${fmtInt(st.breaker_opened_total)} times`),
          kv('Timeout', fmtDuration(info.timeout_ms)),
          kv('Rate limit', info.rate_per_s ? `${fmtInt(info.rate_per_s)} / s` : 'none')));
    } catch (error) {
      if (!stopped) replace(push, h('h2', {}, 'Push delivery'), h('p', { role: 'alert' }, `Could not read the push subscription: ${error.message}`));
    }
  }
  function tick() {
    loadPush().finally(() => { if (!stopped) timer = setTimeout(tick, 2000); });
  }
  tick();
  const stopList = failedCallbacks(list, name);
  return () => { stopped = true; clearTimeout(timer); stopList(); };
}
