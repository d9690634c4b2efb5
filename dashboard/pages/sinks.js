// Sinks into PostgreSQL (`GET /v1/sinks`): each sink's source, table, state, rows written,
// lag and last error, with pause and resume. Polled, since sinks are not in the live stream.

import { h, replace, fmtInt, fmtTime, toast } from '../lib/dom.js';
import { api } from '../lib/api.js';

const POLL_MS = 2000;

function sourceOf(s) {
  if (s.stream) return s.group ? `stream ${s.stream} (group ${s.group})` : `stream ${s.stream}`;
  if (s.queue) return `queue ${s.queue}`;
  if (s.topic) return s.pattern ? `topic ${s.topic} (${s.pattern})` : `topic ${s.topic}`;
  return '–';
}

export default {
  id: 'sinks',
  title: 'Sinks',
  nav: '/sinks',
  match: (path) => (path === '/sinks' ? {} : null),
  render(main) {
    main.append(h('h1', {}, 'Sinks'),
      h('p', { class: 'muted' }, 'Streams, queues and topics archived into PostgreSQL, each message once. A sink that cannot reach PostgreSQL is retrying: it waits, tries again by itself and catches up; the source keeps the messages meanwhile.'));
    const status = h('p', { class: 'muted', role: 'status' });
    const tbody = h('tbody');
    const table = h('table', { id: 'sinks-table' },
      h('caption', { class: 'sr-only' }, 'Sinks'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Sink'),
        h('th', { scope: 'col' }, 'Source'),
        h('th', { scope: 'col' }, 'Table'),
        h('th', { scope: 'col' }, 'State'),
        h('th', { class: 'num', scope: 'col' }, 'Rows written'),
        h('th', { class: 'num', scope: 'col' }, 'Lag'),
        h('th', { class: 'num', scope: 'col' }, 'Errors'),
        h('th', { scope: 'col', class: 'hide-narrow' }, 'Last error'),
        h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      tbody);
    main.append(h('section', { class: 'panel', 'aria-label': 'Sinks' }, status, h('div', { class: 'table-wrap' }, table)));
    let stopped = false;
    let timer = null;

    function row(sink) {
      const paused = sink.state === 'paused';
      const toggle = h('button', {
        type: 'button', 'aria-label': `${paused ? 'Resume' : 'Pause'} sink ${sink.name}`,
        onclick: async () => {
          toggle.disabled = true;
          try {
            await api.setSinkPaused(sink.name, !paused);
            toast(`Sink ${sink.name} ${paused ? 'resumed' : 'paused'}`);
          } catch (error) {
            toast(`${error.code}: ${error.message}`, 'error');
          }
          load();
        },
      }, paused ? 'Resume' : 'Pause');
      const error = sink.stats.last_error
        ? `${sink.stats.last_error} (${fmtTime(sink.stats.last_error_at)})`
        : '–';
      return h('tr', { dataset: { name: sink.name, state: sink.state } },
        h('td', { class: 'mono' }, sink.name),
        h('td', {}, sourceOf(sink.definition.source)),
        h('td', { class: 'mono' }, sink.definition.postgres.table),
        h('td', {}, h('span', { class: `badge state-${sink.state}` }, sink.state)),
        h('td', { class: 'num' }, fmtInt(sink.stats.rows_written_total)),
        h('td', { class: 'num' }, fmtInt(sink.stats.lag)),
        h('td', { class: 'num' }, fmtInt(sink.stats.errors_total)),
        h('td', { class: 'body hide-narrow' }, error),
        h('td', {}, h('div', { class: 'actions' }, toggle)));
    }

    async function load() {
      try {
        const { sinks } = await api.sinks();
        if (stopped) return;
        replace(tbody, ...sinks.map(row));
        status.textContent = sinks.length === 0
          ? 'No sinks. Create one with `baton sink put` or PUT /v1/sinks/{name}.'
          : `${fmtInt(sinks.length)} sink${sinks.length === 1 ? '' : 's'}.`;
      } catch (error) {
        if (!stopped) status.textContent = `Could not read the sinks: ${error.message}`;
      }
    }

    function tick() {
      load().finally(() => { if (!stopped) timer = setTimeout(tick, POLL_MS); });
    }
    tick();
    return () => { stopped = true; clearTimeout(timer); };
  },
};
