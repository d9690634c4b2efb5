// The dashboard in a real Chromium, driven as a person would: open it, create queues, send an
// advanced message, watch the depth change live, look up the message's status, redrive it from
// the dead-letter queue, purge and delete, use it on a phone-sized screen and by keyboard.
// Every step fails on any console error or uncaught exception in the page.
//
// Run by run.sh, which starts baton and sets BATON_URL and CHROMIUM.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
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
    if (!request.url().includes('/v1/live/')) problems.push(`request failed: ${request.url()}`);
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

test('every page fits a phone screen', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [name, path] of [['overview', ''], ['queues', 'queues'], ['queue', 'queues/ui-orders'], ['messages', 'queues/ui-orders/messages'], ['send', 'queues/ui-orders/send']]) {
    await page.goto(`${BASE}/#/${path}`);
    await page.locator('#conn.live').waitFor({ timeout: LIVE_TIMEOUT });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name} overflows the phone screen by ${overflow}px`);
    await shot(`10-phone-${name}`);
  }
  assertNoConsoleErrors();
});
