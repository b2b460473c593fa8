// Voice messages and videos: the microphone (or camera) purpose is asked for at the moment of
// recording, refusing it leaves chat working, granting it records (Chromium's synthetic
// microphone and camera) and sends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, launch, person, newPerson, register } from './harness.js';

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

test('recording a voice message asks for the microphone purpose; no keeps chat working, yes sends it', async () => {
  const A = await person(browser, node.url, { locale: 'zh-CN' });
  const B = await person(browser, node.url, { locale: 'zh-CN' });
  const a = newPerson('vic');
  const b = newPerson('wen');
  await register(A.page, a);
  await register(B.page, b);
  await A.page.getByRole('button', { name: '新建聊天' }).first().click();
  await A.page.getByLabel('地址').fill(`${b.handle}@localhost`);
  await A.page.getByRole('button', { name: '开始聊天' }).click();
  await A.page.getByRole('button', { name: '录制语音消息' }).click();
  const ask = A.page.getByRole('dialog', { name: /麦克风/ });
  await ask.waitFor();
  await ask.getByRole('button', { name: '暂不' }).click();
  await A.page.getByText(/未发送：未允许“麦克风”/).waitFor();
  const box = A.page.getByRole('textbox', { name: '消息' });
  await box.fill('no voice today');
  await box.press('Enter');
  await B.page.getByRole('link', { name: new RegExp(a.handle) }).click();
  await B.page.locator('.bubble', { hasText: 'no voice today' }).waitFor();

  await A.page.getByRole('button', { name: '录制语音消息' }).click();
  await A.page.getByRole('dialog', { name: /麦克风/ }).getByRole('button', { name: '允许' }).click();
  const rec = A.page.locator('.recording');
  await rec.waitFor();
  await A.page.waitForTimeout(1200);
  await rec.getByRole('button', { name: '发送' }).click();
  const audio = B.page.locator('.bubble audio');
  await audio.waitFor();
  assert.equal(await audio.count(), 1);
  // The purpose is now on, with its history.
  await A.page.goto(node.url + '/#/privacy/purposes');
  assert.equal(await A.page.getByRole('switch', { name: '麦克风' }).isChecked(), true);
  assert.deepEqual(A.problems, []);
  assert.deepEqual(B.problems, []);
  await A.context.close();
  await B.context.close();
});

test('recording a video asks for the camera purpose, then the microphone for its sound; it arrives as a video', async () => {
  const A = await person(browser, node.url, { locale: 'en-US' });
  const B = await person(browser, node.url, { locale: 'en-US' });
  const a = newPerson('xia');
  const b = newPerson('yun');
  await register(A.page, a);
  await register(B.page, b);
  await A.page.getByRole('button', { name: 'New chat' }).first().click();
  await A.page.getByLabel('Address').fill(`${b.handle}@localhost`);
  await A.page.getByRole('button', { name: 'Start chatting' }).click();
  await A.page.getByRole('button', { name: 'Record a video' }).click();
  const camera = A.page.getByRole('dialog', { name: /Camera/ });
  await camera.waitFor();
  await camera.getByRole('button', { name: 'Not now' }).click();
  await A.page.getByText(/Not sent: .*Camera/).waitFor();
  assert.equal(await A.page.locator('.recording').count(), 0, 'nothing recorded without the purpose');

  await A.page.getByRole('button', { name: 'Record a video' }).click();
  await A.page.getByRole('dialog', { name: /Camera/ }).getByRole('button', { name: 'Allow' }).click();
  await A.page.getByRole('dialog', { name: /Microphone/ }).getByRole('button', { name: 'Allow' }).click();
  const rec = A.page.locator('.recording');
  await rec.waitFor();
  await A.page.waitForTimeout(1200);
  await rec.getByRole('button', { name: 'Send' }).click();
  await B.page.getByRole('link', { name: new RegExp(a.handle) }).click();
  const video = B.page.locator('.bubble video');
  await video.waitFor();
  assert.equal(await video.count(), 1);
  await A.page.goto(node.url + '/#/privacy/purposes');
  assert.equal(await A.page.getByRole('switch', { name: 'Camera' }).isChecked(), true);
  assert.deepEqual(A.problems, []);
  assert.deepEqual(B.problems, []);
  await A.context.close();
  await B.context.close();
});
