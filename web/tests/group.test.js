// Managing a group in the browser: the owner removes a member (whose list loses the group),
// hands ownership to another and then leaves; each screen with a screenshot and an axe scan.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, launch, person, newPerson, register, shots, axe } from './harness.js';
import { join } from 'node:path';

/** @type {any} */ let node;
/** @type {any} */ let browser;
/** @type {any[]} */ let people = [];
const [a, b, c] = [newPerson('ana'), newPerson('bo'), newPerson('cy')];
const addr = (p) => `${p.handle}@localhost`;

before(async () => {
  node = await startNode();
  browser = await launch();
  for (const p of [a, b, c]) {
    const P = await person(browser, node.url, { locale: 'en-US' });
    await register(P.page, p);
    people.push(P);
  }
});
after(async () => {
  await browser?.close();
  await node?.stop();
});
afterEach(async (t) => {
  const name = String(t.name).replace(/[^a-z0-9]+/gi, '-').slice(0, 40);
  for (const [i, P] of people.entries()) await P.page.screenshot({ path: join(shots, `group-${name}-${i}.png`) }).catch(() => {});
});

/** The member row of `p` in the open group dialog. */
const memberRow = (page, p) => page.locator('.member-list li', { hasText: addr(p) });

test('the owner removes a member, transfers ownership, and leaves; each side sees it', async () => {
  const [A, B, C] = people;
  await A.page.getByRole('button', { name: 'New chat' }).first().click();
  await A.page.getByRole('tab', { name: 'Group' }).click();
  await A.page.getByLabel('Group name').fill('Garden');
  await A.page.getByLabel('Members').fill(`${addr(b)} ${addr(c)}`);
  await A.page.getByRole('button', { name: 'Create group' }).click();
  await A.page.getByRole('heading', { name: 'Garden' }).waitFor();
  for (const P of [B, C]) await P.page.getByRole('link', { name: /Garden/ }).waitFor();

  // Remove Cy: the group leaves Cy's list, live.
  await A.page.getByRole('button', { name: 'Group', exact: true }).click();
  const dialog = A.page.getByRole('dialog');
  await memberRow(A.page, c).waitFor();
  assert.deepEqual(await axe(A.page), []);
  await A.page.screenshot({ path: join(shots, 'group-manage-owner-en.png') });
  await memberRow(A.page, c).getByRole('button', { name: 'Remove' }).click();
  await dialog.getByText('Removed.').waitFor();
  await memberRow(A.page, c).waitFor({ state: 'detached' });
  await C.page.getByRole('link', { name: /Garden/ }).waitFor({ state: 'detached' });

  // Make Bo owner: Ana becomes admin and loses the owner's controls; Bo gains them.
  await memberRow(A.page, b).getByRole('button', { name: 'Make owner' }).click();
  await dialog.getByText('Ownership transferred.').waitFor();
  await memberRow(A.page, a).getByText('Admin').waitFor();
  await memberRow(A.page, b).getByText('Owner').waitFor();
  assert.equal(await dialog.getByRole('button', { name: 'Make owner' }).count(), 0);
  await B.page.getByRole('link', { name: /Garden/ }).click();
  await B.page.getByRole('button', { name: 'Group', exact: true }).click();
  await memberRow(B.page, a).getByRole('button', { name: 'Make owner' }).waitFor();
  assert.deepEqual(await axe(B.page), []);
  await B.page.screenshot({ path: join(shots, 'group-manage-new-owner-en.png') });

  // Ana leaves: the group is gone from her list; Bo is its only member.
  await dialog.getByRole('button', { name: 'Leave group' }).click();
  await A.page.getByRole('link', { name: /Garden/ }).waitFor({ state: 'detached' });
  await memberRow(B.page, a).waitFor({ state: 'detached' });
  assert.equal(await B.page.locator('.member-list li').count(), 1);
  for (const P of people) assert.deepEqual(P.problems, []);
});

test('the public/private box holds the choice being saved through a redraw, until the node answers', async () => {
  const [A, B] = people;
  await A.page.goto(node.url + '/#/chats');
  await A.page.getByRole('button', { name: 'New chat' }).first().click();
  await A.page.getByRole('tab', { name: 'Group' }).click();
  await A.page.getByLabel('Group name').fill('Orchard');
  await A.page.getByLabel('Members').fill(addr(b));
  await A.page.getByRole('button', { name: 'Create group' }).click();
  await A.page.getByRole('heading', { name: 'Orchard' }).waitFor();
  const id = decodeURIComponent(new URL(A.page.url()).hash.split('/').pop() || '');
  // The node's answer to the change is held back until the redraw has happened.
  /** @type {() => void} */ let release = () => {};
  const held = new Promise((r) => (release = () => r(null)));
  await A.page.route('**/api/v1/conversations/*', async (route) => {
    if (route.request().method() === 'PATCH') await held;
    await route.continue();
  });
  await A.page.getByRole('button', { name: 'Group', exact: true }).click();
  const box = A.page.getByRole('dialog').getByRole('checkbox', { name: /Public group/ });
  assert.equal(await box.isChecked(), false);
  await box.click();
  // Bo writes in the group meanwhile: Ana's client redraws with the stored (still private) state.
  const s = await B.context.request.post(node.url + '/api/v1/sessions', { data: { login: b.handle, password: b.password } });
  const token = (await s.json()).token;
  const sent = await B.context.request.post(node.url + `/api/v1/conversations/${id}/messages`, {
    headers: { authorization: `Bearer ${token}` },
    data: { txn_id: 'redraw-1', body: { type: 'text', text: 'Apples are ripe' } },
  });
  assert.ok(sent.ok(), await sent.text());
  await A.page.locator('.bubble', { hasText: 'Apples are ripe' }).waitFor();
  assert.equal(await box.isChecked(), true, 'the choice being saved survives the redraw');
  assert.equal(await box.isDisabled(), true, 'and the box waits for the answer');
  release();
  await A.page.getByRole('dialog').getByText('Saved.').waitFor();
  await box.and(A.page.locator(':enabled')).waitFor();
  assert.equal(await box.isChecked(), true);
  await A.page.unroute('**/api/v1/conversations/*');
  const conv = await (await B.context.request.get(node.url + `/api/v1/conversations/${id}`, { headers: { authorization: `Bearer ${token}` } })).json();
  assert.equal(conv.public, true, 'the node stored it');
  assert.deepEqual(await axe(A.page), []);
  await A.page.screenshot({ path: join(shots, 'group-public-saved-en.png') });
  await A.page.getByRole('button', { name: 'Close' }).click();
  for (const P of people) assert.deepEqual(P.problems, []);
});
