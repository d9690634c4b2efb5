// The native API as the dashboard uses it, with the signed-in key (lib/auth.js) if any. Every failure becomes an ApiError carrying the
// server's stable error code and message, so pages can show exactly what went wrong.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

import { key } from './auth.js';

export async function call(method, path, body) {
  const init = { method, headers: {} };
  const k = key();
  if (k) init.headers.authorization = `Bearer ${k}`;
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, 'network', `the server did not answer (${error.message})`);
  }
  const text = await response.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!response.ok) {
    const detail = json && json.error ? json.error : { code: `http_${response.status}`, message: text || response.statusText };
    throw new ApiError(response.status, detail.code, detail.message);
  }
  return json;
}

const q = (name) => `/v1/queues/${encodeURIComponent(name)}`;

export const api = {
  server: () => call('GET', '/v1/server'),
  queues: () => call('GET', '/v1/queues'),
  queue: (name) => call('GET', q(name)),
  createQueue: (name, attributes) => call('PUT', q(name), attributes),
  updateQueue: (name, attributes) => call('PATCH', q(name), attributes),
  deleteQueue: (name) => call('DELETE', q(name)),
  purge: (name) => call('POST', `${q(name)}/purge`),
  send: (name, messages) => call('POST', `${q(name)}/messages`, { messages }),
  peek: (name, max, after) => call('GET', `${q(name)}/messages?max=${max}&after=${after}`),
  status: (name, id) => call('GET', `${q(name)}/messages/${encodeURIComponent(id)}`),
  redrive: (name, request = {}) => call('POST', `${q(name)}/redrive`, request),
  // The queue's push subscription, or {push: null} (a dashboard route: no 404 to log).
  push: (name) => call('GET', `/v1/dashboard/push/${encodeURIComponent(name)}`),
  failedCallbacks: (max = 1000) => call('GET', `/v1/callbacks/failed?max=${max}`),
  retryCallback: (queue, id) => call('POST', `${q(queue)}/messages/${encodeURIComponent(id)}/retry-callback`),
  schedules: () => call('GET', '/v1/schedules?max=1000'),
  fireSchedule: (name) => call('POST', `/v1/schedules/${encodeURIComponent(name)}/fire`),
  setSchedulePaused: (name, paused) => call('POST', `/v1/schedules/${encodeURIComponent(name)}/${paused ? 'pause' : 'resume'}`),
  streams: () => call('GET', '/v1/streams'),
  stream: (name) => call('GET', `/v1/streams/${encodeURIComponent(name)}`),
  pending: (stream, group, max = 100) => call('GET', `/v1/streams/${encodeURIComponent(stream)}/groups/${encodeURIComponent(group)}/pending?max=${max}`),
  topics: () => call('GET', '/v1/topics'),
  topic: (name) => call('GET', `/v1/topics/${encodeURIComponent(name)}`),
  sinks: () => call('GET', '/v1/sinks'),
  setSinkPaused: (name, paused) => call('POST', `/v1/sinks/${encodeURIComponent(name)}/${paused ? 'pause' : 'resume'}`),
  queueInfo: () => call('GET', '/api/events/queue-info'),
  performanceTest: (count, eventType) => call('POST', `/api/events/performance-test?count=${encodeURIComponent(count)}&eventType=${encodeURIComponent(eventType)}`),
};
