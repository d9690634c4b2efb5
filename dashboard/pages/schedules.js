// Schedules (`GET /v1/schedules`): every schedule with when it fires, where to, its state,
// its next fire time and its last outcome, with Pause/Resume and Fire now per schedule.
// Schedules are not in the live stats stream, so the page polls.

import { h, replace, fmtInt, fmtTime, toast } from '../lib/dom.js';
import { api } from '../lib/api.js';

const POLL_MS = 2000;

const when = (s) => (s.cron ? `${s.cron} (${s.timezone})` : `once at ${fmtTime(s.at)}`);
const target = (s) => {
  const t = s.target;
  if (t.queue) return `queue ${t.queue}`;
  if (t.topic) return `topic ${t.topic}`;
  return `stream ${t.stream}`;
};
const outcome = (o) => (o ? `${o.ok ? 'ok' : 'failed'}${o.manual ? ' (fired by hand)' : ''} at ${fmtTime(o.fired_at)}: ${o.detail}` : '–');

export default {
  id: 'schedules',
  title: 'Schedules',
  nav: '/schedules',
  match: (path) => (path === '/schedules' ? {} : null),
  render(main) {
    const status = h('p', { class: 'muted', role: 'status' });
    const tbody = h('tbody');
    const table = h('table', { id: 'schedules-table' },
      h('caption', { class: 'sr-only' }, 'Schedules'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Schedule'),
        h('th', { scope: 'col' }, 'When'),
        h('th', { scope: 'col', class: 'hide-narrow' }, 'Target'),
        h('th', { scope: 'col' }, 'State'),
        h('th', { scope: 'col' }, 'Next fire'),
        h('th', { scope: 'col', class: 'hide-narrow' }, 'Last outcome'),
        h('th', { scope: 'col', class: 'num hide-narrow' }, 'Fired'),
        h('th', { scope: 'col', class: 'num hide-narrow' }, 'Missed'),
        h('th', { scope: 'col', class: 'num hide-narrow' }, 'Failures'),
        h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      tbody);
    main.append(h('h1', {}, 'Schedules'),
      h('p', { class: 'muted' }, 'Cron and one-shot schedules: each tick sends one message to its queue, topic or stream, once, even across restarts. Pause stops the ticks (they do not fire later); Fire now sends the message at once without moving the schedule.'),
      h('section', { class: 'panel', 'aria-label': 'Schedules' }, status, h('div', { class: 'table-wrap' }, table)));
    const rows = new Map();
    let stopped = false;
    let timer = null;

    async function act(name, what, button) {
      button.disabled = true;
      try {
        if (what === 'fire') {
          const answer = await api.fireSchedule(name);
          toast(`Fired ${name}: ${answer.outcome.detail}`);
        } else {
          await api.setSchedulePaused(name, what === 'pause');
          toast(`${what === 'pause' ? 'Paused' : 'Resumed'} ${name}`);
        }
      } catch (error) {
        toast(`${error.code}: ${error.message}`, 'error');
      }
      button.disabled = false;
      load();
    }

    function row(name) {
      const cells = {
        when: h('td', { class: 'mono' }), target: h('td', { class: 'hide-narrow' }),
        state: h('td'), next: h('td'), last: h('td', { class: 'body hide-narrow' }),
        fired: h('td', { class: 'num hide-narrow' }), missed: h('td', { class: 'num hide-narrow' }),
        failures: h('td', { class: 'num hide-narrow' }),
      };
      const toggle = h('button', { type: 'button', onclick: () => act(name, toggle.dataset.action, toggle) });
      const fire = h('button', { type: 'button', 'aria-label': `Fire ${name} now`, onclick: () => act(name, 'fire', fire) }, 'Fire now');
      const tr = h('tr', { dataset: { name } }, h('td', { class: 'mono' }, name),
        cells.when, cells.target, cells.state, cells.next, cells.last, cells.fired, cells.missed, cells.failures,
        h('td', {}, h('div', { class: 'actions' }, toggle, fire)));
      return { tr, cells, toggle };
    }

    async function load() {
      try {
        const list = await api.schedules();
        if (stopped) return;
        const names = new Set(list.schedules.map((s) => s.name));
        for (const [name, r] of rows) if (!names.has(name)) { r.tr.remove(); rows.delete(name); }
        for (const s of list.schedules) {
          let r = rows.get(s.name);
          if (!r) { r = row(s.name); rows.set(s.name, r); tbody.append(r.tr); }
          r.cells.when.textContent = when(s);
          r.cells.target.textContent = target(s);
          r.cells.state.textContent = s.state;
          r.cells.next.textContent = s.next_fires.length ? fmtTime(s.next_fires[0]) : '–';
          r.cells.last.textContent = outcome(s.last_outcome);
          r.cells.fired.textContent = fmtInt(s.fired);
          r.cells.missed.textContent = fmtInt(s.missed_ticks);
          r.cells.failures.textContent = fmtInt(s.failures);
          r.toggle.dataset.action = s.paused ? 'resume' : 'pause';
          r.toggle.textContent = s.paused ? 'Resume' : 'Pause';
          r.toggle.setAttribute('aria-label', `${s.paused ? 'Resume' : 'Pause'} ${s.name}`);
        }
        const n = list.schedules.length;
        status.textContent = n === 0 ? 'No schedules. Create one with PUT /v1/schedules/{name} or baton schedule put.' : `${fmtInt(n)} schedule${n === 1 ? '' : 's'}.`;
      } catch (error) {
        if (!stopped) status.textContent = `Could not read the schedules: ${error.message}`;
      }
    }

    const tick = () => load().finally(() => { if (!stopped) timer = setTimeout(tick, POLL_MS); });
    tick();
    return () => { stopped = true; clearTimeout(timer); replace(tbody); };
  },
};
