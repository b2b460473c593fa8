// Search in the browser: a message found by a Chinese substring across word boundaries, its
// match highlighted, opening the conversation; recent searches only after turning on
// personalisation, and clearing them; in Chinese and in English; screenshots and axe scans of
// the search screen at desktop and phone width.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startNode, launch, person, newPerson, register, axe, shots } from './harness.js';

/** @type {any} */ let node;
/** @type {any} */ let browser;
before(async () => {
  node = await startNode();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await node?.stop();
});

test('a Chinese substring finds the message, highlighted, and opens its conversation; recent searches need personalisation', async () => {
  const A = await person(browser, node.url, { locale: 'zh-CN' });
  const B = await person(browser, node.url, { locale: 'zh-CN', phone: true });
  const a = newPerson('qin');
  const b = newPerson('ran');
  await register(A.page, a);
  await register(B.page, b);
  // Ran keeps her history on the server: without cloud_sync, what her devices have received
  // leaves the server's view of her history, and search finds only what that view holds.
  await B.page.goto(node.url + '/#/privacy/purposes');
  await B.page.getByRole('switch', { name: '云端同步聊天记录' }).check();
  await B.page.goto(node.url + '/#/chats');
  await A.page.getByRole('button', { name: '新建聊天' }).first().click();
  await A.page.getByLabel('地址').fill(`${b.handle}@localhost`);
  await A.page.getByRole('button', { name: '开始聊天' }).click();
  const box = A.page.getByRole('textbox', { name: '消息' });
  await box.fill('我们周六去南京市长江大桥拍照');
  await box.press('Enter');
  await box.fill('然后在北京吃饭');
  await box.press('Enter');
  await B.page.getByRole('link', { name: new RegExp(a.handle) }).waitFor();

  await B.page.getByRole('link', { name: '搜索' }).click();
  const shots_ = [];
  const q = B.page.getByRole('searchbox', { name: '搜索内容' });
  await q.waitFor();
  // Without personalisation nothing is kept, and the screen says how to turn it on.
  await B.page.getByText('开启“个性化”后').waitFor();
  await q.fill('市长');
  await B.page.getByRole('radio', { name: '聊天记录' }).check({ force: true });
  const hit = B.page.locator('.search-results .search-hit', { hasText: '南京市长江大桥' });
  await hit.waitFor();
  assert.equal(await hit.locator('mark').textContent(), '市长');
  assert.equal(await B.page.locator('.search-results .search-hit').count(), 1, 'only the matching message');
  await B.page.screenshot({ path: join(shots, 'search-results-phone-light.png') });
  shots_.push(...(await axe(B.page)));
  await hit.click();
  await B.page.locator('.bubble', { hasText: '南京市长江大桥' }).waitFor();

  // Personalisation on: the search is kept, shown, and can be cleared.
  await B.page.goto(node.url + '/#/privacy/purposes');
  await B.page.getByRole('switch', { name: '个性化' }).check();
  await B.page.goto(node.url + '/#/search');
  await q.fill('京吃');
  await q.press('Enter');
  await B.page.locator('.search-results mark', { hasText: '京吃' }).first().waitFor();
  await B.page.goto(node.url + '/#/chats');
  await B.page.goto(node.url + '/#/search');
  const recent = B.page.getByRole('region', { name: '最近搜索' });
  await recent.getByRole('button', { name: '京吃' }).waitFor();
  await B.page.screenshot({ path: join(shots, 'search-recent-phone-light.png') });
  shots_.push(...(await axe(B.page)));
  await recent.getByRole('button', { name: '清除最近搜索' }).click();
  await recent.getByText('还没有最近搜索').waitFor();
  assert.deepEqual(shots_, [], 'no serious or critical axe violation');
  assert.deepEqual(A.problems, []);
  assert.deepEqual(B.problems, []);
  await A.context.close();
  await B.context.close();
});

test('in English, people are found by nickname and groups by name, at desktop width', async () => {
  const A = await person(browser, node.url, { locale: 'en', dark: true });
  const a = newPerson('sol');
  a.nickname = 'Solveig Park';
  await register(A.page, a);
  await A.page.getByRole('link', { name: 'Search' }).click();
  const q = A.page.getByRole('searchbox', { name: 'Search for' });
  await q.fill('solv');
  await q.press('Enter');
  const people = A.page.getByRole('region', { name: 'People' });
  await people.locator('mark', { hasText: 'Solv' }).first().waitFor();
  await A.page.getByRole('region', { name: 'Groups' }).getByText('Nothing found').waitFor();
  await A.page.screenshot({ path: join(shots, 'search-results-desktop-dark.png') });
  assert.deepEqual(await axe(A.page), []);
  assert.deepEqual(A.problems, []);
  await A.context.close();
});
