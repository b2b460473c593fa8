// Finding people in three browsers (issue 22): Lin and Bo choose to be found; Mei pastes their
// numbers, which are hashed in her browser (only hashes go out) and matched; she dismisses one
// suggestion and befriends the other; Mei and Lin see each other nearby from a faked position,
// of which only the H3 cell leaves the browser, until Lin stops sharing; Mei's friend invite is
// opened by Bo while signed out and answered after signing in; Lin uses Mei's group invite and
// is let in. Screenshots at phone and desktop width and axe scans of each screen.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startNode, launch, person, newPerson, register, axe, shots } from './harness.js';
import { latLngToCell } from '../vendor/h3/h3-js.es.js';

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
  await page.screenshot({ path: join(shots, `discovery-${name}.png`), fullPage: true });
  const v = await axe(page);
  assert.deepEqual(v, [], `${name}: ${JSON.stringify(v)}`);
}

/** Answers the purpose question that is open on `page` with "allow". */
async function allow(page, allowLabel) {
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.getByRole('button', { name: allowLabel, exact: true }).click();
  await dialog.waitFor({ state: 'detached' });
}

// Tian'anmen and a point about 300 m east: the same resolution-7 cell.
const HERE = { latitude: 39.9087, longitude: 116.3975 };
const NEXT_DOOR = { latitude: 39.9087, longitude: 116.4010 };

test('contacts match, a suggestion is dismissed and one befriended, nearby by cell only, friend and group invites', async () => {
  const mei = await person(browser, node.url, { locale: 'zh-CN' });
  const lin = await person(browser, node.url, { locale: 'en-GB', phone: true });
  const bo = await person(browser, node.url, { locale: 'en-GB' });
  const pm = newPerson('mei');
  const pl = newPerson('lin');
  const pb = newPerson('bo');
  await register(mei.page, pm);
  await register(lin.page, pl);
  await register(bo.page, pb);
  const linAddress = `${pl.handle}@localhost`;
  const boAddress = `${pb.handle}@localhost`;

  // Lin and Bo choose to be found by phone number and suggested to others.
  for (const [p, shot] of [[lin, 'choices-en-phone'], [bo, null]]) {
    await p.page.getByRole('link', { name: 'Find people' }).click();
    await p.page.getByRole('heading', { name: 'My choices' }).waitFor();
    await p.page.getByRole('switch', { name: 'Suggest me to others' }).click();
    await allow(p.page, 'Allow');
    await p.page.getByRole('switch', { name: 'Findable by my phone number' }).click();
    await p.page.getByRole('switch', { name: 'Findable by my phone number', checked: true }).waitFor();
    await p.page.getByRole('switch', { name: 'Suggest me to others', checked: true }).waitFor();
    if (shot) await check(p.page, shot);
  }

  // Mei pastes two numbers (one national, one international) and something that is none.
  /** @type {string[]} */
  const uploads = [];
  mei.page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/api/v1/me/contacts')) uploads.push(r.postData() || '');
  });
  await mei.page.getByRole('link', { name: '找人' }).click();
  await mei.page.getByRole('link', { name: '通讯录好友' }).click();
  const national = pl.phone.slice(3).replace(/^(\d{3})(\d{4})(\d{4})$/, '$1 $2 $3');
  const intl = '+86 ' + pb.phone.slice(3).replace(/^(\d{3})(\d{4})(\d{4})$/, '$1-$2-$3');
  await mei.page.getByLabel('手机号码').fill(`林 ${national}\n+0 123 4567`);
  // And a contacts file: read in the browser, never sent.
  const vcf = `BEGIN:VCARD\r\nVERSION:3.0\r\nFN:${pb.nickname}\r\nTEL;TYPE=CELL:${intl}\r\nEND:VCARD\r\n`;
  await mei.page.getByLabel('或选择通讯录文件（.vcf 或 .csv）').setInputFiles({ name: 'contacts.vcf', mimeType: 'text/vcard', buffer: Buffer.from(vcf) });
  await mei.page.getByText('2 个号码待匹配。 1 项不是手机号码，已略过。').waitFor();
  await check(mei.page, 'contacts-zh');
  await mei.page.getByRole('button', { name: '匹配这些号码' }).click();
  await mei.page.getByRole('dialog', { name: '允许使用“通讯录匹配”？' }).waitFor();
  await check(mei.page, 'contacts-purpose-zh');
  await allow(mei.page, '允许');
  await mei.page.getByText('已匹配 2 个号码：找到 2 人。', { exact: false }).waitFor();
  assert.equal(uploads.length, 1);
  const sent = JSON.parse(uploads[0]);
  assert.deepEqual(Object.keys(sent), ['hashes']);
  assert.equal(sent.hashes.length, 2);
  for (const h of sent.hashes) assert.match(h, /^[0-9a-f]{64}$/);
  for (const digits of [pl.phone.slice(3), pb.phone.slice(3)]) assert.ok(!uploads[0].includes(digits), 'no number in the upload');

  // The matches show once Mei lets herself be shown suggestions.
  await mei.page.getByRole('button', { name: '开启推荐' }).click();
  await allow(mei.page, '允许');
  const matches = mei.page.getByRole('list', { name: '在本服务器上的联系人' });
  await matches.getByText(linAddress).waitFor();
  await matches.getByText(boAddress).waitFor();
  await check(mei.page, 'contact-matches-zh');

  // Suggestions: Bo dismissed (and stays dismissed), Lin befriended.
  await mei.page.getByRole('link', { name: '可能认识的人' }).click();
  const list = mei.page.getByRole('list', { name: '推荐' });
  await list.getByText(boAddress).waitFor();
  assert.equal(await list.locator('li', { hasText: linAddress }).getByText('在你的通讯录中').count(), 1);
  await check(mei.page, 'suggestions-zh');
  // By keyboard: the buttons are plain buttons in reading order.
  await list.getByRole('button', { name: `加好友：${pb.nickname}` }).focus();
  await mei.page.keyboard.press('Tab');
  assert.equal(await mei.page.evaluate(() => document.activeElement?.getAttribute('aria-label')), `不感兴趣：${pb.nickname}`);
  await mei.page.keyboard.press('Enter');
  await list.getByText(boAddress).waitFor({ state: 'detached' });
  await list.getByRole('button', { name: `加好友：${pl.nickname}` }).click();
  await list.getByText('已发送请求').waitFor();
  await mei.page.getByRole('link', { name: '通讯录好友' }).click();
  await mei.page.getByRole('link', { name: '可能认识的人' }).click();
  await mei.page.getByRole('list', { name: '推荐' }).getByText(linAddress).waitFor();
  assert.equal(await mei.page.getByText(boAddress).count(), 0, 'a dismissed suggestion stays dismissed');

  await lin.page.getByRole('link', { name: 'Back to chats' }).click();
  await lin.page.getByRole('link', { name: 'Friends' }).click();
  await lin.page.getByRole('button', { name: `Accept ${pm.nickname}` }).click();
  await lin.page.getByRole('region', { name: 'My friends' }).getByText(`${pm.handle}@localhost`).waitFor();
  // A friend is no longer suggested (the list follows the friend event live).
  await mei.page.getByText('暂时没有推荐。').waitFor();

  // Nearby: a faked position; only its resolution-7 cell is sent.
  /** @type {string[]} */
  const shared = [];
  for (const [p, where] of [[mei, HERE], [lin, NEXT_DOOR]]) {
    await p.context.grantPermissions(['geolocation'], { origin: node.url });
    await p.context.setGeolocation(where);
    p.page.on('request', (r) => {
      if (r.method() === 'PUT' && r.url().endsWith('/api/v1/me/location')) shared.push(r.postData() || '');
    });
  }
  await lin.page.getByRole('link', { name: 'Back to chats' }).click();
  await lin.page.getByRole('link', { name: 'Find people' }).click();
  await lin.page.getByRole('link', { name: 'People nearby' }).click();
  await lin.page.getByText('You are not visible to people nearby.', { exact: false }).waitFor();
  await check(lin.page, 'nearby-off-en-phone');
  await lin.page.getByRole('button', { name: 'Find people nearby' }).click();
  await allow(lin.page, 'Allow');
  await lin.page.getByText('You are visible nearby until', { exact: false }).waitFor();
  await lin.page.getByText('Nobody nearby is visible right now.').waitFor();

  await mei.page.getByRole('link', { name: '附近的人' }).click();
  await mei.page.getByRole('button', { name: '查找附近的人' }).click();
  await allow(mei.page, '允许');
  const area = mei.page.getByRole('region', { name: '同一区域' });
  await area.getByText(linAddress).waitFor();
  await check(mei.page, 'nearby-zh');
  const cell = latLngToCell(HERE.latitude, HERE.longitude, 7);
  assert.equal(cell, latLngToCell(NEXT_DOOR.latitude, NEXT_DOOR.longitude, 7), 'both places are in one cell');
  assert.equal(shared.length, 2);
  for (const body of shared) {
    assert.deepEqual(JSON.parse(body), { cell }, 'only the cell is sent');
    assert.ok(!body.includes('39.9') && !body.includes('116.'), 'no coordinate is sent');
  }

  await lin.page.getByRole('button', { name: 'Update my area' }).waitFor();
  await lin.page.getByRole('button', { name: 'Update my area' }).click();
  await lin.page.getByRole('region', { name: 'In your area' }).getByText(`${pm.handle}@localhost`).waitFor();
  await check(lin.page, 'nearby-en-phone');
  await lin.page.getByRole('button', { name: 'Stop sharing and hide me' }).click();
  await lin.page.getByText('You are hidden; your area is deleted.').waitFor();
  await mei.page.getByRole('button', { name: '更新我的区域' }).click();
  await mei.page.getByText('附近暂时没有可见的人。').waitFor();

  // A friend invite: Bo opens its link signed out, signs in, and answers it.
  await mei.page.getByRole('link', { name: '邀请' }).click();
  await mei.page.getByRole('button', { name: '生成邀请' }).click();
  const made = mei.page.getByRole('region', { name: '你的好友邀请' });
  const qr = made.getByRole('img', { name: '邀请链接的二维码' });
  await qr.scrollIntoViewIfNeeded();
  // The node's SVG, drawn (the CSP allows data: images; the page inserts no markup).
  assert.ok(await qr.evaluate((i) => /** @type {HTMLImageElement} */ (i).complete && /** @type {HTMLImageElement} */ (i).naturalWidth > 0), 'the QR code is drawn');
  const link = await made.getByLabel('邀请链接').inputValue();
  assert.match(link, new RegExp(`^https://localhost/#/invite/[A-Za-z0-9_-]{22}/${pm.handle}$`));
  await check(mei.page, 'invite-made-zh');

  // Bo's phone, not signed in there: the link's route, kept through signing in.
  const boPhone = await person(browser, node.url, { locale: 'en-GB', phone: true });
  await boPhone.page.goto(node.url + '/' + link.slice(link.indexOf('#')));
  await boPhone.page.getByRole('heading', { name: 'An invitation' }).waitFor();
  await check(boPhone.page, 'invite-signed-out-en-phone');
  await boPhone.page.getByRole('link', { name: 'Sign in' }).click();
  await boPhone.page.getByLabel('Handle or phone number').fill(pb.handle);
  await boPhone.page.getByLabel('Password').fill(pb.password);
  await boPhone.page.getByRole('button', { name: 'Sign in' }).click();
  await boPhone.page.getByText(`${pm.handle} invites you to be friends.`, { exact: false }).waitFor();
  await check(boPhone.page, 'invite-open-en-phone');
  await boPhone.page.getByRole('button', { name: 'Accept the invitation' }).click();
  await boPhone.page.getByText(`Friend request sent to ${pm.handle}@localhost.`, { exact: false }).waitFor();
  await check(boPhone.page, 'invite-answered-en-phone');
  await mei.page.getByRole('link', { name: '返回聊天' }).click();
  await mei.page.getByRole('link', { name: '好友' }).click();
  await mei.page.getByRole('region', { name: '收到的请求' }).getByText(boAddress).waitFor();

  // A group invite: Lin pastes it, waits for Mei, and is let in.
  await mei.page.getByRole('link', { name: '返回聊天' }).click();
  await mei.page.getByRole('button', { name: '新建聊天' }).first().click();
  await mei.page.getByRole('tab', { name: '群聊' }).click();
  await mei.page.getByLabel('群名称').fill('周末徒步');
  await mei.page.getByLabel('成员').fill(boAddress);
  await mei.page.getByRole('button', { name: '创建群聊' }).click();
  await mei.page.getByRole('heading', { name: '周末徒步' }).waitFor();
  await mei.page.getByRole('link', { name: '找人' }).click();
  await mei.page.getByRole('link', { name: '邀请' }).click();
  await mei.page.getByRole('radio', { name: '加入群组' }).check();
  await mei.page.getByLabel('群组', { exact: true }).selectOption({ label: '周末徒步' });
  await mei.page.getByRole('button', { name: '生成邀请' }).click();
  const groupMade = mei.page.getByRole('region', { name: '加入 周末徒步 的邀请' });
  const groupLink = await groupMade.getByLabel('邀请链接').inputValue();
  assert.match(groupLink, /^https:\/\/localhost\/#\/invite\/[A-Za-z0-9_-]{22}$/);

  await lin.page.getByRole('link', { name: 'Invites' }).click();
  await lin.page.getByLabel('Invite link or code').fill(groupLink);
  await lin.page.getByRole('button', { name: 'Use the invite' }).click();
  await lin.page.getByText('Your request to join waits for the group’s answer.').waitFor();
  await check(lin.page, 'invite-used-en-phone');

  // Mei, still on the invites screen, sees the request arrive (a `join` event), unreloaded.
  const joins = mei.page.getByRole('region', { name: '入群申请' });
  await joins.getByText(linAddress).scrollIntoViewIfNeeded();
  await check(mei.page, 'join-request-zh');
  await joins.getByRole('button', { name: `同意 ${pl.nickname} 加入` }).click();
  await mei.page.getByText('没有待处理的入群申请。').waitFor();
  const mine = mei.page.getByRole('region', { name: '我的邀请' });
  await mine.locator('li', { hasText: '加入 周末徒步 的邀请' }).getByText('已使用 1/10', { exact: false }).waitFor();
  await mine.getByRole('button', { name: '撤销加入 周末徒步 的邀请' }).click();
  await mine.getByText('已撤销').waitFor();

  await lin.page.getByRole('link', { name: 'Back to chats' }).click();
  await lin.page.getByRole('link', { name: /周末徒步/ }).waitFor();

  // Friends of friends: Mei accepts Bo; Lin, her friend, is shown Bo with a count, no names.
  await mei.page.getByRole('link', { name: '返回聊天' }).click();
  await mei.page.getByRole('link', { name: '好友' }).click();
  await mei.page.getByRole('button', { name: `接受 ${pb.nickname}` }).click();
  await mei.page.getByRole('region', { name: '我的好友' }).getByText(boAddress).waitFor();
  await lin.page.getByRole('link', { name: 'Find people' }).click();
  await lin.page.getByRole('button', { name: 'Turn on suggestions' }).click();
  await allow(lin.page, 'Allow');
  const linList = lin.page.getByRole('list', { name: 'Suggestions' });
  const boRow = linList.locator('li', { hasText: boAddress });
  await boRow.getByText('Mutual friends: 1').waitFor();
  assert.equal(await boRow.getByText(pm.nickname).count(), 0, 'no mutual friend is named');
  await check(lin.page, 'mutual-en-phone');

  for (const p of [mei, lin, bo, boPhone]) {
    assert.deepEqual(p.problems, []);
    await p.context.close();
  }
});
