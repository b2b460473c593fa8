// Two people in two browsers become friends: a request with a note arrives live on the other's
// friends screen, is accepted, and both lists update without a reload; then blocking, the
// blocked list, unblocking and the who-may-message-me setting. Screenshots and axe scans of
// each state, in Chinese and English.
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

/** Screenshot `name` and assert no serious or critical axe violation. */
async function check(page, name) {
  await page.waitForTimeout(50);
  await page.screenshot({ path: join(shots, `friends-${name}.png`), fullPage: true });
  const v = await axe(page);
  assert.deepEqual(v, [], `${name}: ${JSON.stringify(v)}`);
}

test('a request with a note arrives live, is accepted, and both lists update; block, unblock and the message setting', async () => {
  const mei = await person(browser, node.url, { locale: 'zh-CN' });
  const lin = await person(browser, node.url, { locale: 'en-GB', phone: true });
  const pm = newPerson('mei');
  const pl = newPerson('lin');
  await register(mei.page, pm);
  await register(lin.page, pl);
  const linAddress = `${pl.handle}@localhost`;

  await lin.page.getByRole('link', { name: 'Friends' }).click();
  await lin.page.getByRole('heading', { name: 'Requests to me' }).waitFor();
  await lin.page.getByText('No requests waiting for you.').waitFor();
  await check(lin.page, 'empty-en-phone');

  await mei.page.getByRole('link', { name: '好友' }).click();
  await mei.page.getByLabel('地址', { exact: true }).fill(linAddress);
  await mei.page.getByLabel('附言').fill('我是梅，周末徒步认识的');
  await mei.page.getByRole('button', { name: '发送请求' }).click();
  await mei.page.getByText('请求已发送。').waitFor();
  const mine = mei.page.getByRole('region', { name: '我发出的请求' });
  await mine.getByText(linAddress).waitFor();
  await check(mei.page, 'sent-zh');

  // Lin's screen was open all along: the request appears without a reload.
  const incoming = lin.page.getByRole('region', { name: 'Requests to me' });
  await incoming.getByText('“我是梅，周末徒步认识的”').waitFor();
  await check(lin.page, 'incoming-en-phone');
  await incoming.getByRole('button', { name: `Accept ${pm.nickname}` }).click();
  await lin.page.getByRole('region', { name: 'My friends' }).getByText(`${pm.handle}@localhost`).waitFor();

  // And Mei's list follows live too.
  const meiFriends = mei.page.getByRole('region', { name: '我的好友' });
  await meiFriends.getByText(linAddress).waitFor();
  assert.equal(await mine.getByText(linAddress).count(), 0, 'no longer pending');
  await check(mei.page, 'friends-zh');

  // Only friends may message Mei now; the choice is stored.
  await mei.page.getByRole('radio', { name: '仅好友' }).check();
  await mei.page.getByText('已保存').first().waitFor();
  await mei.page.getByRole('link', { name: '返回聊天' }).click();
  await mei.page.getByRole('link', { name: '好友' }).click();
  await mei.page.getByRole('heading', { name: '谁可以给我发消息' }).waitFor();
  assert.equal(await mei.page.getByRole('radio', { name: '仅好友' }).isChecked(), true);

  // Blocking ends the friendship on both sides; Lin's screen shows only that it ended.
  await mei.page.getByRole('region', { name: '我的好友' }).getByRole('button', { name: `拉黑 ${pl.nickname}` }).click();
  await mei.page.getByText('已拉黑，对方不会收到通知。').waitFor();
  const blocked = mei.page.getByRole('region', { name: '黑名单' });
  await blocked.getByText(linAddress).waitFor();
  await lin.page.getByText('No friends yet. Add someone by their address.').waitFor();
  assert.equal(await lin.page.getByRole('region', { name: 'Blocked' }).getByText(`${pm.handle}@localhost`).count(), 0, 'Lin sees no block');
  await check(mei.page, 'blocked-zh');

  await blocked.getByRole('button', { name: `将 ${pl.nickname} 移出黑名单` }).click();
  await mei.page.getByText('黑名单是空的。').waitFor();

  for (const p of [mei, lin]) {
    assert.deepEqual(p.problems, []);
    await p.context.close();
  }
});
