// Communities (小组) in two browsers: Ana creates a public community and posts a photo (the
// photos purpose asked at the moment of use); Bo finds it, joins, comments and keeps the post
// in his favourites; the photo he downloads has no GPS metadata. Every screen is scanned with
// axe and saved under target/browser/.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { startNode, launch, person, newPerson, register, axe, shots } from './harness.js';
import { jpegWithGps } from './fixtures.js';

/** @type {any} */ let node;
/** @type {any} */ let browser;
/** @type {any} */ let A;
/** @type {any} */ let B;
const a = newPerson('ana');
const b = newPerson('bo');
const NAME = '南京摄影 Nanjing photos';
const TEXT = '南京市长江大桥的日落';

before(async () => {
  node = await startNode();
  browser = await launch();
  A = await person(browser, node.url, { locale: 'zh-CN' });
  B = await person(browser, node.url, { locale: 'en-US' });
  await register(A.page, a);
  await register(B.page, b);
});
after(async () => {
  await browser?.close();
  await node?.stop();
});
afterEach(async (t) => {
  const name = String(t.name).replace(/[^a-z0-9]+/gi, '-').slice(0, 40);
  await A?.page.screenshot({ path: join(shots, `communities-${name}-ana.png`) }).catch(() => {});
  await B?.page.screenshot({ path: join(shots, `communities-${name}-bo.png`) }).catch(() => {});
  assert.deepEqual([...A.problems, ...B.problems], [], 'no page errors');
});

/** Saves a screenshot and asserts axe finds nothing serious. */
async function check(page, name) {
  await page.screenshot({ path: join(shots, `communities-${name}.png`), fullPage: true });
  assert.deepEqual(await axe(page), [], `axe on ${name}`);
}

test('Ana creates a public community from the chat screen', async () => {
  const page = A.page;
  await page.getByRole('link', { name: '小组' }).click();
  await page.getByRole('heading', { name: '我的动态' }).waitFor();
  await page.getByText('你加入的小组里还没有帖子。').waitFor();
  await check(page, 'feed-empty-zh');
  await page.getByRole('button', { name: '创建小组' }).click();
  const dialog = page.getByRole('dialog', { name: '创建小组' });
  await dialog.getByLabel('名称').fill(NAME);
  await dialog.getByLabel('简介').fill('拍南京的街道和江景。');
  await dialog.getByLabel('公开').check();
  await check(page, 'create-dialog-zh');
  await dialog.getByRole('button', { name: '创建小组' }).click();
  await page.getByRole('heading', { name: NAME }).waitFor();
  // It is listed among hers, with her role.
  await page.getByRole('navigation', { name: '小组导航' }).getByRole('link', { name: NAME }).waitFor();
  await page.getByText(/组长/).first().waitFor();
});

test('a photo is posted after the photos purpose is asked for', async () => {
  const page = A.page;
  const file = join(tmpdir(), `shanliao-community-${process.pid}.jpg`);
  writeFileSync(file, await jpegWithGps(page));
  await page.getByRole('textbox', { name: '发帖' }).fill(TEXT);
  // Refusing first: nothing is attached, composing still works.
  await page.setInputFiles('form.compose input[type=file]', file);
  await page.getByRole('dialog', { name: /相册/ }).waitFor();
  await page.getByRole('button', { name: '暂不' }).click();
  await page.getByText(/未允许“相册”/).waitFor();
  await page.setInputFiles('form.compose input[type=file]', file);
  await page.getByRole('dialog', { name: /相册/ }).waitFor();
  await page.getByRole('button', { name: '允许' }).click();
  await page.locator('ul.attached li').waitFor();
  await check(page, 'compose-with-photo-zh');
  await page.getByRole('button', { name: '发布', exact: true }).click();
  const post = page.getByRole('article', { name: /的帖子/ });
  await post.getByText(TEXT).waitFor();
  await post.locator('img.post-image').waitFor();
  assert.equal(await page.getByRole('textbox', { name: '发帖' }).inputValue(), '', 'the composer is cleared');
  await check(page, 'community-with-post-zh');
});

test('Bo finds the community, joins, comments and keeps the post as a favourite', async () => {
  const page = B.page;
  await page.getByRole('link', { name: 'Communities' }).click();
  await page.getByRole('link', { name: 'Find communities' }).click();
  await page.getByLabel('Search communities').fill('摄影');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await check(page, 'browse-en');
  await page.getByRole('link', { name: NAME }).click();
  await page.getByRole('heading', { name: NAME }).waitFor();
  // Readable before joining, since the post is for members: not yet.
  await page.getByText('No posts yet.').waitFor();
  // The post's media is fetched through the post that shows it.
  const served = page.waitForResponse((r) => /\/api\/v1\/communities\/[0-9a-f]{16}\/posts\/\d+\/media\/[^/]+$/.test(new URL(r.url()).pathname));
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  const post = page.getByRole('article', { name: /Post by/ });
  await post.getByText(TEXT).waitFor();
  await post.locator('img.post-image').waitFor();

  // What Bo's browser got has no EXIF (so no GPS).
  const response = await served;
  assert.equal(response.status(), 200);
  const login = await page.request.post(node.url + '/api/v1/sessions', { data: { login: b.handle, password: b.password } });
  const { token } = await login.json();
  const again = await page.request.get(response.url(), { headers: { authorization: `Bearer ${token}` } });
  const got = await again.body();
  const sent = readFileSync(join(tmpdir(), `shanliao-community-${process.pid}.jpg`));
  assert.ok(sent.includes(Buffer.from('Exif')), 'the fixture has EXIF');
  assert.ok(got.length > 100 && !got.includes(Buffer.from('Exif')), 'the photo arrived without EXIF');

  await post.getByRole('button', { name: /Comments/ }).click();
  await post.getByLabel('Write a comment').fill('Beautiful light!');
  await post.getByRole('button', { name: 'Send' }).click();
  await post.getByText('Beautiful light!').waitFor();
  await post.getByRole('button', { name: 'Favourite', exact: true }).click();
  await post.getByRole('button', { name: 'Unfavourite' }).waitFor();
  await check(page, 'community-commented-en');

  await page.getByRole('link', { name: 'My favourites' }).click();
  await page.getByRole('heading', { name: 'My favourites' }).waitFor();
  await page.getByRole('article', { name: /Post by/ }).getByText(TEXT).waitFor();
  await check(page, 'favourites-en');
  await page.getByRole('link', { name: 'My feed' }).click();
  await page.getByRole('article', { name: /Post by/ }).getByText(TEXT).waitFor();
  await check(page, 'feed-en');
});

test('Ana sees the comment, replies, and reads the members list', async () => {
  const page = A.page;
  // Back to her community (it loads afresh).
  await page.getByRole('link', { name: '我的动态' }).click();
  await page.getByRole('navigation', { name: '小组导航' }).getByRole('link', { name: NAME }).click();
  const post = page.getByRole('article', { name: /的帖子/ });
  await post.getByRole('button', { name: /评论（1）/ }).click();
  await post.getByText('Beautiful light!').waitFor();
  await post.getByRole('button', { name: '回复' }).click();
  await post.getByLabel(/回复 /).fill('谢谢！');
  await post.getByRole('button', { name: '发送' }).click();
  await post.locator('li.comment.reply', { hasText: '谢谢！' }).waitFor();
  await check(page, 'comment-reply-zh');
  await page.getByRole('button', { name: '成员' }).click();
  const dialog = page.getByRole('dialog', { name: '成员' });
  await dialog.getByText(`${b.handle}@localhost`).waitFor();
  await check(page, 'members-zh');
  await dialog.getByRole('button', { name: '关闭' }).click();
  await page.getByRole('button', { name: '管理记录' }).click();
  await page.getByRole('dialog', { name: '管理记录' }).getByText('还没有管理操作。').waitFor();
  await check(page, 'log-zh');
  await page.getByRole('dialog', { name: '管理记录' }).getByRole('button', { name: '关闭' }).click();
});

test('a new post and a new comment reach an open screen without reloading', async () => {
  // Bo is reading his feed across his communities when Ana posts.
  await B.page.getByRole('heading', { name: 'My feed' }).waitFor();
  await A.page.getByRole('textbox', { name: '发帖' }).fill('江边的新帖子');
  await A.page.getByRole('button', { name: '发布', exact: true }).click();
  await B.page.getByRole('article', { name: /Post by/ }).filter({ hasText: '江边的新帖子' }).waitFor();
  // Bo opens the comments of the first post; Ana's new comment on it appears there.
  await B.page.getByRole('navigation', { name: 'Community sections' }).getByRole('link', { name: NAME }).click();
  const his = B.page.getByRole('article', { name: /Post by/ }).filter({ hasText: TEXT });
  await his.getByRole('button', { name: /Comments/ }).click();
  await his.getByText('谢谢！').waitFor();
  const hers = A.page.getByRole('article', { name: /的帖子/ }).filter({ hasText: TEXT });
  await hers.getByRole('button', { name: /评论/ }).click();
  await hers.getByLabel('写评论').fill('傍晚再去一次');
  await hers.getByRole('button', { name: '发送' }).click();
  await his.getByText('傍晚再去一次').waitFor();
  // Ana's own screen counts it once.
  await hers.getByRole('button', { name: '评论（3）' }).waitFor();
});

test('at phone width the community screen fits the screen', async () => {
  await A.page.setViewportSize({ width: 375, height: 740 });
  await A.page.getByRole('heading', { name: NAME }).waitFor();
  const width = await A.page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `no horizontal scrolling (${width}px)`);
  await check(A.page, 'community-phone-zh');
  await A.page.setViewportSize({ width: 1280, height: 800 });
});

test('Bo is suggested a community from a post he shares, only once he allows personalisation', async () => {
  // Ana also runs a second public community, which Bo is not in.
  const WALKS = '江边徒步 Riverside walks';
  const login = await A.page.request.post(node.url + '/api/v1/sessions', { data: { login: a.handle, password: a.password } });
  const { token } = await login.json();
  const made = await A.page.request.post(node.url + '/api/v1/communities', {
    headers: { authorization: `Bearer ${token}` },
    data: { name: WALKS, description: '周末沿江走走', visibility: 'public' },
  });
  assert.equal(made.status(), 201);
  const page = B.page;
  await page.goto(node.url + '/#/communities/browse');
  const suggested = page.getByRole('region', { name: 'Suggested for you' });
  // Without personalisation: nothing of what he did was kept, and the screen says so.
  await suggested.getByText(/only while you allow personalisation/).waitFor();
  await check(page, 'suggested-off-en');

  const saved = page.waitForResponse((r) => r.url().endsWith('/api/v1/me/consents/personalisation') && r.request().method() === 'PUT');
  await page.goto(node.url + '/#/privacy/purposes');
  await page.getByRole('switch', { name: 'Personalisation' }).check();
  assert.ok((await saved).ok());
  await page.goto(node.url + '/#/communities/browse');
  // His favourite and comment from before were not recorded: no suggestion yet.
  await suggested.getByText(/No suggestions yet/).waitFor();

  await page.getByRole('navigation', { name: 'Community sections' }).getByRole('link', { name: NAME }).click();
  const post = page.getByRole('article', { name: /Post by/ }).filter({ hasText: TEXT });
  await post.getByRole('button', { name: 'Share' }).click();
  await post.getByRole('status').getByText('Link copied').waitFor();
  await page.getByRole('link', { name: 'Find communities' }).click();
  // Ana, a member of the community whose post he shared, also runs this one.
  await suggested.getByRole('link', { name: WALKS }).waitFor();
  assert.equal(await suggested.getByRole('link', { name: NAME }).count(), 0, 'not one he is in');
  // Its one member is counted in the singular (the catalogue's `_one` form).
  await suggested.getByText('1 member', { exact: true }).waitFor();
  await check(page, 'suggested-en');
});
