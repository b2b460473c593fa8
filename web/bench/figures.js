// Measures the client's figures in Chromium against a real node (docs/PERFORMANCE.md, "Web
// client"): bytes of the first load, time to first render, switching conversations, and the
// time from a live message's WebSocket frame to its bubble. A measurement, not a test:
// `node bench/figures.js` (after `cargo build -p node --bin chat-node`).
import { startNode, launch, newPerson } from '../tests/harness.js';

const node = await startNode();
const browser = await launch();
try {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'zh-CN' });
  const page = await ctx.newPage();
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Network.enable');
  let bytes = 0;
  cdp.on('Network.loadingFinished', (e) => (bytes += e.encodedDataLength));
  const t0 = Date.now();
  await page.goto(node.url + '/');
  await page.getByRole('heading', { name: '登录' }).waitFor();
  const firstRender = Date.now() - t0;
  const nav = await page.evaluate(() => {
    const n = /** @type {any} */ (performance.getEntriesByType('navigation')[0]);
    return { domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd };
  });
  console.log(`first load: ${bytes} bytes on the wire (all responses, compressed), first render ${firstRender} ms, DOMContentLoaded ${nav.domContentLoaded.toFixed(0)} ms`);

  // Two conversations with history, then switch between them.
  const rq = ctx.request;
  const version = (await (await rq.get(node.url + '/api/v1/policy')).json()).version;
  const me = newPerson('fig');
  const other = newPerson('oth');
  for (const p of [me, other]) await rq.post(node.url + '/api/v1/accounts', { data: { ...p, accept_policy: version } });
  const tok = async (p) => (await (await rq.post(node.url + '/api/v1/sessions', { data: { login: p.handle, password: p.password } })).json()).token;
  const tMe = await tok(me);
  const tOther = await tok(other);
  const h = (t) => ({ authorization: `Bearer ${t}` });
  await rq.put(node.url + '/api/v1/me/consents/cloud_sync', { headers: h(tMe), data: { granted: true } });
  const direct = await (await rq.post(node.url + '/api/v1/conversations', { headers: h(tMe), data: { kind: 'direct', with: `${other.handle}@localhost` } })).json();
  const group = await (await rq.post(node.url + '/api/v1/conversations', { headers: h(tMe), data: { kind: 'group', name: 'g', members: [`${other.handle}@localhost`] } })).json();
  for (let i = 0; i < 30; i++) {
    for (const c of [direct, group]) {
      const r = await rq.post(node.url + `/api/v1/conversations/${c.id}/messages`, { headers: h(tOther), data: { txn_id: `f${c === direct ? "d" : "g"}${i}`, body: { type: 'text', text: `message ${i}` } } });
      if (r.status() !== 201) throw new Error(`seed send: ${r.status()} ${await r.text()}`);
    }
  }
  await page.getByLabel('用户名或手机号').fill(me.handle);
  await page.getByLabel('密码').fill(me.password);
  await page.getByRole('button', { name: '登录' }).click();
  await page.getByRole('navigation', { name: '会话' }).waitFor();
  /** @type {number[]} */
  const switches = [];
  for (let i = 0; i < 10; i++) {
    const c = i % 2 ? direct : group;
    const t = Date.now();
    await page.goto(node.url + `/#/chats/${c.id}`);
    await page.locator('.bubble', { hasText: 'message 29' }).waitFor();
    if (i >= 2) switches.push(Date.now() - t);
  }
  switches.sort((x, y) => x - y);
  console.log(`switching conversations (history cached after the first visit): median ${switches[switches.length >> 1]} ms, max ${switches[switches.length - 1]} ms`);

  // Live messages: the store's own measure of frame-to-drawn (synchronous redraw in onEvent).
  /** @type {number[]} */
  const draws = [];
  for (let i = 0; i < 20; i++) {
    await rq.post(node.url + `/api/v1/conversations/${direct.id}/messages`, { headers: h(tOther), data: { txn_id: `live${i}`, body: { type: 'text', text: `live ${i}` } } });
    await page.locator('.bubble', { hasText: `live ${i}` }).first().waitFor();
    draws.push(await page.evaluate(() => /** @type {any} */ (window).shanliao.store.lastDrawDelay));
  }
  draws.sort((x, y) => x - y);
  console.log(`live message, WebSocket frame to drawn bubble: median ${draws[draws.length >> 1].toFixed(1)} ms, max ${draws[draws.length - 1].toFixed(1)} ms`);

  // A conversation of 10,000 messages: open it, then scroll up through 20 pages.
  const big = await (await rq.post(node.url + '/api/v1/conversations', { headers: h(tMe), data: { kind: 'group', name: 'big', members: [`${other.handle}@localhost`] } })).json();
  const N = 10000;
  const seedStart = Date.now();
  for (let i = 0; i < N; i += 20) {
    await Promise.all(
      Array.from({ length: 20 }, (_, k) =>
        rq.post(node.url + `/api/v1/conversations/${big.id}/messages`, { headers: h(tOther), data: { txn_id: `big${i + k}`, body: { type: 'text', text: `long history ${i + k}` } } }),
      ),
    );
  }
  console.log(`seeded ${N} messages in ${((Date.now() - seedStart) / 1000).toFixed(0)} s`);
  // A fresh browser of Mei's (her history is on the node: cloud_sync) opens it.
  const ctx2 = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'zh-CN' });
  const page2 = await ctx2.newPage();
  await page2.goto(node.url + '/');
  await page2.getByLabel('用户名或手机号').fill(me.handle);
  await page2.getByLabel('密码').fill(me.password);
  await page2.getByRole('button', { name: '登录' }).click();
  await page2.getByRole('navigation', { name: '会话' }).waitFor();
  /** @type {number[]} */
  const pages = [];
  page2.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === `/api/v1/conversations/${big.id}/messages`) pages.push(Number(u.searchParams.get('limit')));
  });
  await page2.evaluate(() => {
    /** @type {any} */ (window).longFrames = [];
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) /** @type {any} */ (window).longFrames.push(e.duration);
    }).observe({ type: 'longtask', buffered: false });
  });
  await page2.goto(node.url + `/#/chats/${big.id}`);
  await page2.locator('.bubble', { hasText: `long history ${N - 1}` }).waitFor();
  const scrollStart = Date.now();
  // Loaded messages are counted in the store: the list draws only those near the view.
  const loaded = () => page2.evaluate((id) => /** @type {any} */ (window).shanliao.store.history.get(id).items.length, big.id);
  let maxDom = 0;
  for (let k = 0; k < 20; k++) {
    const before = await loaded();
    await page2.locator('.messages').evaluate((el) => el.scrollBy(0, -el.scrollTop));
    await page2.waitForFunction(
      ([id, n]) => /** @type {any} */ (window).shanliao.store.history.get(id).items.length > n,
      /** @type {[string, number]} */ ([big.id, before]),
    );
    maxDom = Math.max(maxDom, await page2.locator('.messages .msg').count());
  }
  const scrollMs = Date.now() - scrollStart;
  const longFrames = await page2.evaluate(() => /** @type {any} */ (window).longFrames);
  // Then scroll back down through everything loaded, a screen at a time, as a reader would.
  await page2.evaluate(() => (/** @type {any} */ (window).longFrames = []));
  const downStart = Date.now();
  const screens = await page2.locator('.messages').evaluate(async (el) => {
    let n = 0;
    while (el.scrollTop + el.clientHeight < el.scrollHeight - 40 && n < 2000) {
      el.scrollBy(0, el.clientHeight);
      await new Promise((r) => requestAnimationFrame(() => r(null)));
      n++;
    }
    return n;
  });
  const downMs = Date.now() - downStart;
  const downFrames = await page2.evaluate(() => /** @type {any} */ (window).longFrames);
  const domCount = await page2.locator('.messages .msg').count();
  const max = (l) => (l.length ? ` (max ${Math.max(...l).toFixed(0)} ms)` : '');
  console.log(`10,000-message conversation: ${pages.length} history requests, each limit ${[...new Set(pages)].join(',')}; 20 pages scrolled up in ${scrollMs} ms, ${await loaded()} loaded, at most ${maxDom} messages in the DOM; long tasks (>50 ms) during it: ${longFrames.length}${max(longFrames)}`);
  console.log(`  scrolled back down ${screens} screens in ${downMs} ms (${(downMs / Math.max(1, screens)).toFixed(1)} ms a screen), ${domCount} messages in the DOM at the end; long tasks: ${downFrames.length}${max(downFrames)}`);
} finally {
  await browser.close();
  await node.stop();
}
