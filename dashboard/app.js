// The dashboard's entry: a hash router over the pages in pages/index.js, and the live
// connection every page shares. A page is {id, title, nav, match(path) → params | null,
// render(main, params) → cleanup?}; adding one is a new module and a line in pages/index.js.

import { h, replace } from './lib/dom.js';
import * as live from './lib/live.js';
import { pages } from './pages/index.js';

let cleanup = null;

function currentPath() {
  const hash = location.hash.replace(/^#/, '');
  return hash.startsWith('/') ? hash : '/';
}

function renderNav(active) {
  const nav = document.getElementById('nav');
  replace(nav, pages.filter((p) => p.nav).map((p) =>
    h('li', {}, h('a', {
      href: `#${p.nav}`,
      'aria-current': active && active.id === p.id ? 'page' : null,
    }, p.title))));
}

function route() {
  if (cleanup) {
    try { cleanup(); } catch (error) { console.warn('page cleanup failed', error); }
    cleanup = null;
  }
  const main = document.getElementById('main');
  const path = currentPath();
  let page = null;
  let params = null;
  for (const candidate of pages) {
    params = candidate.match(path);
    if (params) { page = candidate; break; }
  }
  renderNav(page && (page.navParent ? pages.find((p) => p.id === page.navParent) : page));
  if (!page) {
    replace(main, h('h1', {}, 'Not found'), h('p', {}, 'No page at ', h('code', {}, path), '. ', h('a', { href: '#/' }, 'Overview')));
    document.title = 'Baton';
    return;
  }
  document.title = `${typeof page.title === 'function' ? page.title(params) : page.title} · Baton`;
  replace(main);
  cleanup = page.render(main, params) || null;
}

window.addEventListener('hashchange', () => {
  // Arrow keys on a tab switch views: keep the focus on the (new) selected tab. Otherwise
  // move it to the new content, as a page load would.
  const fromTab = document.activeElement && document.activeElement.getAttribute('role') === 'tab';
  route();
  const tab = fromTab && document.querySelector('[role="tab"][aria-selected="true"]');
  if (tab) tab.focus();
  else document.getElementById('main').focus({ preventScroll: true });
});
live.start();
route();
