// The privacy centre section by section, each in zh-CN and in English (one person per
// language): purposes with history, profile visibility, policy versions with a pending
// acceptance and the pause it causes, notices, devices, the data export, requests with an
// operator's answer, real-name verification, the public page, guardian consent and deletion
// with its cooling-off and cancel. After each section's steps, a screenshot at phone and desktop
// width, light and dark, under target/browser/, with the axe scan on each.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNode, launch, person, newPerson, register, axe, shots, admin, repo, pastRightEdge } from './harness.js';

const catalogues = {
  'zh-CN': JSON.parse(readFileSync(join(repo, 'web/i18n/zh-CN.json'), 'utf8')),
  en: JSON.parse(readFileSync(join(repo, 'web/i18n/en.json'), 'utf8')),
};
const VARIANTS = [
  { name: 'desktop-light', phone: false, dark: false },
  { name: 'desktop-dark', phone: false, dark: true },
  { name: 'phone-light', phone: true, dark: false },
  { name: 'phone-dark', phone: true, dark: true },
];
/** libfaketime, which moves the policy node's wall clock (Debian's package `libfaketime`). */
const FAKETIME = [`/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/faketime/libfaketime.so.1`, '/usr/lib/faketime/libfaketime.so.1'].find((p) => existsSync(p));
const hasHan = (s) => /[\u4e00-\u9fff]/.test(s);

/** @type {any} */ let node;
/** @type {any} */ let policyNode;
/** @type {any} */ let browser;
/** @type {string} */ let clockFile;
/** @type {string} */ let clockDir;
/** @type {any[]} */ let people = [];
/** @type {any[]} */ let policyPeople = [];
/** @type {any} */ let other;

/**
 * Someone registered through the UI in `lang`, kept signed in across reloads; `T` gives the
 * catalogue's words in that language.
 */
async function somebody(url, lang, prefix) {
  const p = newPerson(prefix);
  const P = await person(browser, url, { locale: lang === 'en' ? 'en-US' : 'zh-CN' });
  await register(P.page, p, { keep: true });
  const cat = catalogues[lang];
  const T = (key, vars = {}) => {
    assert.ok(key in cat, key);
    let s = cat[key];
    for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
    return s;
  };
  /** The words of `key` up to its first placeholder (for texts with a date in them). */
  const head = (key) => T(key).split('{')[0];
  return { ...P, p, lang, code: lang === 'en' ? 'en' : 'zh', T, head, url, address: `${p.handle}@localhost` };
}

/** A new session of P over the API (a second device), named `device`; its token. */
async function login(P, device) {
  const r = await P.context.request.post(P.url + '/api/v1/sessions', { data: { login: P.p.handle, password: P.p.password, device: { name: device, os: 'Test OS' } } });
  assert.equal(r.status(), 201, await r.text());
  return (await r.json()).token;
}

/** `method path` as P's API session `token`; the status and JSON. */
async function call(P, token, method, path, data) {
  const r = await P.context.request.fetch(P.url + path, { method, headers: { authorization: `Bearer ${token}` }, data });
  const text = await r.text();
  return { status: r.status(), body: text ? JSON.parse(text) : null };
}

/** Screenshots of P's page in every variant and the axe scan of each; back to desktop light. */
async function look(P, section) {
  /** @type {string[]} */
  const found = [];
  for (const v of VARIANTS) {
    await P.page.setViewportSize(v.phone ? { width: 375, height: 740 } : { width: 1280, height: 800 });
    await P.page.emulateMedia({ colorScheme: v.dark ? 'dark' : 'light' });
    await P.page.waitForTimeout(50);
    await P.page.screenshot({ path: join(shots, `privacy-${section}-${P.lang}-${v.name}.png`) });
    for (const x of await axe(P.page)) found.push(`${v.name}: ${x.id} (${x.impact}) ${x.help} @ ${x.nodes.join(', ')}`);
    for (const el of await pastRightEdge(P.page)) found.push(`${v.name}: ${el} reaches past the right edge`);
  }
  await P.page.setViewportSize({ width: 1280, height: 800 });
  await P.page.emulateMedia({ colorScheme: 'light' });
  assert.deepEqual(found, [], `${section} (${P.lang})`);
  assert.deepEqual(P.problems, [], `${section} (${P.lang})`);
}

/** Opens a section of the privacy centre and waits for its heading. */
async function open(P, tab) {
  await P.page.goto(P.url + `/#/privacy/${tab}`);
  await P.page.locator('.privacy-main h2', { hasText: P.T('privacy.tab.' + tab) }).waitFor();
}

/** The card of `purpose` in the purposes section. */
const purposeCard = (P, purpose) => P.page.locator('li.card', { has: P.page.locator('#p-' + purpose) });

/** Grants `purpose` with its switch in the purposes section (named by the node's title). */
async function grant(P, purpose) {
  await open(P, 'purposes');
  const card = purposeCard(P, purpose);
  await card.getByRole('switch').check();
  await card.getByText(P.head('privacy.granted_since')).waitFor();
}

/** A valid GB 11643 ID number (check digit computed). */
function idNumber(body17) {
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = [...body17].reduce((s, d, i) => s + Number(d) * w[i], 0);
  return body17 + '10X98765432'[sum % 11];
}

/** `YYYY-MM-DD` of the UTC day `days` after today. */
const dayFromNow = (days) => new Date(Date.now() + days * 86400000).toISOString().slice(0, 10);

before(async () => {
  assert.ok(FAKETIME, 'libfaketime is installed (apt-get install libfaketime)');
  node = await startNode();
  clockDir = mkdtempSync(join(tmpdir(), 'shanliao-clock-'));
  clockFile = join(clockDir, 'offset');
  writeFileSync(clockFile, '+0');
  // The policy node's wall clock can be moved on (a version's date coming); its timers are not.
  policyNode = await startNode({
    env: { LD_PRELOAD: FAKETIME, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_CACHE_DURATION: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
  });
  browser = await launch();
  people = [await somebody(node.url, 'zh-CN', 'mei'), await somebody(node.url, 'en', 'ann')];
  policyPeople = [await somebody(policyNode.url, 'zh-CN', 'lan'), await somebody(policyNode.url, 'en', 'pat')];
  other = await somebody(node.url, 'en', 'oz');
  other.token = await login(other, 'Reader');
});
after(async () => {
  await browser?.close();
  await node?.stop();
  await policyNode?.stop();
  if (clockDir) rmSync(clockDir, { recursive: true, force: true });
});

test('purposes: the node’s words in each language, grant and revoke, with their history', async () => {
  for (const P of people) {
    const token = await login(P, 'Words');
    const words = (await call(P, token, 'GET', `/api/v1/me/consents?lang=${P.code}`)).body;
    assert.equal(words.language, P.code);
    await open(P, 'purposes');
    await P.page.getByText(P.T('purpose.policy_version', { version: words.policy_version })).waitFor();
    for (const c of words.consents) {
      const card = purposeCard(P, c.purpose);
      await card.getByRole('heading', { name: c.title }).waitFor();
      await card.getByText(c.description, { exact: true }).waitFor();
      assert.equal(hasHan(c.title + c.description), P.code === 'zh', c.purpose);
    }
    const card = purposeCard(P, 'personalisation');
    const on = card.getByRole('switch');
    await on.check();
    await card.getByText(P.head('privacy.granted_since')).waitFor();
    await on.uncheck();
    await card.getByText(P.T('privacy.not_granted'), { exact: true }).waitFor();
    await card.getByRole('button', { name: P.T('privacy.history', { n: 2 }) }).click();
    const rows = card.locator('ol.history li');
    await rows.nth(1).waitFor();
    const texts = await rows.allTextContents();
    assert.equal(texts.length, 2);
    assert.ok(texts[0].includes(P.T('privacy.history_granted')), texts[0]);
    assert.ok(texts[1].includes(P.T('privacy.history_revoked')), texts[1]);
    for (const x of texts) assert.ok(x.includes(P.T('privacy.policy_version', { version: words.policy_version })), x);
    const stored = (await call(P, token, 'GET', '/api/v1/me/consents')).body.consents.find((c) => c.purpose === 'personalisation');
    assert.equal(stored.granted, false);
    assert.equal(stored.history.length, 2);
    await look(P, 'purposes');
  }
});

test('profile: each field with its own visibility, as others see it', async () => {
  for (const P of people) {
    const region = P.code === 'zh' ? '杭州' : 'Hangzhou';
    const bio = P.code === 'zh' ? '喜欢爬山和茶。' : 'Hills and tea.';
    await open(P, 'profile');
    await P.page.locator('#f-region').fill(region);
    await P.page.locator('#v-region').selectOption('friends');
    await P.page.locator('#f-bio').fill(bio);
    await P.page.locator('#v-bio').selectOption('public');
    await P.page.getByRole('button', { name: P.T('common.save') }).click();
    await P.page.getByText(P.T('privacy.saved'), { exact: true }).waitFor();
    // Someone who is not a friend sees the public bio, not the friends-only region.
    const seen = (await call(other, other.token, 'GET', `/api/v1/users/${encodeURIComponent(P.address)}`)).body;
    assert.equal(seen.profile.bio, bio);
    assert.equal(seen.profile.region, undefined);
    await P.page.reload();
    await P.page.locator('.privacy-main h2').waitFor();
    assert.equal(await P.page.locator('#f-region').inputValue(), region);
    assert.equal(await P.page.locator('#v-region').inputValue(), 'friends');
    assert.equal(await P.page.locator('#v-bio').inputValue(), 'public');
    await look(P, 'profile');
  }
});

test('policy: a version that narrows rights waits for acceptance, pauses optional use from its date, and acceptance ends the pause', async () => {
  const version = 'narrower-1';
  await admin(policyNode, {
    command: 'policy-publish',
    version,
    effective: dayFromNow(1),
    narrows_rights: true,
    text: '# 隐私政策（新版）\n\n本版本收窄了你的部分权利，生效后需要你明确接受。',
    en: '# Privacy policy (new version)\n\nThis version narrows some of your rights and needs your explicit acceptance once in effect.',
  });
  for (const P of policyPeople) {
    P.token = await login(P, 'Policy');
    // Granted before the new version's date: usable until then.
    assert.equal((await call(P, P.token, 'PUT', '/api/v1/me/consents/public_page', { granted: true })).status, 200);
    await open(P, 'policy');
    const pending = P.page.locator('.pending', { hasText: version });
    await pending.getByText(P.T('privacy.narrows'), { exact: true }).waitFor();
    assert.equal(await P.page.getByText(P.head('privacy.paused')).count(), 0, 'not paused before its date');
    await P.page.locator('li.card', { hasText: version }).getByText(P.T('policy.status.upcoming')).waitFor();
    await pending.getByRole('button', { name: P.T('privacy.read') }).click();
    const dialog = P.page.getByRole('dialog');
    await dialog.getByRole('heading', { name: P.code === 'zh' ? '隐私政策（新版）' : 'Privacy policy (new version)' }).waitFor();
    await look(P, 'policy-read');
    await dialog.getByRole('button', { name: P.T('common.close') }).click();
    await look(P, 'policy-pending');
    // Its notice is there too.
    await open(P, 'notices');
    await P.page.locator('li.card', { hasText: version }).getByText(P.T('notice.kind.policy'), { exact: true }).waitFor();
  }
  // Two days later the version is in effect: optional use pauses until each accepts it.
  writeFileSync(clockFile, '+2d');
  for (const P of policyPeople) {
    for (let i = 0; i < 100; i += 1) {
      if ((await call(P, P.token, 'GET', '/api/v1/me/policy')).body.optional_processing_paused) break;
      await P.page.waitForTimeout(100);
    }
    await open(P, 'page');
    await P.page.locator('#pp-phone').fill(P.p.phone);
    await P.page.locator('#pp-password').fill(P.p.password);
    await P.page.getByRole('button', { name: P.T('privacy.page_enable') }).click();
    await P.page.getByText(P.T('error.policy_acceptance_required')).waitFor();
    await open(P, 'policy');
    await P.page.getByText(P.T('privacy.paused', { version })).waitFor();
    await P.page.locator('li.card', { hasText: version }).getByText(P.T('policy.status.current')).waitFor();
    await look(P, 'policy-paused');
    await P.page.locator('.pending', { hasText: version }).getByRole('button', { name: P.T('privacy.accept') }).click();
    await P.page.getByText(P.T('privacy.paused', { version })).waitFor({ state: 'detached' });
    await P.page.locator('.pending').waitFor({ state: 'detached' });
    await P.page.getByText(P.head('privacy.accepted_version') + version).waitFor();
    // The optional feature works again.
    await open(P, 'page');
    await P.page.locator('#pp-phone').fill(P.p.phone);
    await P.page.locator('#pp-password').fill(P.p.password);
    await P.page.getByRole('button', { name: P.T('privacy.page_enable') }).click();
    await P.page.getByText(P.head('privacy.page_on')).waitFor();
    await open(P, 'policy');
    await look(P, 'policy-accepted');
  }
});

test('notices: an operator’s notice shows with its title, text and kind', async () => {
  for (const P of people) {
    const title = P.code === 'zh' ? '计划维护通知' : 'Planned maintenance';
    const body = P.code === 'zh' ? '本周六凌晨两点服务器暂停一小时。' : 'The server pauses for an hour on Saturday at 02:00.';
    await admin(node, { command: 'incident-notify', title, body, users: [P.p.handle] });
    await open(P, 'notices');
    const card = P.page.locator('li.card', { hasText: title });
    await card.getByText(body).waitFor();
    await card.getByText(P.T('notice.kind.incident'), { exact: true }).waitFor();
    await look(P, 'notices');
  }
});

test('notices: the node’s sign-in notice shows in the client’s own words and language, from its code', async () => {
  for (const P of people) {
    await login(P, 'Laptop');
    await open(P, 'notices');
    const title = P.T('notice.code.sign_in.new_device.title');
    const card = P.page.locator('li.card[data-code="sign_in.new_device"]').first();
    await card.getByRole('heading', { name: title }).waitFor();
    const text = await card.locator('p').innerText();
    // The words after the time are the catalogue's (the node's own text has no such hint).
    const [before, afterAt] = P.T('notice.code.sign_in.new_device.text').split('{at}');
    assert.ok(text.startsWith(before) && text.endsWith(afterAt), text);
    assert.doesNotMatch(text, /\d{4}-\d{2}-\d{2}T/, 'the time is shown in local form, not as sent');
    const foreign = catalogues[P.lang === 'en' ? 'zh-CN' : 'en']['notice.code.sign_in.new_device.title'];
    assert.equal(await P.page.locator('li.card', { hasText: foreign }).count(), 0, `${P.lang}: no ${foreign}`);
    assert.equal(hasHan(await card.innerText()), P.lang !== 'en', await card.innerText());
    await look(P, 'notices-sign-in');
  }
});

test('devices: every signed-in device is listed and another one is signed out', async () => {
  for (const P of people) {
    const token = await login(P, 'Tablet');
    await open(P, 'devices');
    const tablet = P.page.locator('li.card', { hasText: 'Tablet' });
    await tablet.waitFor();
    await P.page.getByText(P.T('privacy.this_device')).waitFor();
    await look(P, 'devices');
    await tablet.getByRole('button', { name: P.T('privacy.sign_out_device') }).click();
    await tablet.waitFor({ state: 'detached' });
    assert.equal((await call(P, token, 'GET', '/api/v1/me')).status, 401, 'the signed-out device’s token is dead');
    await P.page.getByText(P.T('privacy.this_device')).waitFor();
  }
});

test('data: the export downloads as one JSON file of mine', async () => {
  for (const P of people) {
    await open(P, 'data');
    const [download] = await Promise.all([P.page.waitForEvent('download'), P.page.getByRole('button', { name: P.T('privacy.export') }).click()]);
    const text = readFileSync(/** @type {string} */ (await download.path()), 'utf8');
    JSON.parse(text);
    assert.ok(text.includes(P.p.handle), 'the export names its owner');
    await P.page.getByText(P.T('privacy.export_done')).waitFor();
    await look(P, 'data');
  }
});

test('requests: a complaint is filed, the operator answers it, and the answer shows', async () => {
  for (const P of people) {
    const text = P.code === 'zh' ? '我想知道我的聊天记录保存多久。' : 'How long is my chat history kept?';
    const answer = P.code === 'zh' ? '聊天记录在账号存在期间保存。' : 'For as long as your account exists.';
    await open(P, 'requests');
    await P.page.locator('#req-kind').selectOption('complaint');
    await P.page.locator('#req-text').fill(text);
    await P.page.getByRole('button', { name: P.T('privacy.request_submit') }).click();
    await P.page.getByText(P.T('privacy.request_filed')).waitFor();
    const card = P.page.locator('li.card', { hasText: text });
    await card.getByText(P.T('request.kind.complaint')).waitFor();
    await card.getByText(P.T('request.status.open'), { exact: true }).waitFor();
    const mine = (await admin(node, { command: 'requests-list' })).find((r) => r.user === P.address && r.status === 'open');
    assert.ok(mine, 'the operator sees the request');
    await admin(node, { command: 'requests-resolve', id: mine.id, answer });
    await P.page.reload();
    await card.getByText(answer).waitFor();
    await card.getByText(P.T('request.status.answered'), { exact: true }).waitFor();
    await card.getByText(P.T('privacy.answer')).waitFor();
    await look(P, 'requests');
  }
});

test('real name: refused until its purpose is granted, then kept masked, and deleted', async () => {
  const ids = { zh: idNumber('33010619900307123'), en: idNumber('11010519850612456') };
  for (const P of people) {
    const id = ids[P.code];
    const submit = async () => {
      await P.page.locator('#rn-name').fill(P.code === 'zh' ? '王小明' : 'Li Ann');
      await P.page.locator('#rn-id').fill(id);
      await P.page.getByRole('button', { name: P.T('privacy.realname_submit') }).click();
    };
    await open(P, 'realname');
    await submit();
    await P.page.getByText(P.T('privacy.realname_needs')).waitFor();
    await grant(P, 'real_name');
    await open(P, 'realname');
    await submit();
    await P.page.getByText(P.head('privacy.verified')).waitFor();
    const shown = await P.page.locator('.privacy-main').textContent();
    assert.ok(!shown.includes(id), 'the ID number is shown masked');
    assert.ok(shown.includes(id.slice(0, 4) + '*'.repeat(10) + id.slice(-4)), shown);
    await look(P, 'realname');
    await P.page.getByRole('button', { name: P.T('common.delete') }).click();
    await P.page.locator('#rn-id').waitFor();
  }
});

test('public page: needs its purpose, then anyone reads it, until it is turned off', async () => {
  for (const P of people) {
    const enable = async () => {
      await P.page.locator('#pp-phone').fill(P.p.phone);
      await P.page.locator('#pp-password').fill(P.p.password);
      await P.page.getByRole('button', { name: P.T('privacy.page_enable') }).click();
    };
    const pageStatus = async () => (await other.context.request.get(P.url + `/api/v1/pages/${P.p.handle}`)).status();
    await open(P, 'page');
    await enable();
    await P.page.getByText(P.T('error.consent_required')).waitFor();
    assert.equal(await pageStatus(), 404);
    await grant(P, 'public_page');
    await open(P, 'page');
    await enable();
    await P.page.getByText(P.head('privacy.page_on')).waitFor();
    assert.equal(await pageStatus(), 200);
    await look(P, 'page');
    await P.page.getByRole('button', { name: P.T('privacy.page_off') }).click();
    await P.page.locator('#pp-phone').waitFor();
    assert.equal(await pageStatus(), 404);
  }
});

test('guardian: a minor’s purpose waits for the guardian’s recorded consent to it', async () => {
  for (const P of people) {
    const token = await login(P, 'Guardian');
    const photos = (await call(P, token, 'GET', `/api/v1/me/consents?lang=${P.code}`)).body.consents.find((c) => c.purpose === 'photos').title;
    const record = async () => {
      await P.page.locator('#g-name').fill(P.code === 'zh' ? '王大伟' : 'Sam Li');
      await P.page.locator('#g-contact').fill('+8613900001111');
      await P.page.getByRole('checkbox', { name: photos }).check();
      await P.page.getByRole('button', { name: P.T('privacy.guardian_submit') }).click();
    };
    // An adult needs no guardian.
    await open(P, 'guardian');
    await record();
    await P.page.getByText(P.T('error.not_a_minor')).waitFor();
    // By a birthday twelve years ago, a minor: a grant needs the guardian first.
    await open(P, 'profile');
    await P.page.locator('#f-birthday').fill(`${new Date().getUTCFullYear() - 12}-03-01`);
    await P.page.getByRole('button', { name: P.T('common.save') }).click();
    await P.page.getByText(P.T('privacy.saved'), { exact: true }).waitFor();
    await open(P, 'purposes');
    const card = purposeCard(P, 'photos');
    await card.getByRole('switch').click();
    await P.page.getByText(P.T('error.guardian_consent_required')).waitFor();
    await card.getByRole('switch', { disabled: false }).waitFor();
    assert.equal(await card.getByRole('switch').isChecked(), false, 'the refused grant does not stay on');
    await open(P, 'guardian');
    await record();
    await P.page.getByText(P.T('privacy.guardian_saved')).waitFor();
    await P.page.getByText(P.T('privacy.guardian_covers', { purposes: photos })).waitFor();
    await look(P, 'guardian');
    await grant(P, 'photos');
  }
});

test('deletion: requested with the password, the account locked for the cooling-off, then cancelled', async () => {
  for (const P of people) {
    const token = await login(P, 'Deletion');
    await open(P, 'deletion');
    await P.page.locator('#del-password').fill(P.p.password);
    await P.page.getByRole('button', { name: P.T('privacy.deletion_request') }).click();
    await P.page.getByText(P.head('privacy.deletion_due')).waitFor();
    const locked = await call(P, token, 'GET', '/api/v1/conversations');
    assert.equal(locked.status, 403);
    assert.equal(locked.body.error.code, 'account_pending_deletion');
    await look(P, 'deletion');
    await P.page.getByRole('button', { name: P.T('privacy.deletion_cancel') }).click();
    await P.page.getByText(P.T('privacy.deletion_cancelled')).waitFor();
    assert.equal((await call(P, token, 'GET', '/api/v1/conversations')).status, 200);
  }
});
