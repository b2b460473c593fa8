// The two message catalogues have the same keys, no empty strings, and every key the code
// names literally exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { repo } from './harness.js';

const web = join(repo, 'web');
const zh = JSON.parse(readFileSync(join(web, 'i18n/zh-CN.json'), 'utf8'));
const en = JSON.parse(readFileSync(join(web, 'i18n/en.json'), 'utf8'));

test('catalogues have the same keys', () => {
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
});

test('no catalogue string is empty', () => {
  for (const [k, v] of [...Object.entries(zh), ...Object.entries(en)]) assert.ok(String(v).trim(), k);
});

test('every literal t() key in the code is in the catalogues', () => {
  const src = join(web, 'src');
  for (const f of readdirSync(src).filter((x) => x.endsWith('.js'))) {
    const code = readFileSync(join(src, f), 'utf8');
    for (const m of code.matchAll(/\bt\('([a-z_.A-Z0-9-]+)'[,)]/g)) {
      assert.ok(m[1] in zh, `${f}: ${m[1]} missing`);
    }
  }
});
