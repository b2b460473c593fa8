// Keyboard alone: sign in, start a chat and send, with a visible focus ring on every stop;
// a message from the other person is announced in the live region for screen readers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, launch, person, newPerson } from './harness.js';

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

/** Tabs until the focused element matches `pred` (at most 20 stops), checking each has a ring. */
async function tabTo(page, pred) {
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press('Tab');
    const info = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const cs = getComputedStyle(el);
      return {
        label: el.getAttribute('aria-label') || el.getAttribute('id') || el.textContent?.trim().slice(0, 40) || el.tagName,
        ring: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2,
      };
    });
    if (!info) continue;
    assert.ok(info.ring, `no visible focus on ${info.label}`);
    if (pred(info.label)) return;
  }
  assert.fail('never reached the control');
}

test('sign in, start a chat and send by keyboard alone; incoming messages are announced', async () => {
  const rq = (await browser.newContext({ ignoreHTTPSErrors: true })).request;
  const version = (await (await rq.get(node.url + '/api/v1/policy')).json()).version;
  const me = newPerson('kay');
  const other = newPerson('lee');
  for (const p of [me, other]) assert.equal((await rq.post(node.url + '/api/v1/accounts', { data: { ...p, accept_policy: version } })).status(), 201);
  const { page, problems } = await person(browser, node.url, { locale: 'zh-CN' });
  await page.getByRole('heading', { name: '登录' }).waitFor();
  await tabTo(page, (l) => l === 'login');
  await page.keyboard.type(me.handle);
  await tabTo(page, (l) => l === 'password');
  await page.keyboard.type(me.password);
  await page.keyboard.press('Enter');
  await page.getByRole('navigation', { name: '会话' }).waitFor();
  await tabTo(page, (l) => l === '新建聊天');
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').waitFor();
  await tabTo(page, (l) => l === 'address');
  await page.keyboard.type(`${other.handle}@localhost`);
  await page.keyboard.press('Enter');
  // The composer takes the focus when the conversation opens.
  await page.waitForFunction(() => document.activeElement?.id === 'composer-text');
  await page.keyboard.type('typed without a mouse');
  await page.keyboard.press('Enter');
  await page.locator('.msg:not(.outgoing) .bubble', { hasText: 'typed without a mouse' }).waitFor();

  const token = (await (await rq.post(node.url + '/api/v1/sessions', { data: { login: other.handle, password: other.password } })).json()).token;
  const convs = (await (await rq.get(node.url + '/api/v1/conversations', { headers: { authorization: `Bearer ${token}` } })).json()).conversations;
  await rq.post(node.url + `/api/v1/conversations/${convs[0].id}/messages`, {
    headers: { authorization: `Bearer ${token}` },
    data: { txn_id: 'kb-1', body: { type: 'text', text: 'heard you loud and clear' } },
  });
  const live = page.locator('[aria-live="polite"]');
  await page.waitForFunction(() => /heard you loud and clear/.test(document.querySelector('[aria-live="polite"]')?.textContent || ''));
  assert.match(await live.textContent(), new RegExp(`${other.handle}@localhost`));
  assert.deepEqual(problems, []);
});
