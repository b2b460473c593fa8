// Search in the browser: a message found by a Chinese substring across word boundaries, its
// match highlighted, opening the conversation; recent searches only after turning on
// personalisation, and clearing them; a community post with a photo found by a Chinese
// substring, and its community by name, each opening the community; in Chinese and in English;
// screenshots and axe scans of the search screen at desktop and phone width.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { startNode, launch, person, newPerson, register, axe, shots } from './harness.js';
import { jpegWithGps } from './fixtures.js';

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

test('a community post with a photo is found by a Chinese substring, and its community by name', async () => {
  const A = await person(browser, node.url, { locale: 'zh-CN' });
  const B = await person(browser, node.url, { locale: 'zh-CN' });
  const a = newPerson('yun');
  const b = newPerson('lan');
  await register(A.page, a);
  await register(B.page, b);
  const name = '江边摄影社';
  await A.page.getByRole('link', { name: '小组' }).click();
  await A.page.getByRole('button', { name: '创建小组' }).click();
  const dialog = A.page.getByRole('dialog', { name: '创建小组' });
  await dialog.getByLabel('名称').fill(name);
  await dialog.getByLabel('简介').fill('拍长江两岸的风景。');
  await dialog.getByLabel('公开').check();
  await dialog.getByRole('button', { name: '创建小组' }).click();
  await A.page.getByRole('heading', { name }).waitFor();
  const file = join(tmpdir(), `shanliao-search-${process.pid}.jpg`);
  writeFileSync(file, await jpegWithGps(A.page));
  await A.page.getByRole('textbox', { name: '发帖' }).fill('傍晚的南京市长江大桥');
  await A.page.setInputFiles('form.compose input[type=file]', file);
  await A.page.getByRole('dialog', { name: /相册/ }).waitFor();
  await A.page.getByRole('button', { name: '允许' }).click();
  await A.page.locator('ul.attached li').waitFor();
  await A.page.getByRole('button', { name: '发布', exact: true }).click();
  await A.page.getByRole('article', { name: /的帖子/ }).locator('img.post-image').waitFor();

  // Lan, who is in no community, finds the community by a word of its name…
  await B.page.getByRole('link', { name: '搜索' }).click();
  const q = B.page.getByRole('searchbox', { name: '搜索内容' });
  await q.fill('摄影');
  await B.page.getByRole('radio', { name: '小组' }).check({ force: true });
  const found = B.page.getByRole('region', { name: '小组' }).locator('.search-hit', { hasText: name });
  await found.waitFor();
  assert.equal(await found.locator('mark').first().textContent(), '摄影');
  await found.getByText('公开小组').waitFor();
  // …and Yun, its author, her post by a substring across word boundaries, highlighted.
  await A.page.goto(node.url + '/#/search');
  const qa = A.page.getByRole('searchbox', { name: '搜索内容' });
  await qa.fill('市长');
  await A.page.getByRole('radio', { name: '帖子' }).check({ force: true });
  const post = A.page.getByRole('region', { name: '帖子' }).locator('.search-hit', { hasText: '南京市长江大桥' });
  await post.waitFor();
  assert.equal(await post.locator('mark').textContent(), '市长');
  await post.getByText(new RegExp(name)).waitFor();
  await A.page.screenshot({ path: join(shots, 'search-posts-desktop-light.png') });
  assert.deepEqual(await axe(A.page), []);
  await post.click();
  await A.page.getByRole('heading', { name }).waitFor();
  assert.deepEqual(A.problems, []);
  assert.deepEqual(B.problems, []);
  await A.context.close();
  await B.context.close();
});
