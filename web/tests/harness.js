// Starts real chat-node binaries (the debug build) on free loopback ports with temporary data
// dirs, and Debian's chromium through playwright-core, for the browser tests.

import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '../..');
export const binary = process.env.CHAT_NODE || join(repo, 'target/debug/chat-node');
export const shots = join(repo, 'target/browser');
mkdirSync(shots, { recursive: true });

/**
 * Starts a node; `extra` is TOML appended to the config (sections of its own); `env` is added
 * to the node's environment.
 * @param {{domain?: string, extra?: string, files?: Record<string,string>, listen?: string, env?: Record<string,string>}} [opts]
 */
export async function startNode(opts = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'shanliao-web-'));
  const files = opts.files || {};
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const config = `[server]
domain = "${opts.domain || 'localhost'}"
listen = "${opts.listen || '127.0.0.1:0'}"
[storage]
data_dir = "${join(dir, 'data')}"
[log]
level = "warn"
${opts.extra || ''}
`;
  writeFileSync(join(dir, 'node.toml'), config);
  const child = spawn(binary, ['--config', join(dir, 'node.toml')], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, env: { ...process.env, ...(opts.env || {}) } });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const url = await new Promise((res, rej) => {
    let out = '';
    const timer = setTimeout(() => rej(new Error('node did not start: ' + err)), 30000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on ([0-9.:]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res(`https://${m[1]}`);
      }
    });
    child.on('exit', (code) => rej(new Error(`node exited ${code}: ${err}`)));
  });
  return {
    url,
    dir,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.on('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Chromium with a fresh profile (playwright makes a new temporary one per launch). */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // A synthetic microphone and camera, and no permission prompt (the app's own question,
      // the purpose, is what the tests exercise).
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    ],
  });
  return browser;
}

/** A fresh context (one person) on `url`, in `locale`, at desktop or phone size. */
export async function person(browser, url, { locale = 'zh-CN', phone = false, dark = false } = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    locale,
    viewport: phone ? { width: 375, height: 740 } : { width: 1280, height: 800 },
    colorScheme: dark ? 'dark' : 'light',
    acceptDownloads: true,
  });
  const page = await context.newPage();
  /** @type {string[]} */
  const problems = [];
  page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
  page.on('console', (m) => {
    // A test that takes the network away (context.setOffline) makes the browser log the live
    // stream's failed reconnects: the network's doing, not the client's.
    if (m.type() === 'error' && !/Failed to load resource|ERR_INTERNET_DISCONNECTED/.test(m.text())) problems.push('console: ' + m.text());
  });
  await page.goto(url + '/');
  return { context, page, problems };
}

let counter = 0;
/** A unique person to register: handle, phone (valid CN mobile), password. */
export function newPerson(prefix = 'user') {
  counter += 1;
  const n = String(Date.now() % 100000000).padStart(8, '0');
  const tail = String((Number(n) + counter * 7919) % 100000000).padStart(8, '0');
  return {
    handle: `${prefix}${counter}${n.slice(-4)}`,
    nickname: `${prefix[0].toUpperCase()}${prefix.slice(1)} ${counter}`,
    phone: `+86138${tail}`,
    password: 'correct horse battery',
  };
}

/** Registers through the UI: read the policy, agree, fill the form. */
export async function register(page, p, { keep = false } = {}) {
  await page.getByRole('link', { name: /注册账号|Create an account/ }).click();
  await page.getByRole('region', { name: /隐私政策|Privacy policy/ }).waitFor();
  await page.getByRole('button', { name: /我已阅读并同意|I have read it and agree/ }).click();
  await page.getByLabel(/^(手机号|Phone number)$/).fill(p.phone);
  await page.getByLabel(/^(用户名|Handle)$/).fill(p.handle);
  await page.getByLabel(/^(昵称|Display name)$/).fill(p.nickname);
  await page.getByLabel(/^(密码|Password)$/).fill(p.password);
  if (keep) await page.getByLabel(/保持登录|Keep me signed in/).check();
  await page.getByRole('button', { name: /创建账号|Create account/ }).click();
  await page.getByRole('navigation', { name: /会话|Conversations/ }).waitFor();
}

/** Runs axe-core on the page; returns serious and critical violations. */
export async function axe(page) {
  const source = await import('axe-core');
  // Evaluated over the DevTools protocol: the page's CSP (rightly) refuses injected scripts.
  await page.evaluate(source.default.source);
  const result = await page.evaluate(async () => {
    // @ts-ignore
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/**
 * One command over the node's admin socket (`<data_dir>/admin.sock`, what node-admin speaks):
 * `request` is the command as JSON (`{command: 'requests-list'}`, …). Resolves with its `ok`
 * value; rejects with the `error` it answers.
 * @param {{dir: string}} node
 * @param {Record<string, any>} request
 */
export function admin(node, request) {
  return new Promise((res, rej) => {
    const socket = connect(join(node.dir, 'data', 'admin.sock'));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify(request) + '\n'));
    const done = () => {
      try {
        const v = JSON.parse(answer.split('\n')[0]);
        if ('ok' in v) res(v.ok);
        else rej(new Error('admin: ' + JSON.stringify(v.error)));
      } catch {
        rej(new Error('admin answer: ' + answer));
      }
    };
    socket.on('data', (d) => {
      answer += d;
      if (answer.includes('\n')) {
        socket.end();
        done();
      }
    });
    socket.on('error', rej);
    socket.on('end', done);
  });
}

/**
 * Elements that reach past the page's right edge outside a box that scrolls sideways (at
 * 375 px a long word once widened a screen and cut off its buttons); at most five.
 * @param {import('playwright-core').Page} page
 */
export async function pastRightEdge(page) {
  return page.evaluate(() => {
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
}
