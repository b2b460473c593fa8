// The message catalogues (web/i18n/*.json) and the language choice. Every string the person
// sees comes from a catalogue through t(); none is written in the code.

/** Languages with a catalogue, and the policy-text language the node serves for each. */
export const LANGUAGES = /** @type {const} */ (['zh-CN', 'en']);
const POLICY_LANG = { 'zh-CN': 'zh', en: 'en' };

/** @type {Record<string, string>} */
let catalogue = {};
/** @type {string} */
let current = 'zh-CN';

/** The language to start in: the one chosen before, else the browser's, else zh-CN. */
export function initialLanguage() {
  const chosen = localStorage.getItem('shanliao.lang');
  if (chosen && LANGUAGES.includes(/** @type {any} */ (chosen))) return chosen;
  for (const l of navigator.languages || [navigator.language]) {
    const low = (l || '').toLowerCase();
    if (low.startsWith('zh')) return 'zh-CN';
    if (low.startsWith('en')) return 'en';
  }
  return 'zh-CN';
}

/** Loads the catalogue of `lang` and makes it current. */
export async function loadLanguage(lang, remember = false) {
  const url = new URL(`../i18n/${lang}.json`, import.meta.url);
  const r = await fetch(url);
  if (!r.ok) throw new Error(`catalogue ${lang}: ${r.status}`);
  catalogue = await r.json();
  current = lang;
  document.documentElement.lang = lang;
  if (remember) localStorage.setItem('shanliao.lang', lang);
}

/** The current language. */
export function language() {
  return current;
}

/** The policy-text language (`zh` or `en`) for the current language. */
export function policyLanguage() {
  return POLICY_LANG[/** @type {'zh-CN'|'en'} */ (current)] || 'zh';
}

/**
 * The string for `key`, with `{name}` placeholders filled from `vars`.
 * @param {string} key
 * @param {Record<string, string|number>} [vars]
 */
export function t(key, vars) {
  let s = catalogue[key];
  // A count of one takes the key's `_one` form where the language has one ("1 member").
  if (vars && typeof vars.n === 'number' && plural(vars.n) === 'one' && has(`${key}_one`)) s = catalogue[`${key}_one`];
  if (s === undefined) s = key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
  return s;
}

/** Whether the catalogue has `key` (for server error codes that may have a translation). */
export function has(key) {
  return Object.prototype.hasOwnProperty.call(catalogue, key);
}

/** The plural category of `n` in the current language (`one`, `other`, …). */
let plurals = { lang: '', rules: /** @type {Intl.PluralRules|null} */ (null) };
function plural(/** @type {number} */ n) {
  if (plurals.lang !== current) plurals = { lang: current, rules: new Intl.PluralRules(current) };
  return /** @type {Intl.PluralRules} */ (plurals.rules).select(n);
}

/** Formatters of the current language, made once (Intl objects are costly to create). */
let formats = { lang: '', time: /** @type {Intl.DateTimeFormat|null} */ (null), day: /** @type {Intl.DateTimeFormat|null} */ (null), date: /** @type {Intl.DateTimeFormat|null} */ (null) };
function formatters() {
  if (formats.lang !== current) {
    formats = {
      lang: current,
      time: new Intl.DateTimeFormat(current, { hour: '2-digit', minute: '2-digit' }),
      day: new Intl.DateTimeFormat(current, { month: 'short', day: 'numeric' }),
      date: new Intl.DateTimeFormat(current, { year: 'numeric', month: 'long', day: 'numeric' }),
    };
  }
  return formats;
}

/** The local calendar day of `ms`, as a number (for day separators). */
export function dayOf(ms) {
  return Math.floor((ms - new Date(ms).getTimezoneOffset() * 60000) / 86400000);
}

/** A time for a message or list row: the clock today, else the date. */
export function formatTime(ms) {
  const f = formatters();
  return dayOf(ms) === dayOf(Date.now()) ? f.time.format(ms) : f.day.format(ms);
}

/** The clock time of a message. */
export function formatClock(ms) {
  return formatters().time.format(ms);
}

/** A day separator's date. */
export function formatDay(ms) {
  return formatters().date.format(ms);
}

/** A full date and time (privacy centre records). */
export function formatDateTime(value) {
  if (!value) return '';
  const d = new Date(value);
  return isNaN(d.getTime()) ? String(value) : d.toLocaleString(current);
}
