// Signing in on a server with API keys. The key is kept in this tab's sessionStorage only
// (gone when the tab closes, never sent to another tab), sent as `Authorization: Bearer` on
// API calls; live streams, which a browser opens without headers, get a short-lived ticket
// from POST /v1/tickets instead (docs/security.md, "Live streams and browsers").

const STORAGE = 'baton.key';

export function key() {
  return sessionStorage.getItem(STORAGE);
}

export function setKey(value) {
  sessionStorage.setItem(STORAGE, value);
}

export function signOut() {
  sessionStorage.removeItem(STORAGE);
}

/** Whether the server asks for a key (`/ready` says so; it is open to everyone). */
export async function keysRequired() {
  try {
    const response = await fetch('/ready');
    const readiness = await response.json();
    return Boolean(readiness.keys_required);
  } catch {
    return false;
  }
}

/**
 * Checks the stored key by asking for a ticket: `{ok: true, name}` or `{ok: false, message}`
 * (the key is forgotten then).
 */
export async function check() {
  const k = key();
  if (!k) return { ok: false, message: '' };
  const response = await fetch('/v1/tickets', { method: 'POST', headers: { authorization: `Bearer ${k}` } });
  const body = await response.json().catch(() => ({}));
  if (response.ok) return { ok: true, name: body.key };
  signOut();
  return { ok: false, message: (body.error && body.error.message) || `HTTP ${response.status}` };
}

/** `path` with a fresh ticket for the stored key, if there is one (for EventSource). */
export async function withTicket(path) {
  const k = key();
  if (!k) return path;
  const response = await fetch('/v1/tickets', { method: 'POST', headers: { authorization: `Bearer ${k}` } });
  if (!response.ok) throw new Error(`no ticket: HTTP ${response.status}`);
  const { ticket } = await response.json();
  if (!ticket) return path;
  return `${path}${path.includes('?') ? '&' : '?'}ticket=${encodeURIComponent(ticket)}`;
}
