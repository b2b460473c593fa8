// A long conversation in the windowed message list: only the rows near the view are in the
// page, older pages come in as you scroll up without moving what you are reading, and the end
// follows new messages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, launch, person, newPerson, shots, axe } from './harness.js';
import { join } from 'node:path';

/** @type {any} */ let node;
/** @type {any} */ let browser;
const me = newPerson('mei');
const other = newPerson('oth');

before(async () => {
  node = await startNode();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await node?.stop();
});

test('a 400-message conversation draws a window of it and pages in older messages as you scroll up', async () => {
  const P = await person(browser, node.url, { locale: 'en-US' });
  const rq = P.context.request;
  const version = (await (await rq.get(node.url + '/api/v1/policy')).json()).version;
  for (const p of [me, other]) await rq.post(node.url + '/api/v1/accounts', { data: { ...p, accept_policy: version } });
  const tok = async (p) => (await (await rq.post(node.url + '/api/v1/sessions', { data: { login: p.handle, password: p.password } })).json()).token;
  const tMe = await tok(me);
  const tOther = await tok(other);
  const auth = (t) => ({ authorization: `Bearer ${t}` });
  await rq.put(node.url + '/api/v1/me/consents/cloud_sync', { headers: auth(tMe), data: { granted: true } });
  const conv = await (await rq.post(node.url + '/api/v1/conversations', { headers: auth(tMe), data: { kind: 'direct', with: `${other.handle}@localhost` } })).json();
  const N = 400;
  for (let i = 0; i < N; i += 20) {
    await Promise.all(
      Array.from({ length: 20 }, (_, k) =>
        rq.post(node.url + `/api/v1/conversations/${conv.id}/messages`, {
          headers: auth(i + k === 7 ? tMe : tOther),
          data: { txn_id: `h${i + k}`, body: { type: 'text', text: `line ${i + k}${(i + k) % 9 === 0 ? ' — a longer one that wraps onto a second line at this width, to vary the heights' : ''}` } },
        }),
      ),
    );
  }
  await P.page.getByLabel('Handle or phone number').fill(me.handle);
  await P.page.getByLabel('Password').fill(me.password);
  await P.page.getByRole('button', { name: 'Sign in' }).click();
  await P.page.getByRole('link', { name: new RegExp(other.handle) }).click();
  const list = P.page.locator('.messages');
  await P.page.locator('.bubble', { hasText: `line ${N - 1}` }).waitFor();
  const loaded = () => P.page.evaluate((id) => /** @type {any} */ (window).shanliao.store.history.get(id).items.length, conv.id);
  const inDom = () => P.page.locator('.messages .msg').count();
  assert.equal(await loaded(), 50);
  assert.ok((await inDom()) < 50, `a window of the first page is drawn (${await inDom()})`);

  // Up to the beginning, a page at a time; what is at the top stays in view as pages arrive.
  let guard = 0;
  while (!(await P.page.getByText('This is the beginning of the conversation.').isVisible()) && guard++ < 40) {
    // Near the top (but not yet where older messages load), note the first message in view …
    const top = await list.evaluate(async (el) => {
      el.scrollTop = 320;
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const b = el.getBoundingClientRect();
      const row = [...el.querySelectorAll('.row')].find((r) => r.getBoundingClientRect().bottom > b.top + 10);
      return row ? Number(/** @type {HTMLElement} */ (row).dataset.seq) : 0;
    });
    const n = await loaded();
    // … then move up into the part where they do.
    await list.evaluate((el) => el.scrollBy(0, -150));
    await P.page.waitForFunction(([id, k]) => { const h = /** @type {any} */ (window).shanliao.store.history.get(id); return h.items.length > k || !h.hasMore; }, /** @type {[string, number]} */ ([conv.id, n]));
    // The message that was at the top is still on screen after the older page came in above it.
    if ((await loaded()) > n) {
      await P.page.waitForTimeout(50);
      const seen = await list.evaluate((el, seq) => {
        const row = el.querySelector(`.row[data-seq="${seq}"]`);
        if (!row) return 'not drawn';
        const r = row.getBoundingClientRect();
        const b = el.getBoundingClientRect();
        return r.bottom > b.top && r.top < b.bottom ? 'visible' : `off screen (${Math.round(r.top - b.top)} px)`;
      }, top);
      assert.equal(seen, 'visible', `seq ${top} after loading ${await loaded()}`);
    }
    assert.ok((await inDom()) < 80, `the DOM holds a window, not everything (${await inDom()} of ${await loaded()})`);
  }
  assert.equal(await loaded(), N);
  await P.page.locator('.bubble', { hasText: /^line 0/ }).waitFor();
  await P.page.screenshot({ path: join(shots, 'history-beginning-en.png') });
  assert.deepEqual(await axe(P.page), []);

  // Scrolling down through the whole history draws every message on the way.
  const seen = await list.evaluate(async (el) => {
    const s = new Set();
    for (let k = 0; k < 1000 && el.scrollTop + el.clientHeight < el.scrollHeight - 2; k++) {
      for (const r of el.querySelectorAll('.row')) s.add(/** @type {HTMLElement} */ (r).dataset.seq);
      el.scrollBy(0, el.clientHeight / 2);
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    }
    for (const r of el.querySelectorAll('.row')) s.add(/** @type {HTMLElement} */ (r).dataset.seq);
    return s.size;
  });
  assert.equal(seen, N, 'no message skipped');

  // At the end, a new message is followed.
  await rq.post(node.url + `/api/v1/conversations/${conv.id}/messages`, { headers: auth(tOther), data: { txn_id: 'late', body: { type: 'text', text: 'a late one' } } });
  const late = P.page.locator('.bubble', { hasText: 'a late one' });
  await late.waitFor();
  await P.page.waitForFunction(() => { const el = document.querySelector('.messages'); return !!el && el.scrollHeight - el.scrollTop - el.clientHeight < 40; });
  assert.ok(await late.isVisible());
  await P.page.screenshot({ path: join(shots, 'history-end-en.png') });
  assert.deepEqual(P.problems, []);
  await P.context.close();
});
