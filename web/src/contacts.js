// Contacts for matching (issue 22), done on the device before anything is sent: reading phone
// numbers out of pasted text, a vCard (.vcf) or a table (.csv), writing each in E.164 form,
// and hashing it the way the node expects — lowercase hex of SHA-256("shanliao-contact/v1:" +
// the E.164 number). Only the hashes leave the device. No imports, so Node's tests load it too.

/** What the node's contact hash puts before the number (domain/src/discovery/suggestions.rs). */
export const HASH_PREFIX = 'shanliao-contact/v1:';

/** Most hashes the node takes in one upload. */
export const MAX_UPLOAD = 2000;

/** Header words of a table's phone columns. */
const PHONE_HEADER = /phone|tel|mobile|cell|电话|手机/i;

/** Whether a piece of text could be a phone number: digits and the usual punctuation, 6+ digits. */
function phoneLike(s) {
  if (!/^\+?[\d ().\-\u00a0]+$/.test(s)) return false;
  const digits = s.replace(/\D/g, '').length;
  return digits >= 6 && digits <= 17;
}

/** One table row split at commas, semicolons or tabs, with quotes taken off. */
function cells(line) {
  return line.split(/[,;\t]/).map((c) => c.trim().replace(/^"(.*)"$/, '$1').trim());
}

/**
 * The phone numbers written in `text`, as written: the TEL lines of its vCards; and of the
 * other lines, the phone columns of a table whose header names them, else every number in
 * every cell (one per line, or separated by commas or semicolons, as a person pastes them,
 * with or without names). Pasted lines and a picked file may be mixed.
 * @param {string} text
 * @returns {string[]}
 */
export function numbersIn(text) {
  // vCard lines may be folded: a line starting with a space or tab continues the one before.
  const lines = text.replace(/\r?\n[ \t]/g, '').split(/\r?\n/);
  const out = [];
  const rest = [];
  let inCard = false;
  for (const l of lines) {
    if (/^BEGIN:VCARD/i.test(l)) inCard = true;
    else if (/^END:VCARD/i.test(l)) inCard = false;
    else if (!inCard) {
      if (l.trim()) rest.push(l);
    } else if (/^(item\d+\.)?TEL[;:]/i.test(l)) {
      const v = l.slice(l.indexOf(':') + 1).replace(/^tel:/i, '').trim();
      if (phoneLike(v)) out.push(v);
    }
  }
  if (rest.length === 0) return out;
  const head = cells(rest[0]);
  const columns = head.map((c, i) => (PHONE_HEADER.test(c) && !phoneLike(c) ? i : -1)).filter((i) => i >= 0);
  const body = columns.length ? rest.slice(1) : rest;
  for (const row of body) {
    const cs = cells(row);
    for (const [i, c] of cs.entries()) {
      if (columns.length && !columns.includes(i)) continue;
      // A number written after a name ("Li Lei 138 0013 8000") counts too.
      const run = phoneLike(c) ? c : (/\+?\d[\d ().\-\u00a0]{4,}\d/.exec(c) || [''])[0].trim();
      if (phoneLike(run)) out.push(run);
    }
  }
  return out;
}

/**
 * A number in E.164 form (`+` and 8–15 digits), or null if it cannot be one. A number without
 * a country code gets `callingCode` (such as "+86"), after its trunk "0" if it has one; an
 * international "00" prefix becomes "+"; "(0)" in "+44 (0)20…" is dropped.
 * @param {string} raw
 * @param {string} callingCode
 */
export function toE164(raw, callingCode) {
  let s = raw.replace(/\(0\)/g, '').replace(/[\s().\-\u00a0]/g, '');
  if (s.startsWith('00')) s = '+' + s.slice(2);
  if (!s.startsWith('+')) {
    const cc = callingCode.replace(/[^\d]/g, '');
    if (!cc) return null;
    s = '+' + cc + s.replace(/^0/, '');
  }
  return /^\+[1-9]\d{7,14}$/.test(s) ? s : null;
}

/** One- and two-digit country calling codes (every other code has three digits). */
const SHORT_CODES = new Set(['1', '7', '20', '27', '30', '31', '32', '33', '34', '36', '39', '40', '41', '43', '44', '45', '46', '47', '48', '49', '51', '52', '53', '54', '55', '56', '57', '58', '60', '61', '62', '63', '64', '65', '66', '81', '82', '84', '86', '90', '91', '92', '93', '94', '95', '98']);

/**
 * The country calling code of an E.164 number ("+8613800138000" → "+86"), or "+86".
 * @param {string|null|undefined} phone
 */
export function callingCodeOf(phone) {
  const d = /^\+(\d{4,})$/.exec(phone || '');
  if (!d) return '+86';
  for (const n of [1, 2]) if (SHORT_CODES.has(d[1].slice(0, n))) return '+' + d[1].slice(0, n);
  return '+' + d[1].slice(0, 3);
}

/**
 * The hash the node matches: lowercase hex of SHA-256(HASH_PREFIX + e164).
 * @param {string} e164
 */
export async function contactHash(e164) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(HASH_PREFIX + e164));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Reads `text` into distinct E.164 numbers and how many entries could not be read.
 * @param {string} text
 * @param {string} callingCode
 */
export function prepare(text, callingCode) {
  const seen = new Set();
  let unreadable = 0;
  for (const raw of numbersIn(text)) {
    const n = toE164(raw, callingCode);
    if (n) seen.add(n);
    else unreadable += 1;
  }
  return { numbers: [...seen], unreadable };
}
