// Avatars (issue 25): a person sets a picture in the profile screen (the photos purpose asked
// for first) and sees it at the top of the chat list; another member sees it in the group's
// member list; removing it brings the letter badge back. Screenshot and axe scan of the
// profile screen with the picture.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

test('a picture set in the profile screen shows for its owner and for the other members, and removing it brings the letter back', async () => {
  const A = await person(browser, node.url, { locale: 'en-US' });
  const B = await person(browser, node.url, { locale: 'en-US' });
  const a = newPerson('ava');
  const b = newPerson('bao');
  await register(A.page, a, { keep: true });
  await register(B.page, b);
  const own = A.page.locator('img.avatar').first();
  assert.equal(await A.page.locator('img.avatar').count(), 0, 'no picture yet');

  await A.page.goto(node.url + '/#/privacy/profile');
  const file = join(tmpdir(), `shanliao-avatar-${process.pid}.jpg`);
  writeFileSync(file, await jpegWithGps(A.page));
  // Refused first: nothing is uploaded.
  await A.page.setInputFiles('input[type=file]', file);
  await A.page.getByRole('dialog', { name: /Photos/ }).getByRole('button', { name: 'Not now' }).click();
  await A.page.getByText(/Not sent: .*Photos/).waitFor();
  assert.equal(await A.page.locator('img.avatar').count(), 0);
  await A.page.setInputFiles('input[type=file]', file);
  await A.page.getByRole('dialog', { name: /Photos/ }).getByRole('button', { name: 'Allow' }).click();
  await A.page.getByText('Profile picture saved.').waitFor();
  await A.page.locator('.avatar-picker img.avatar').waitFor();
  await A.page.screenshot({ path: join(shots, 'avatar-profile-en.png') });
  assert.deepEqual(await axe(A.page), []);

  // At the top of the chat list; and Bao sees it among the group's members.
  await A.page.goto(node.url + '/#/');
  await own.waitFor();
  await A.page.getByRole('button', { name: 'New chat' }).first().click();
  await A.page.getByRole('tab', { name: 'Group' }).click();
  await A.page.getByLabel('Group name').fill('Pictures');
  await A.page.getByLabel('Members').fill(`${b.handle}@localhost`);
  await A.page.getByRole('button', { name: 'Create group' }).click();
  await B.page.getByRole('link', { name: /Pictures/ }).click();
  await B.page.getByRole('button', { name: 'Group', exact: true }).click();
  const row = B.page.locator('.member-list li', { hasText: `${a.handle}@localhost` });
  await row.locator('img.avatar').waitFor();
  assert.equal(await B.page.locator('.member-list li', { hasText: `${b.handle}@localhost` }).locator('img.avatar').count(), 0, 'Bao has none');
  await B.page.screenshot({ path: join(shots, 'avatar-members-en.png') });
  assert.deepEqual(await axe(B.page), []);

  // Removing it: the letter again.
  await A.page.goto(node.url + '/#/privacy/profile');
  await A.page.getByRole('button', { name: 'Remove picture' }).click();
  await A.page.getByText('Profile picture removed.').waitFor();
  assert.equal(await A.page.locator('img.avatar').count(), 0);
  assert.deepEqual(A.problems, []);
  assert.deepEqual(B.problems, []);
  await A.context.close();
  await B.context.close();
});
