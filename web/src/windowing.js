// Which rows of a long list to draw: the ones near the visible part, with the height of the
// others kept as space above and below. Heights are measured once a row has been drawn and
// estimated (the mean of the measured ones) until then. Pure arithmetic, no DOM.

/** Rows drawn beyond each edge of the visible part, in pixels. */
export const OVERSCAN = 800;

/** The height assumed for a row before any has been measured. */
export const FIRST_ESTIMATE = 56;

/** Measured row heights by key, with their mean for the rows not measured yet. */
export class Heights {
  constructor() {
    /** @type {Map<number, number>} */
    this.sizes = new Map();
    this.total = 0;
  }

  /** @param {number} key @param {number} height */
  set(key, height) {
    const old = this.sizes.get(key);
    if (old === height) return false;
    this.total += height - (old || 0);
    this.sizes.set(key, height);
    return true;
  }

  estimate() {
    return this.sizes.size ? this.total / this.sizes.size : FIRST_ESTIMATE;
  }

  /** @param {number} key */
  get(key) {
    const h = this.sizes.get(key);
    return h === undefined ? this.estimate() : h;
  }
}

/**
 * The rows to draw so that [top, top + height] (in the list's own coordinates) is covered with
 * `overscan` to spare on both sides: `start` (first index drawn), `end` (one past the last),
 * and the space to keep `before` and `after` them.
 * @param {number[]} keys the rows' keys, in order
 * @param {Heights} heights
 * @param {number} top
 * @param {number} height
 * @param {number} [overscan]
 * @returns {{start: number, end: number, before: number, after: number}}
 */
export function rowsFor(keys, heights, top, height, overscan = OVERSCAN) {
  const from = top - overscan;
  const to = top + height + overscan;
  let y = 0;
  let start = keys.length;
  let before = 0;
  let i = 0;
  for (; i < keys.length; i++) {
    const h = heights.get(keys[i]);
    if (y + h > from) {
      start = i;
      before = y;
      break;
    }
    y += h;
  }
  if (start === keys.length) before = y;
  let end = start;
  for (; end < keys.length && y < to; end++) y += heights.get(keys[end]);
  let after = 0;
  for (let k = end; k < keys.length; k++) after += heights.get(keys[k]);
  return { start, end, before, after };
}

/**
 * The rows to draw when the view is held at the end of the list (following new messages).
 * @param {number[]} keys
 * @param {Heights} heights
 * @param {number} height the visible height
 * @param {number} [overscan]
 */
export function tailRows(keys, heights, height, overscan = OVERSCAN) {
  let total = 0;
  for (const k of keys) total += heights.get(k);
  return rowsFor(keys, heights, Math.max(0, total - height), height, overscan);
}

/**
 * Whether the rows drawn, `shown` (first and last key), still cover what `wanted` needs, so
 * that a scroll inside the spare rows redraws nothing.
 * @param {number[]} keys
 * @param {{first: number, last: number}|null} shown
 * @param {{start: number, end: number}} wanted
 */
export function covers(keys, shown, wanted) {
  if (!shown || wanted.end <= wanted.start) return false;
  const first = keys.indexOf(shown.first);
  const last = keys.indexOf(shown.last);
  if (first < 0 || last < 0) return false;
  return first <= wanted.start && last >= wanted.end - 1;
}
