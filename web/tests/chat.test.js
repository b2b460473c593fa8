// Two people in two browser contexts: register after reading the policy, chat live, form a
// group, send an image whose metadata is gone for the receiver, lose the network and catch up
// (a failed send retried with the same txn id arrives once), revoke cloud_sync and see history
// go, export their data, request deletion and cancel it.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, launch, person, newPerson, register, shots } from './harness.js';
import { jpegWithGps } from './fixtures.js';
import { join } from 'node:path';
import { writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

/** @type {any} */ let node;
/** @type {any} */ let browser;
/** @type {any} */ let A;
/** @type {any} */ let B;
const a = newPerson('ana');
const b = newPerson('bo');

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

// The last state of both screens, for looking at after a failure.
afterEach(async (t) => {
  const name = String(t.name).replace(/[^a-z0-9]+/gi, '-').slice(0, 40);
  await A?.page.screenshot({ path: join(shots, `chat-${name}-ana.png`) }).catch(() => {});
  await B?.page.screenshot({ path: join(shots, `chat-${name}-bo.png`) }).catch(() => {});
});

const addr = (p) => `${p.handle}@localhost`;

async function openDirect(page, other) {
  await page.getByRole('button', { name: /新建聊天|New chat/ }).first().click();
  await page.getByLabel(/^(地址|Address)$/).fill(addr(other));
  await page.getByRole('button', { name: /开始聊天|Start chatting/ }).click();
  await page.getByRole('textbox', { name: /^(消息|Message)$/ }).waitFor();
}

/** The message bubbles showing `text` (not the list preview or the announcement). */
const bubble = (page, text) => page.locator('.bubble', { hasText: text });

async function say(page, text) {
  const box = page.getByRole('textbox', { name: /^(消息|Message)$/ });
  await box.fill(text);
  await box.press('Enter');
}

test('both read the policy and register, in Chinese and in English', async () => {
  await register(A.page, a);
  await register(B.page, b);
  // Bo keeps his history on the server (for his other browsers); Ana does not.
  await B.page.goto(node.url + '/#/privacy/purposes');
  await B.page.getByRole('switch', { name: /Cloud sync/ }).check();
  await B.page.getByText(/Allowed since/).first().waitFor();
  await B.page.goto(node.url + '/#/chats');
  assert.equal(await A.page.getAttribute('html', 'lang'), 'zh-CN');
  assert.equal(await B.page.getAttribute('html', 'lang'), 'en');
});

test('a direct chat is live both ways, with unread count in the list and the tab title', async () => {
  await openDirect(A.page, b);
  await say(A.page, '你好，Bo！');
  // Bo sees the conversation appear with one unread message, without reloading.
  const row = B.page.getByRole('link', { name: new RegExp(addr(a)) });
  await row.waitFor();
  await B.page.getByText('1', { exact: true }).waitFor();
  assert.match(await B.page.title(), /^\(1\) /);
  await row.click();
  await bubble(B.page, '你好，Bo！').waitFor();
  assert.doesNotMatch(await B.page.title(), /^\(\d+\)/);
  await say(B.page, 'Hi Ana, good to see you');
  await bubble(A.page, 'Hi Ana, good to see you').waitFor();
});

test('the draft of a conversation is kept while another is open', async () => {
  const box = A.page.getByRole('textbox', { name: '消息' });
  await box.fill('half-written thought');
  await A.page.goto(node.url + '/#/chats');
  await A.page.getByRole('link', { name: new RegExp(addr(b)) }).click();
  assert.equal(await A.page.getByRole('textbox', { name: '消息' }).inputValue(), 'half-written thought');
  await A.page.getByRole('textbox', { name: '消息' }).fill('');
});

test('a message recalled by its author becomes a tombstone for the other', async () => {
  await say(A.page, 'oops, wrong chat');
  await bubble(B.page, 'oops, wrong chat').waitFor();
  const mine = A.page.locator('.msg.mine', { hasText: 'oops, wrong chat' });
  await mine.getByRole('button', { name: '消息操作' }).click();
  await A.page.getByRole('menuitem', { name: '撤回' }).click();
  await bubble(B.page, 'Message recalled').waitFor();
  assert.equal(await bubble(B.page, 'oops, wrong chat').count(), 0);
});

test('offline: a send fails and is kept, retry reuses its txn id, and missed messages arrive on reconnect', async () => {
  // Watch Ana's sends: the retry must carry the first attempt's txn id.
  /** @type {string[]} */
  const txns = [];
  A.page.on('request', (r) => {
    if (r.method() === 'POST' && /\/messages$/.test(new URL(r.url()).pathname)) txns.push(JSON.parse(r.postData() || '{}').txn_id);
  });
  await A.context.setOffline(true);
  await A.page.getByText('已离线', { exact: false }).waitFor();
  await say(A.page, 'sent while offline');
  await A.page.getByRole('button', { name: '重试' }).waitFor();
  // Bo writes while Ana is away.
  await say(B.page, 'did you get this?');
  await A.context.setOffline(false);
  await bubble(A.page, 'did you get this?').waitFor();
  await bubble(B.page, 'sent while offline').waitFor();
  await A.page.locator('.outgoing').waitFor({ state: 'detached' });
  assert.ok(txns.length >= 2 && txns.every((t) => t === txns[0]), JSON.stringify(txns));
  assert.equal(await bubble(B.page, 'sent while offline').count(), 1);
});

test('a group is formed, renamed, and a member made admin', async () => {
  await A.page.getByRole('button', { name: '新建聊天' }).first().click();
  await A.page.getByRole('tab', { name: '群聊' }).click();
  await A.page.getByLabel('群名称').fill('Reading club');
  await A.page.getByLabel('成员').fill(addr(b));
  await A.page.getByRole('button', { name: '创建群聊' }).click();
  await A.page.getByRole('heading', { name: 'Reading club' }).waitFor();
  await say(A.page, 'welcome to the club');
  await B.page.getByRole('link', { name: /Reading club/ }).click();
  await bubble(B.page, 'welcome to the club').waitFor();
  await A.page.getByRole('button', { name: '群设置' }).click();
  await A.page.getByLabel('群名称').fill('Book club');
  await A.page.getByRole('button', { name: '改名' }).click();
  await A.page.getByText('已改名。').waitFor();
  await A.page.getByRole('button', { name: '设为管理员' }).click();
  await A.page.getByText('角色已更改。').waitFor();
  await A.page.getByRole('button', { name: '关闭' }).click();
  await B.page.getByRole('heading', { name: 'Book club' }).waitFor();
});

test('an image is sent after the photos purpose is asked for, and arrives without its GPS metadata', async () => {
  const file = join(tmpdir(), `shanliao-gps-${process.pid}.jpg`);
  writeFileSync(file, await jpegWithGps(A.page));
  // Refusing first: nothing is sent, chat still works.
  await A.page.setInputFiles('input[type=file]', file);
  await A.page.getByRole('dialog', { name: /相册/ }).waitFor();
  await A.page.getByRole('button', { name: '暂不' }).click();
  await A.page.getByText(/未发送：未允许“相册”/).waitFor();
  await A.page.setInputFiles('input[type=file]', file);
  await A.page.getByRole('dialog', { name: /相册/ }).waitFor();
  // What Bo's browser downloads is what the node serves to the receiver.
  const served = B.page.waitForResponse((r) => /\/api\/v1\/media\/[^/]+$/.test(new URL(r.url()).pathname));
  await A.page.getByRole('button', { name: '允许' }).click();
  await B.page.locator('img.media-image').waitFor();
  const response = await served;
  assert.equal(response.status(), 200);
  // Fetch the same file again as Bo, outside the page (whose CSP rightly refuses blob: fetches).
  const login = await B.page.request.post(node.url + '/api/v1/sessions', { data: { login: b.handle, password: b.password } });
  const { token } = await login.json();
  const again = await B.page.request.get(response.url(), { headers: { authorization: `Bearer ${token}` } });
  assert.equal(again.status(), 200);
  const got = await again.body();
  assert.ok(got.length > 100, `the image arrived (${got.length} bytes)`);
  const sent = readFileSync(file);
  assert.ok(sent.includes(Buffer.from('Exif')), 'the fixture has EXIF');
  assert.ok(!got.includes(Buffer.from('Exif')), 'the received image has no EXIF');
  assert.equal(got[0], 0xff);
  assert.equal(got[1], 0xd8);
});

test('revoking cloud_sync takes history away from a newly signed-in browser', async () => {
  // Bo signs in on a second browser: with cloud_sync it sees the history.
  const B2 = await person(browser, node.url, { locale: 'en-US' });
  await B2.page.getByLabel('Handle or phone number').fill(b.handle);
  await B2.page.getByLabel('Password').fill(b.password);
  await B2.page.getByRole('button', { name: 'Sign in' }).click();
  await B2.page.getByRole('link', { name: /Book club/ }).click();
  await bubble(B2.page, 'welcome to the club').waitFor();
  await B2.page.goto(node.url + '/#/privacy/purposes');
  await B2.page.getByRole('switch', { name: /Cloud sync/ }).uncheck();
  await B2.page.getByText('Not allowed').first().waitFor();
  await B2.page.goto(node.url + '/#/chats');
  await B2.page.getByRole('link', { name: /Book club/ }).click();
  await B2.page.getByText('This is the beginning of the conversation.').waitFor();
  assert.equal(await bubble(B2.page, 'welcome to the club').count(), 0);
  await B2.context.close();
});

test('a send whose own event arrives before its answer is shown once, and settles', async () => {
  // The node's answer to Ana's send is held back until her stream has brought the message.
  /** @type {() => void} */
  let release = () => {};
  const held = new Promise((r) => (release = () => r(undefined)));
  const sends = '**/api/v1/conversations/*/messages';
  await A.page.route(sends, async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    const response = await route.fetch();
    await held;
    await route.fulfill({ response });
  });
  await A.page.goto(node.url + '/#/chats');
  await A.page.getByRole('link', { name: new RegExp(addr(b)) }).click();
  await say(A.page, 'echo before answer');
  await A.page.locator('.msg:not(.outgoing) .bubble', { hasText: 'echo before answer' }).waitFor();
  assert.equal(await bubble(A.page, 'echo before answer').count(), 1);
  release();
  await A.page.locator('.outgoing').waitFor({ state: 'detached' });
  assert.equal(await bubble(A.page, 'echo before answer').count(), 1);
  await A.page.unroute(sends, { behavior: 'wait' });
});

test('the data export downloads as a JSON file', async () => {
  await A.page.goto(node.url + '/#/privacy/data');
  const download = A.page.waitForEvent('download');
  await A.page.getByRole('button', { name: '下载我的数据' }).click();
  const d = await download;
  const path = await d.path();
  const text = readFileSync(path, 'utf8');
  assert.ok(text.includes(a.handle), 'the export names its owner');
  await A.page.getByText('数据已下载。').waitFor();
});

test('deletion is requested with the password, locks the account, and is cancelled', async () => {
  await A.page.goto(node.url + '/#/privacy/deletion');
  await A.page.getByLabel('密码').fill(a.password);
  await A.page.getByRole('button', { name: '注销我的账号' }).click();
  await A.page.getByText(/你的账号将于/).waitFor();
  await A.page.screenshot({ path: join(shots, 'deletion-pending.png') });
  await A.page.getByRole('button', { name: '撤销注销' }).click();
  await A.page.getByText('已撤销注销，账号已恢复。').waitFor();
  await A.page.goto(node.url + '/#/chats');
  await A.page.getByRole('link', { name: /Book club/ }).waitFor();
  assert.deepEqual(A.problems, []);
  assert.deepEqual(B.problems, []);
});
