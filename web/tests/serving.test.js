// The node serves the client: entry page no-cache, assets under /app/<bundle>/ immutable and
// gzipped, strict security headers, and the page draws without any CSP violation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, launch, person } from './harness.js';

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

test('entry page and assets carry the security and cache headers', async () => {
  const { context, page, problems } = await person(browser, node.url);
  /** @type {Map<string, any>} */
  const seen = new Map();
  page.on('response', (r) => seen.set(new URL(r.url()).pathname, r));
  await page.reload();
  await page.getByRole('heading', { name: '登录' }).waitFor();
  const entry = seen.get('/');
  assert.ok(entry, 'the entry page was loaded');
  const h = await entry.allHeaders();
  assert.equal(h['cache-control'], 'no-cache');
  const csp = h['content-security-policy'];
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:\/\//);
  assert.equal(h['referrer-policy'], 'no-referrer');
  const assets = [...seen.keys()].filter((p) => p.startsWith('/app/'));
  assert.ok(assets.some((p) => /^\/app\/[0-9a-f]{16}\/src\/main\.js$/.test(p)), assets.join(','));
  for (const p of assets) {
    const ah = await seen.get(p).allHeaders();
    assert.equal(ah['cache-control'], 'public, max-age=31536000, immutable', p);
    if (/\.(js|css|json)$/.test(p)) assert.equal(ah['content-encoding'], 'gzip', p);
  }
  assert.deepEqual(problems, []);
  await context.close();
});

test('an asset of another bundle is 404, and the API still answers beside the client', async () => {
  const { context, page } = await person(browser, node.url);
  const old = await page.request.get(node.url + '/app/0123456789abcdef/src/main.js');
  assert.equal(old.status(), 404);
  const api = await page.request.get(node.url + '/api/v1/policy');
  assert.equal(api.status(), 200);
  await context.close();
});
