// Unread counts and last messages come from the node (GET /api/v1/conversations): they hold
// across a reload, and opening a conversation marks it read on the node, not just on screen.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, launch, person, newPerson, register, shots, axe } from './harness.js';
import { join } from 'node:path';

/** @type {any} */ let node;
/** @type {any} */ let browser;
/** @type {any} */ let A;
/** @type {any} */ let B;
const a = newPerson('ana');
const b = newPerson('bo');
const addr = (p) => `${p.handle}@localhost`;

before(async () => {
  node = await startNode();
  browser = await launch();
  A = await person(browser, node.url, { locale: 'zh-CN' });
  B = await person(browser, node.url, { locale: 'en-US' });
});
after(async () => {
  await browser?.close();
  await node?.stop();
});
afterEach(async (t) => {
  const name = String(t.name).replace(/[^a-z0-9]+/gi, '-').slice(0, 40);
  await B?.page.screenshot({ path: join(shots, `unread-${name}-bo.png`) }).catch(() => {});
});

async function say(page, text) {
  const box = page.getByRole('textbox', { name: /^(消息|Message)$/ });
  await box.fill(text);
  await box.press('Enter');
}

test('the count and last message of each conversation are the node’s, and survive a reload', async () => {
  await register(A.page, a);
  await register(B.page, b, { keep: true });
  // Bo keeps his history on the node: without cloud_sync, what his browser has received is
  // gone from the node, and so from its counts after a reload (as the API documents).
  await B.page.goto(node.url + '/#/privacy/purposes');
  await B.page.getByRole('switch', { name: /Cloud sync/ }).check();
  await B.page.getByText(/Allowed since/).first().waitFor();
  await B.page.goto(node.url + '/#/chats');
  await A.page.getByRole('button', { name: '新建聊天' }).first().click();
  await A.page.getByLabel('地址').fill(addr(b));
  await A.page.getByRole('button', { name: '开始聊天' }).click();
  for (const t of ['one', 'two', 'three is the last']) await say(A.page, t);
  await A.page.locator('.bubble', { hasText: 'three is the last' }).waitFor();
  await A.page.locator('.outgoing').waitFor({ state: 'detached' });

  // Counted by the node: a reload (no live stream history, no local state) shows the same.
  /** @type {string[]} */
  const fetched = [];
  B.page.on('request', (r) => fetched.push(new URL(r.url()).pathname + new URL(r.url()).search));
  await B.page.reload();
  const row = B.page.getByRole('link', { name: new RegExp(addr(a)) });
  await row.waitFor();
  await row.getByText('3', { exact: true }).waitFor();
  await row.getByText('three is the last').waitFor();
  assert.match(await B.page.title(), /^\(3\) /);
  assert.deepEqual(
    fetched.filter((p) => /\/messages/.test(p)),
    [],
    'the list needs no history page per conversation',
  );
  assert.deepEqual(await axe(B.page), []);
  await B.page.screenshot({ path: join(shots, 'unread-list-en.png') });

  // Opening it marks it read on the node: a reload keeps it read.
  const marked = B.page.waitForResponse((r) => r.request().method() === 'PUT' && /\/read$/.test(new URL(r.url()).pathname));
  await row.click();
  await B.page.locator('.bubble', { hasText: 'three is the last' }).waitFor();
  assert.equal((await marked).status(), 200);
  await B.page.goto(node.url + '/#/chats');
  await B.page.reload();
  await row.waitFor();
  await row.getByText('three is the last').waitFor();
  assert.equal(await row.locator('.badge').count(), 0);
  assert.doesNotMatch(await B.page.title(), /^\(\d+\)/);

  // A message that arrives live while another screen is open counts on top.
  await say(A.page, 'and a fourth');
  await row.getByText('and a fourth').waitFor();
  await row.getByText('1', { exact: true }).waitFor();
  assert.deepEqual(A.problems, []);
  assert.deepEqual(B.problems, []);
});
