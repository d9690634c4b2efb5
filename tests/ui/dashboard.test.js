// The dashboard in a real Chromium, driven as a person would: open it, create queues, send an
// advanced message, watch the depth change live, look up the message's status, redrive it from
// the dead-letter queue, purge and delete, pause and fire a schedule, use it on a phone-sized
// screen and by keyboard.
// Every step fails on any console error or uncaught exception in the page.
//
// Run by run.sh, which starts baton and sets BATON_URL and CHROMIUM.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

const BASE = process.env.BATON_URL;
const CHROMIUM = process.env.CHROMIUM;
const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname;
// Live updates come once a second; allow a few.
const LIVE_TIMEOUT = 10_000;

let browser;
let page;
const problems = [];

async function api(method, path, body) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function shot(name) {
  await page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });
}

function assertNoConsoleErrors() {
  assert.deepEqual(problems, [], `console errors:\n${problems.join('\n')}`);
}

before(async () => {
  assert.ok(BASE, 'BATON_URL is not set (run tests/ui/run.sh)');
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    // A live stream cut by navigation or shutdown is not a failure.
    if (!/\/v1\/live\/|\/live(\?|$)/.test(request.url())) problems.push(`request failed: ${request.url()}`);
  });
});

after(async () => {
  if (browser) await browser.close();
});

test('the overview shows the node and goes live', async () => {
  await page.goto(BASE);
  await page.locator('#conn.live').waitFor({ timeout: LIVE_TIMEOUT });
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.getByRole('heading', { name: 'Node' }).waitFor();
  await page.locator('#overview-tiles').getByText('Queues').waitFor();
  await page.getByRole('img', { name: /Messages per second/ }).waitFor();
  await shot('01-overview');
  assertNoConsoleErrors();
});

test('the overview shows the disk and memory alarms while they are on, and not otherwise', async () => {
  const low = process.env.BATON_LOW_DISK_URL;
  const memory = process.env.BATON_MEMORY_URL;
  assert.ok(low && memory, 'BATON_LOW_DISK_URL or BATON_MEMORY_URL is not set (run tests/ui/run.sh)');
  await page.goto(low);
  await page.locator('#disk-alarm[data-alarm="on"]').waitFor({ timeout: LIVE_TIMEOUT });
  assert.match(await page.locator('#disk-alarm').innerText(), /ALARM: sends, publishes and stream appends refused/);
  await page.locator('#banner', { hasText: 'Disk space low' }).waitFor({ timeout: LIVE_TIMEOUT });
  await shot('01b-disk-alarm');
  await page.goto(memory);
  await page.locator('#memory-alarm[data-alarm="on"]').waitFor({ timeout: LIVE_TIMEOUT });
  assert.match(await page.locator('#memory-alarm').innerText(), /alarm at 1 B — ALARM: sends, publishes and stream appends refused/);
  await page.locator('#banner', { hasText: 'Memory above memory_high_watermark' }).waitFor({ timeout: LIVE_TIMEOUT });
  await shot('01c-memory-alarm');
  await page.goto(BASE);
  await page.locator('#disk-alarm[data-alarm="off"]').waitFor({ timeout: LIVE_TIMEOUT });
  await page.locator('#memory-alarm[data-alarm="off"]').waitFor({ timeout: LIVE_TIMEOUT });
  assert.equal(await page.locator('#banner').isHidden(), true);
  assertNoConsoleErrors();
});

test('queues are created from the queues page and appear in the live table', async () => {
  await page.getByRole('link', { name: 'Queues', exact: true }).click();
  await page.getByRole('heading', { name: 'Queues', exact: true }).waitFor();
  const form = page.getByRole('form', { name: 'Create a queue' });
  await form.getByLabel(/^Name/).fill('ui-dlq');
  await form.getByRole('button', { name: 'Create queue' }).click();
  await page.locator('tr[data-queue="ui-dlq"]').waitFor({ timeout: LIVE_TIMEOUT });

  await form.getByLabel(/^Name/).fill('ui-orders');
  await form.getByLabel(/Visibility timeout/).fill('30000');
  await form.getByLabel(/Dead-letter queue/).fill('ui-dlq');
  await form.getByLabel(/Max receives/).fill('2');
  await form.getByRole('button', { name: 'Create queue' }).click();
  await page.locator('tr[data-queue="ui-orders"]').waitFor({ timeout: LIVE_TIMEOUT });

  const created = await api('GET', '/v1/queues/ui-orders');
  assert.deepEqual(created.attributes.dead_letter, { queue: 'ui-dlq', max_receive_count: 2 });
  await shot('02-queues');
  assertNoConsoleErrors();
});

test('a refused create shows the server error and changes nothing', async () => {
  const form = page.getByRole('form', { name: 'Create a queue' });
  await form.getByLabel(/^Name/).fill('ui-bad');
  await form.getByLabel(/Dead-letter queue/).fill('no-such-queue');
  await form.getByRole('button', { name: 'Create queue' }).click();
  // The 400 is an answer the page shows; the browser logs the failed fetch, which is expected.
  await form.getByRole('alert').filter({ hasText: 'dead_letter_queue_invalid' }).waitFor();
  const list = await api('GET', '/v1/queues');
  assert.ok(!list.queues.some((q) => q.name === 'ui-bad'));
  const expected = problems.filter((p) => p.includes('400 (Bad Request)'));
  assert.equal(expected.length, 1, problems.join('\n'));
  problems.length = 0;
  await form.getByLabel(/^Name/).fill('');
  await form.getByLabel(/Dead-letter queue/).fill('');
});

let sentId;
// Messages received (leased) by the live-depth step.
let inFlight = [];

test('an advanced message is sent from the queue page', async () => {
  await page.goto(`${BASE}/#/queues/ui-orders/send`);
  const form = page.getByRole('form', { name: 'Send a message' });
  await form.getByLabel('Body').fill('{"order": 1001}');
  await form.getByLabel(/Attributes/).fill('customer=ada\npriority=high');
  await page.locator('#advanced > summary').click();
  await form.getByLabel('Group id').fill('account-7');
  await form.getByLabel(/Dedup id/).fill('order-1001');
  await form.getByLabel(/Delay/).fill('0');
  await form.getByLabel(/Notify URL/).fill('http://127.0.0.1:9/done');
  await form.getByLabel(/Notify headers/).fill('X-Token: secret');
  await form.getByLabel(/Visibility timeout/).fill('20000');
  await form.getByLabel(/Retries/).fill('1');
  await shot('03-send-form');
  await form.getByRole('button', { name: 'Send' }).click();
  const idLink = page.locator('#sent-id');
  await idLink.waitFor();
  sentId = (await idLink.textContent()).trim();
  assert.match(sentId, /^[0-9a-f-]{36}$/);

  const queue = await api('GET', '/v1/queues/ui-orders');
  assert.equal(queue.attributes.visibility_timeout_ms, 20000);
  assert.equal(queue.attributes.dead_letter.max_receive_count, 1);
  const peek = await api('GET', '/v1/queues/ui-orders/messages');
  assert.equal(peek.messages.length, 1);
  assert.equal(peek.messages[0].body, '{"order": 1001}');
  assert.equal(peek.messages[0].group_id, 'account-7');
  assert.equal(peek.messages[0].dedup_id, 'order-1001');
  assert.deepEqual(peek.messages[0].attributes, { customer: 'ada', priority: 'high' });
  await shot('04-sent');
  assertNoConsoleErrors();
});

test('the depth changes live while messages arrive', async () => {
  await page.getByRole('tab', { name: 'Overview' }).click();
  const visible = page.locator('#stat-visible .value');
  await page.waitForFunction(() => document.querySelector('#stat-visible .value')?.textContent === '1', null, { timeout: LIVE_TIMEOUT });
  // Sent by another client: the page sees it without reloading.
  await api('POST', '/v1/queues/ui-orders/messages', { messages: [{ body: 'a' }, { body: 'b' }] });
  await page.waitForFunction(() => document.querySelector('#stat-visible .value')?.textContent === '3', null, { timeout: LIVE_TIMEOUT });
  assert.equal(await visible.textContent(), '3');
  ({ messages: inFlight } = await api('POST', '/v1/queues/ui-orders/receive', { max: 2, visibility_timeout_ms: 60000 }));
  await page.waitForFunction(() => document.querySelector('#stat-in-flight .value')?.textContent === '2', null, { timeout: LIVE_TIMEOUT });
  await shot('05-queue-live');
  assertNoConsoleErrors();
});

test('messages are browsed without being consumed', async () => {
  await page.getByRole('tab', { name: 'Messages' }).click();
  const rows = page.locator('table.messages tbody tr');
  await rows.nth(2).waitFor();
  assert.equal(await rows.count(), 3);
  await page.locator(`table.messages tr[data-id="${sentId}"]`).getByText('in flight').or(
    page.locator(`table.messages tr[data-id="${sentId}"]`).getByText('visible')).waitFor();
  const stats = (await api('GET', '/v1/queues/ui-orders')).stats;
  assert.equal(stats.received_total, 2, 'browsing received nothing');
  await shot('06-messages');
  assertNoConsoleErrors();
});

test('a message is looked up by id with its status history', async () => {
  await page.getByRole('tab', { name: 'Lookup' }).click();
  await page.getByLabel('Message id').fill(sentId);
  await page.getByRole('button', { name: 'Look up' }).click();
  const status = page.locator('#message-status');
  await status.waitFor();
  const text = await status.textContent();
  assert.ok(['PENDING', 'PROCESSING'].includes(text), text);
  const history = page.getByRole('list', { name: 'History' });
  await history.getByText('sent').waitFor();
  await shot('07-lookup');
  assertNoConsoleErrors();
});

test('a dead-lettered message is redriven from the dead-letter queue page', async () => {
  // max_receive_count is 1 (set by the send form): giving back the received (oldest, so
  // first) message dead-letters it.
  const mine = inFlight.find((m) => m.id === sentId);
  assert.ok(mine, 'the advanced message was received');
  await api('POST', '/v1/queues/ui-orders/nack', { receipts: [mine.receipt] });
  const dlq = await api('GET', '/v1/queues/ui-dlq');
  assert.equal(dlq.stats.visible, 1);

  await page.goto(`${BASE}/#/queues/ui-dlq/dead-letters`);
  const row = page.locator(`table.messages tr[data-id="${sentId}"]`);
  await row.getByText('ui-orders').waitFor();
  await shot('08-dead-letters');
  await page.getByRole('button', { name: /Redrive all/ }).click();
  await page.getByRole('tabpanel').getByText('Moved 1 message back').waitFor();
  await page.getByText('No messages.').waitFor();
  const back = await api('GET', `/v1/queues/ui-orders/messages/${sentId}`);
  assert.equal(back.status, 'PENDING');
  assert.ok(back.history.some((e) => e.event === 'dead_lettered'));
  assert.ok(back.history.some((e) => e.event === 'redriven'));

  // The lookup page shows the whole journey as a timeline.
  await page.goto(`${BASE}/#/queues/ui-orders/lookup?id=${sentId}`);
  const history = page.getByRole('list', { name: 'History' });
  await history.getByText('dead lettered').waitFor();
  await history.getByText('redriven').waitFor();
  await shot('09-timeline');
  assertNoConsoleErrors();
});

test('purge and delete ask first and update the table', async () => {
  await api('PUT', '/v1/queues/ui-scratch', {});
  await api('POST', '/v1/queues/ui-scratch/messages', { messages: [{ body: 'x' }, { body: 'y' }] });
  await page.goto(`${BASE}/#/queues`);
  const row = page.locator('tr[data-queue="ui-scratch"]');
  await row.waitFor({ timeout: LIVE_TIMEOUT });
  page.once('dialog', (dialog) => dialog.accept());
  await row.getByRole('button', { name: 'Purge ui-scratch' }).click();
  await page.getByText('Purged 2 messages from ui-scratch').waitFor();
  page.once('dialog', (dialog) => dialog.dismiss());
  await row.getByRole('button', { name: 'Delete ui-scratch' }).click();
  assert.ok((await api('GET', '/v1/queues')).queues.some((q) => q.name === 'ui-scratch'), 'dismissed: still there');
  page.once('dialog', (dialog) => dialog.accept());
  await row.getByRole('button', { name: 'Delete ui-scratch' }).click();
  await row.waitFor({ state: 'detached', timeout: LIVE_TIMEOUT });
  assertNoConsoleErrors();
});

test('the queues table sorts by keyboard', async () => {
  await api('POST', '/v1/queues/ui-dlq/messages', { messages: [{ body: '1' }, { body: '2' }, { body: '3' }, { body: '4' }, { body: '5' }] });
  await page.goto(`${BASE}/#/queues`);
  await page.locator('tr[data-queue="ui-orders"]').waitFor({ timeout: LIVE_TIMEOUT });
  const visibleHeader = page.locator('#queues-table th[data-key="visible"]');
  await visibleHeader.getByRole('button').focus();
  await page.keyboard.press('Enter');
  assert.equal(await visibleHeader.getAttribute('aria-sort'), 'descending');
  await page.waitForFunction(() => document.querySelector('#queues-table tbody tr')?.dataset.queue === 'ui-dlq', null, { timeout: LIVE_TIMEOUT });
  await page.keyboard.press('Enter');
  assert.equal(await visibleHeader.getAttribute('aria-sort'), 'ascending');
  // Focus stays on the header button through live updates.
  await page.waitForTimeout(1500);
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Visible');
  assertNoConsoleErrors();
});

test('queue views switch with the arrow keys and keep the focus on the tabs', async () => {
  await page.goto(`${BASE}/#/queues/ui-orders`);
  await page.getByRole('tab', { name: 'Overview' }).focus();
  await page.keyboard.press('ArrowRight');
  await page.getByRole('tab', { name: 'Messages', selected: true }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Messages');
  await page.keyboard.press('ArrowLeft');
  await page.getByRole('tab', { name: 'Overview', selected: true }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Overview');
  assertNoConsoleErrors();
});

// A completion-callback target that fails until told to succeed (run.sh starts baton with
// callback_max_retries = 0, so the first failure parks the callback at once).
function callbackReceiver() {
  const receiver = { healthy: false, calls: [] };
  receiver.server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => { body += chunk; });
    request.on('end', () => {
      receiver.calls.push({ healthy: receiver.healthy, body: JSON.parse(body) });
      response.writeHead(receiver.healthy ? 200 : 500).end();
    });
  });
  return new Promise((resolve) => receiver.server.listen(0, '127.0.0.1', () => {
    receiver.url = `http://127.0.0.1:${receiver.server.address().port}/done`;
    resolve(receiver);
  }));
}

async function until(what, check, timeout = LIVE_TIMEOUT) {
  const end = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    assert.ok(Date.now() < end, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('a failed callback is listed and retried from the queue page', async () => {
  const receiver = await callbackReceiver();
  try {
    await api('PUT', '/v1/queues/ui-callbacks', {});
    const sent = await api('POST', '/v1/queues/ui-callbacks/messages', { messages: [{ body: 'report me', notify: { url: receiver.url } }] });
    const id = sent.messages[0].id;
    const { messages } = await api('POST', '/v1/queues/ui-callbacks/receive', { max: 1 });
    await api('POST', '/v1/queues/ui-callbacks/ack', { receipts: [messages[0].receipt] });
    await until('the callback to fail', async () => (await api('GET', '/v1/callbacks/failed')).callbacks.some((c) => c.id === id));
    assert.equal(receiver.calls.length, 1);

    // Listed on the failed-callbacks page, which links to the queue's own list.
    await page.goto(`${BASE}/#/callbacks`);
    const row = page.locator(`#callbacks-table tr[data-id="${id}"]`);
    await row.waitFor({ timeout: LIVE_TIMEOUT });
    await row.getByText('HTTP 500').waitFor();
    await shot('11-failed-callbacks');
    await row.getByRole('link', { name: 'ui-callbacks' }).click();
    await page.getByRole('tab', { name: 'Callbacks & push', selected: true }).waitFor();
    await page.locator('#push-status').getByText('No push subscription').waitFor();
    const queueRow = page.locator(`#callbacks-table tr[data-id="${id}"]`);
    await queueRow.waitFor({ timeout: LIVE_TIMEOUT });

    // Retry while the target still fails: the page says so and the row stays.
    await queueRow.getByRole('button', { name: `Retry callback of ${id}` }).click();
    await queueRow.getByText(/Failed again: HTTP 500/).waitFor();
    assert.equal(receiver.calls.length, 2);
    // Now the target works: the retry delivers and the status is restored.
    receiver.healthy = true;
    await queueRow.getByRole('button', { name: `Retry callback of ${id}` }).click();
    await queueRow.getByText('Delivered: COMPLETED').waitFor();
    await shot('12-callback-retried');
    assert.equal(receiver.calls.length, 3);
    assert.equal(receiver.calls[2].body.status, 'COMPLETED');
    assert.equal(receiver.calls[2].body.id, id);
    assert.equal((await api('GET', `/v1/queues/ui-callbacks/messages/${id}`)).status, 'COMPLETED');
    await queueRow.waitFor({ state: 'detached', timeout: LIVE_TIMEOUT });
    assertNoConsoleErrors();
  } finally {
    receiver.server.close();
  }
});

test('the push subscription and its breaker show on the queue page', async () => {
  await api('PUT', '/v1/queues/ui-pushed', {});
  // Nothing listens on port 9: deliveries fail and stay queued.
  await api('PUT', '/v1/queues/ui-pushed/push', { url: 'http://127.0.0.1:9/push', concurrency: 2 });
  await page.goto(`${BASE}/#/queues/ui-pushed/callbacks`);
  const push = page.locator('#push-status');
  await push.getByText('http://127.0.0.1:9/push').waitFor({ timeout: LIVE_TIMEOUT });
  await push.locator('#push-breaker').getByText(/breaker (closed|open|half-open)/).waitFor();
  await api('DELETE', '/v1/queues/ui-pushed/push');
  assertNoConsoleErrors();
});

test('the performance test runs from its page and charts throughput and latency', async () => {
  await page.goto(`${BASE}/#/performance`);
  const form = page.getByRole('form', { name: 'Run a performance test' });
  await form.getByLabel('Number of events').fill('300');
  await form.getByLabel('Event type').selectOption('NOTIFICATION');
  await form.getByRole('button', { name: 'Run test' }).click();
  await page.locator('#perf-processed .value').getByText('300', { exact: true }).waitFor({ timeout: 60_000 });
  await page.getByRole('img', { name: /^Throughput \(events per second\): \d+ intervals of \d+ ms, peak/ }).waitFor();
  await page.getByRole('img', { name: /^Latency, create → processed \(ms\): p50 [\d,]+ ms, p90 [\d,]+ ms, p99 [\d,]+ ms, max [\d,]+ ms$/ }).waitFor();
  assert.match(await page.locator('#perf-progress').textContent(), /^Done: 300 of 300 NOTIFICATION events processed/);
  await page.getByRole('img', { name: /^Processed per second while running, latest: processed \/ s/ }).waitFor();
  await shot('13-performance');
  assertNoConsoleErrors();
});

test('the streams pages show partitions, offsets, groups, lag and pending', async () => {
  await api('PUT', '/v1/streams/ui-clicks', { partitions: 3 });
  await api('POST', '/v1/streams/ui-clicks/records', { records: [0, 1, 2, 3, 4, 5].map((i) => ({ value: `click ${i}`, partition: i % 3 })) });
  await api('PUT', '/v1/streams/ui-clicks/groups/ui-analytics', { start: 'earliest' });
  await api('POST', '/v1/streams/ui-clicks/groups/ui-analytics/read', { consumer: 'worker-1', max: 2 });
  await page.goto(`${BASE}/#/streams`);
  const row = page.locator('#streams-table tr[data-stream="ui-clicks"]');
  await row.waitFor({ timeout: LIVE_TIMEOUT });
  await row.getByRole('link', { name: 'ui-clicks' }).click();
  await page.getByRole('heading', { name: 'ui-clicks' }).waitFor();
  await page.locator('#stat-records .value').getByText('6', { exact: true }).waitFor();
  assert.equal(await page.locator('#partitions-table tbody tr').count(), 3);
  const group = page.locator('#groups-table tr[data-group="ui-analytics"]');
  await group.waitFor();
  // Two of six records read and pending: the group lags by the other four.
  assert.deepEqual(await group.locator('td').allTextContents().then((cells) => cells.slice(0, 3).concat(cells[4])), ['ui-analytics', 'partitioned', '4', '2']);
  await group.getByRole('button', { name: 'Pending records of ui-analytics' }).click();
  await page.locator('#pending-list').getByText('Pending in ui-analytics: 2').waitFor();
  assert.equal(await page.locator('#pending-list tbody tr').count(), 2);
  await shot('14-stream');
  assertNoConsoleErrors();
});

test('the topics pages show subscriptions and tail a topic live', async () => {
  await api('PUT', '/v1/queues/ui-eu-orders', {});
  await api('PUT', '/v1/topics/ui-orders', {});
  await api('PUT', '/v1/topics/ui-orders/subscriptions/eu-big', {
    target: { queue: 'ui-eu-orders' }, pattern: 'order.eu.*', filter: { amount: [{ numeric: ['>', 100] }] },
  });
  await page.goto(`${BASE}/#/topics`);
  const row = page.locator('#topics-table tr[data-topic="ui-orders"]');
  await row.waitFor({ timeout: LIVE_TIMEOUT });
  await row.getByRole('link', { name: 'ui-orders' }).click();
  const sub = page.locator('#subscriptions-table tr[data-subscription="eu-big"]');
  await sub.waitFor({ timeout: LIVE_TIMEOUT });
  await sub.getByText('order.eu.*').waitFor();
  await sub.getByRole('link', { name: 'ui-eu-orders' }).waitFor();
  await sub.getByText('{"amount":[{"numeric":[">",100]}]}').waitFor();

  const tail = page.getByRole('form', { name: 'Live tail' });
  await tail.getByLabel(/Routing pattern/).fill('order.#');
  await tail.getByRole('button', { name: 'Start tail' }).click();
  await page.locator('#tail-status').getByText(/^Tailing messages matching order\.#/).waitFor();
  await api('POST', '/v1/topics/ui-orders/publish', { messages: [
    { routing_key: 'order.eu.created', body: 'big order', attributes: { amount: { type: 'Number', value: '120' } } },
    { routing_key: 'invoice.eu.created', body: 'not for this tail' },
  ] });
  await page.locator('#tail li').getByText('big order').waitFor({ timeout: LIVE_TIMEOUT });
  await page.locator('#tail-status').getByText(/1 received/).waitFor();
  assert.equal(await page.locator('#tail li').count(), 1);
  await page.locator('#stat-published .value').getByText('2', { exact: true }).waitFor({ timeout: LIVE_TIMEOUT });
  await shot('15-topic-tail');
  await tail.getByRole('button', { name: 'Stop tail' }).click();
  await page.locator('#tail-status').getByText('Stopped after 1 messages.').waitFor();
  // The subscription got its copy.
  assert.equal((await api('GET', '/v1/queues/ui-eu-orders')).stats.visible, 1);
  assertNoConsoleErrors();
});

test('the schedules page shows next fire and last outcome, and pauses, resumes and fires', async () => {
  await api('PUT', '/v1/queues/ui-maintenance', {});
  await api('PUT', '/v1/schedules/ui-cleanup', {
    cron: '0 3 * * *', timezone: 'Asia/Seoul', target: { queue: 'ui-maintenance' },
    message: { body: 'cleanup' }, paused: true,
  });
  await page.goto(`${BASE}/#/schedules`);
  const row = page.locator('#schedules-table tr[data-name="ui-cleanup"]');
  await row.waitFor({ timeout: LIVE_TIMEOUT });
  await row.getByText('0 3 * * * (Asia/Seoul)').waitFor();
  await row.getByText('paused', { exact: true }).waitFor();
  await row.getByRole('button', { name: 'Fire ui-cleanup now' }).click();
  await row.getByText(/^ok \(fired by hand\) at /).waitFor({ timeout: LIVE_TIMEOUT });
  assert.equal((await api('GET', '/v1/queues/ui-maintenance')).stats.visible, 1);
  await row.getByRole('button', { name: 'Resume ui-cleanup' }).click();
  await row.getByText('active', { exact: true }).waitFor({ timeout: LIVE_TIMEOUT });
  await row.getByRole('button', { name: 'Pause ui-cleanup' }).waitFor();
  await shot('16-schedules');
  assertNoConsoleErrors();
});

test('the overview counts streams and topics live', async () => {
  await page.goto(`${BASE}/#/`);
  await page.locator('#stat-streams .value').getByText('1', { exact: true }).waitFor({ timeout: LIVE_TIMEOUT });
  await page.locator('#stat-topics .value').getByText('1', { exact: true }).waitFor();
  await api('PUT', '/v1/topics/ui-second', {});
  await page.locator('#stat-topics .value').getByText('2', { exact: true }).waitFor({ timeout: LIVE_TIMEOUT });
  assertNoConsoleErrors();
});

test('the sinks page shows a sink that cannot reach PostgreSQL, and pauses and resumes it', async () => {
  // Port 9 (discard) is closed on loopback: the sink keeps retrying and reports why.
  await api('PUT', '/v1/sinks/ui-archive', {
    source: { stream: 'ui-clicks' },
    postgres: { url: 'postgres://postgres@127.0.0.1:9/test', table: 'ui_archive' },
  });
  await page.goto(`${BASE}/#/sinks`);
  const row = page.locator('#sinks-table tr[data-name="ui-archive"]');
  await row.waitFor({ timeout: LIVE_TIMEOUT });
  await row.getByText('stream ui-clicks').waitFor();
  await page.locator('#sinks-table tr[data-name="ui-archive"][data-state="retrying"]').waitFor({ timeout: LIVE_TIMEOUT });
  await row.getByRole('button', { name: 'Pause sink ui-archive' }).click();
  await page.locator('#sinks-table tr[data-name="ui-archive"][data-state="paused"]').waitFor({ timeout: LIVE_TIMEOUT });
  assert.equal((await api('GET', '/v1/sinks/ui-archive')).state, 'paused');
  await shot('16-sinks');
  await page.locator('#sinks-table tr[data-name="ui-archive"]').getByRole('button', { name: 'Resume sink ui-archive' }).click();
  await page.locator('#sinks-table tr[data-name="ui-archive"][data-state="retrying"]').waitFor({ timeout: LIVE_TIMEOUT });
  await api('DELETE', '/v1/sinks/ui-archive');
  assertNoConsoleErrors();
});

test('on a server with API keys the dashboard signs in and shows only what the key may see', async () => {
  const url = process.env.BATON_KEYED_URL;
  const key = process.env.BATON_KEYED_KEY;
  assert.ok(url && key, 'BATON_KEYED_URL or BATON_KEYED_KEY is not set (run tests/ui/run.sh)');
  // A tab of its own: the key lives in the tab's sessionStorage.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const tab = await context.newPage();
  const errors = [];
  tab.on('console', (message) => {
    // The refused sign-in's 401 is logged by the browser: expected.
    if (message.type() === 'error' && !/status of 401/.test(message.text())) errors.push(message.text());
  });
  tab.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  tab.on('request', (request) => {
    if (request.url().includes(key)) errors.push(`the key is in a URL: ${request.url()}`);
  });
  await tab.goto(url);
  await tab.getByRole('heading', { name: 'Sign in' }).waitFor();
  // Nothing else is shown or opened before a key is given.
  assert.equal(await tab.locator('#nav li').count(), 0);
  await tab.getByLabel('API key').fill('bk_not-a-key-of-this-server');
  await tab.getByRole('button', { name: 'Sign in' }).click();
  await tab.locator('#signin-error', { hasText: 'That key is not valid' }).waitFor();
  await tab.getByLabel('API key').fill(key);
  await tab.getByRole('button', { name: 'Sign in' }).click();
  await tab.locator('#who', { hasText: 'Signed in as watcher' }).waitFor();
  await tab.locator('#conn.live').waitFor({ timeout: LIVE_TIMEOUT });
  await tab.getByRole('link', { name: 'Queues', exact: true }).click();
  await tab.locator('tr[data-queue="orders-1"]').waitFor({ timeout: LIVE_TIMEOUT });
  assert.equal(await tab.locator('tr[data-queue="payroll"]').count(), 0, 'a queue the key may not see is listed');
  // The key never appears in a URL the page requested: live streams use tickets.
  const stored = await tab.evaluate(() => sessionStorage.getItem('baton.key'));
  assert.equal(stored, key);
  await tab.screenshot({ path: `${ARTIFACTS}21-signed-in.png`, fullPage: true });
  // A reload keeps the tab signed in; signing out forgets the key.
  await tab.reload();
  await tab.locator('#who', { hasText: 'Signed in as watcher' }).waitFor();
  await tab.locator('#conn.live').waitFor({ timeout: LIVE_TIMEOUT });
  await tab.getByRole('button', { name: 'Sign out' }).click();
  await tab.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await tab.evaluate(() => sessionStorage.getItem('baton.key')), null);
  await context.close();
  assert.deepEqual(errors, [], `console errors:\n${errors.join('\n')}`);
});

test('every page fits a phone screen', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [name, path] of [['overview', ''], ['queues', 'queues'], ['queue', 'queues/ui-orders'], ['messages', 'queues/ui-orders/messages'], ['send', 'queues/ui-orders/send'],
    ['callbacks', 'queues/ui-orders/callbacks'], ['streams', 'streams'], ['stream', 'streams/ui-clicks'],
    ['topics', 'topics'], ['topic', 'topics/ui-orders'], ['schedules', 'schedules'], ['sinks', 'sinks'], ['performance', 'performance']]) {
    await page.goto(`${BASE}/#/${path}`);
    await page.locator('#conn.live').waitFor({ timeout: LIVE_TIMEOUT });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name} overflows the phone screen by ${overflow}px`);
    await shot(`10-phone-${name}`);
  }
  assertNoConsoleErrors();
});
