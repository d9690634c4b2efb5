// The dashboard's entry: the sign-in on a server with API keys (lib/auth.js), a hash router
// over the pages in pages/index.js, and the live connection every page shares. A page is {id, title, nav, match(path) → params | null,
// render(main, params) → cleanup?}; adding one is a new module and a line in pages/index.js.

import * as auth from './lib/auth.js';
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

function onHashChange() {
  // Arrow keys on a tab switch views: keep the focus on the (new) selected tab. Otherwise
  // move it to the new content, as a page load would.
  const fromTab = document.activeElement && document.activeElement.getAttribute('role') === 'tab';
  route();
  const tab = fromTab && document.querySelector('[role="tab"][aria-selected="true"]');
  if (tab) tab.focus();
  else document.getElementById('main').focus({ preventScroll: true });
}

/** Who is signed in, with a way out; nothing on a server without keys. */
function showWho(name) {
  const who = document.getElementById('who');
  if (!name) {
    replace(who);
    return;
  }
  replace(who, h('span', {}, 'Signed in as ', h('strong', {}, name)), ' ',
    h('button', { type: 'button', class: 'link', id: 'sign-out', onclick: signOut }, 'Sign out'));
}

function signOut() {
  auth.signOut();
  live.stop();
  window.removeEventListener('hashchange', onHashChange);
  if (cleanup) {
    try { cleanup(); } catch (error) { console.warn('page cleanup failed', error); }
    cleanup = null;
  }
  showWho(null);
  signInPage('');
}

/** The sign-in form: the page shows nothing else until a valid key is given. */
function signInPage(message) {
  replace(document.getElementById('nav'));
  document.title = 'Sign in · Baton';
  const input = h('input', {
    type: 'password', id: 'api-key', name: 'key', autocomplete: 'off', required: true,
    spellcheck: 'false', 'aria-describedby': 'signin-help',
  });
  const error = h('p', { class: 'error', role: 'alert', id: 'signin-error' }, message);
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', {
    class: 'panel stack signin', 'aria-label': 'Sign in',
    onsubmit: async (event) => {
      event.preventDefault();
      button.disabled = true;
      auth.setKey(input.value.trim());
      const result = await auth.check();
      button.disabled = false;
      if (result.ok) {
        begin(result.name);
      } else {
        error.textContent = `That key is not valid: ${result.message}`;
        input.select();
      }
    },
  },
  h('h1', {}, 'Sign in'),
  h('p', { id: 'signin-help', class: 'muted' }, 'This Baton server needs an API key. The dashboard keeps it in this tab only, until you sign out or close the tab, and shows what the key may see.'),
  h('label', { for: 'api-key' }, 'API key'), input, button, error);
  replace(document.getElementById('main'), form);
  input.focus();
}

function begin(name) {
  showWho(name);
  window.addEventListener('hashchange', onHashChange);
  live.start();
  route();
}

async function boot() {
  if (!(await auth.keysRequired())) {
    begin(null);
    return;
  }
  const result = await auth.check();
  if (result.ok) begin(result.name);
  else signInPage(result.message ? `The key of this tab is no longer valid: ${result.message}` : '');
}

boot();
