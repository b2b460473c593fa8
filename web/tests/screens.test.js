// Every screen at phone and desktop width, light and dark: a screenshot under target/browser/
// for a reviewer, and an axe-core scan with no serious or critical violation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startNode, launch, newPerson, axe, shots } from './harness.js';

/** @type {any} */ let node;
/** @type {any} */ let browser;
/** @type {any} */ let setup;

/** Registers and signs in over the API; returns the token. */
async function account(request, url, p, version) {
  const r = await request.post(url + '/api/v1/accounts', { data: { ...p, accept_policy: version } });
  assert.equal(r.status(), 201, await r.text());
  const s = await request.post(url + '/api/v1/sessions', { data: { login: p.handle, password: p.password } });
  return (await s.json()).token;
}

before(async () => {
  node = await startNode();
  browser = await launch();
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const rq = ctx.request;
  const version = (await (await rq.get(node.url + '/api/v1/policy')).json()).version;
  const me = newPerson('mei');
  const friend = newPerson('lin');
  const third = newPerson('sam');
  const tMe = await account(rq, node.url, me, version);
  const tFriend = await account(rq, node.url, friend, version);
  await account(rq, node.url, third, version);
  const auth = (t) => ({ authorization: `Bearer ${t}` });
  // Mei keeps her history on the server, so each new browser of hers shows it.
  await rq.put(node.url + '/api/v1/me/consents/cloud_sync', { headers: auth(tMe), data: { granted: true } });
  const conv = await (await rq.post(node.url + '/api/v1/conversations', { headers: auth(tMe), data: { kind: 'direct', with: `${friend.handle}@localhost` } })).json();
  const group = await (await rq.post(node.url + '/api/v1/conversations', {
    headers: auth(tMe),
    data: { kind: 'group', name: '周末徒步 Weekend hikes', members: [`${friend.handle}@localhost`, `${third.handle}@localhost`], public: false },
  })).json();
  const lines = [
    [tFriend, conv.id, '早上好！周六还去爬山吗？'],
    [tMe, conv.id, '去的，八点在地铁站见。'],
    [tFriend, conv.id, 'Great — I will bring the map and some snacks.'],
    [tMe, group.id, '大家周六早上八点集合。'],
    [tFriend, group.id, 'Count me in!'],
  ];
  let n = 0;
  for (const [t, id, text] of lines) {
    n += 1;
    await rq.post(node.url + `/api/v1/conversations/${id}/messages`, { headers: auth(t), data: { txn_id: `seed-${n}`, body: { type: 'text', text } } });
  }
  await ctx.close();
  setup = { me, conv, group, version };
});
after(async () => {
  await browser?.close();
  await node?.stop();
});

const VARIANTS = [
  { name: 'desktop-light', phone: false, dark: false },
  { name: 'desktop-dark', phone: false, dark: true },
  { name: 'phone-light', phone: true, dark: false },
  { name: 'phone-dark', phone: true, dark: true },
];
const PRIVACY_TABS = ['purposes', 'profile', 'policy', 'notices', 'devices', 'data', 'requests', 'realname', 'page', 'guardian', 'deletion'];

for (const v of VARIANTS) {
  test(`every screen, ${v.name}: screenshot and no serious or critical axe violation`, async () => {
    const context = await browser.newContext({
      ignoreHTTPSErrors: true,
      locale: 'zh-CN',
      viewport: v.phone ? { width: 375, height: 740 } : { width: 1280, height: 800 },
      colorScheme: v.dark ? 'dark' : 'light',
    });
    const page = await context.newPage();
    /** @type {string[]} */
    const found = [];
    const shoot = async (screen) => {
      await page.waitForTimeout(50);
      await page.screenshot({ path: join(shots, `${screen}-${v.name}.png`) });
      for (const x of await axe(page)) found.push(`${screen}: ${x.id} (${x.impact}) ${x.help} @ ${x.nodes.join(', ')}`);
      // Nothing sticks out past the right edge (at 375 px a long name or preview once widened
      // the list and cut off its times and buttons), except inside a box that scrolls sideways.
      const past = await page.evaluate(() => {
        const width = window.innerWidth;
        const out = [];
        for (const el of document.querySelectorAll('body *')) {
          const r = el.getBoundingClientRect();
          if (r.width === 0 || r.height === 0 || r.right <= width + 1) continue;
          let scrolls = false;
          for (let p = el.parentElement; p && !scrolls; p = p.parentElement) {
            const x = getComputedStyle(p).overflowX;
            scrolls = x === 'auto' || x === 'scroll';
          }
          if (!scrolls) out.push(`${el.tagName.toLowerCase()}.${el.className}`);
        }
        return out.slice(0, 5);
      });
      for (const el of past) found.push(`${screen}: ${el} reaches past the right edge`);
    };
    await page.goto(node.url + '/#/login');
    await page.getByRole('heading', { name: '登录' }).waitFor();
    await shoot('login');
    await page.goto(node.url + '/#/read-policy');
    await page.getByRole('region', { name: '隐私政策' }).waitFor();
    await shoot('policy');
    await page.goto(node.url + `/#/register/${setup.version}`);
    await page.getByRole('heading', { name: '创建账号' }).waitFor();
    await shoot('register');
    await page.goto(node.url + '/#/login');
    await page.getByLabel('用户名或手机号').fill(setup.me.handle);
    await page.getByLabel('密码').fill(setup.me.password);
    await page.getByRole('button', { name: '登录' }).click();
    await page.getByRole('navigation', { name: '会话' }).waitFor();
    await shoot('chats');
    await page.goto(node.url + `/#/chats/${setup.conv.id}`);
    await page.locator('.bubble', { hasText: 'Great' }).waitFor();
    await shoot('conversation');
    await page.goto(node.url + `/#/chats/${setup.group.id}`);
    await page.locator('.bubble', { hasText: 'Count me in' }).waitFor();
    await shoot('group');
    await page.getByRole('button', { name: '群设置' }).click();
    await page.getByRole('dialog').getByText('成员', { exact: true }).first().waitFor();
    await shoot('group-manage');
    await page.getByRole('button', { name: '关闭' }).click();
    await page.goto(node.url + '/#/chats');
    await page.getByRole('button', { name: '新建聊天' }).first().click();
    await page.getByRole('dialog').waitFor();
    await shoot('new-chat');
    await page.keyboard.press('Escape');
    for (const tab of PRIVACY_TABS) {
      await page.goto(node.url + `/#/privacy/${tab}`);
      await page.locator('.privacy-main h2').waitFor();
      await page.waitForLoadState('networkidle');
      await shoot(`privacy-${tab}`);
    }
    await context.close();
    assert.deepEqual(found, []);
  });
}
