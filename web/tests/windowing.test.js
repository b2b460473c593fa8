// The windowed message list's arithmetic (web/src/windowing.js): which rows are drawn for a
// scroll position, and the space kept for the others. No browser needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Heights, rowsFor, tailRows, covers, FIRST_ESTIMATE } from '../src/windowing.js';

const keys = Array.from({ length: 10000 }, (_, i) => i + 1);

test('only the rows near the visible part are drawn, the rest kept as space', () => {
  const h = new Heights();
  for (const k of keys) h.set(k, 50);
  const r = rowsFor(keys, h, 100000, 800, 400);
  // Visible: 100000..100800 → rows 2000..2016; with 400 px to spare each side: 1992..2024.
  assert.deepEqual(r, { start: 1992, end: 2024, before: 1992 * 50, after: (10000 - 2024) * 50 });
  assert.equal(r.before + (r.end - r.start) * 50 + r.after, 10000 * 50, 'the whole height is kept');
});

test('rows not measured yet count as the mean of the measured ones', () => {
  const h = new Heights();
  assert.equal(h.get(1), FIRST_ESTIMATE);
  h.set(1, 40);
  h.set(2, 80);
  assert.equal(h.get(3), 60);
  assert.equal(h.set(2, 80), false, 'the same height again changes nothing');
  h.set(2, 20);
  assert.equal(h.get(3), 30);
});

test('following the end draws the last rows, and the top of the list its first ones', () => {
  const h = new Heights();
  for (const k of keys) h.set(k, 100);
  const tail = tailRows(keys, h, 1000, 500);
  assert.equal(tail.end, keys.length);
  assert.equal(tail.after, 0);
  assert.equal(tail.start, 10000 - 15);
  const head = rowsFor(keys, h, 0, 1000, 500);
  assert.deepEqual([head.start, head.end, head.before], [0, 15, 0]);
  assert.deepEqual(rowsFor([], h, 0, 1000), { start: 0, end: 0, before: 0, after: 0 });
  const past = rowsFor(keys.slice(0, 3), h, 5000, 100, 0);
  assert.deepEqual(past, { start: 3, end: 3, before: 300, after: 0 }, 'scrolled past the end');
});

test('a scroll within the rows drawn needs no redraw; one beyond them does', () => {
  const h = new Heights();
  for (const k of keys) h.set(k, 50);
  const shown = { first: keys[1000], last: keys[1100] };
  assert.ok(covers(keys, shown, rowsFor(keys, h, 1020 * 50, 800, 200)));
  assert.ok(!covers(keys, shown, rowsFor(keys, h, 1090 * 50, 800, 200)));
  assert.ok(!covers(keys, null, rowsFor(keys, h, 0, 800)));
  assert.ok(!covers(keys, { first: -5, last: 3 }, rowsFor(keys, h, 0, 800)), 'rows no longer loaded');
});
