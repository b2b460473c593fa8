// The view library (vendored htm + Preact, web/vendor/) and small shared pieces of UI.

import { html, render, useState, useEffect, useRef, useMemo, useCallback, useLayoutEffect, Component } from '../vendor/htm/standalone.module.js';
import { t } from './i18n.js';
import { ApiError, NetworkError, mediaUrl } from './api.js';
import { Icon } from './icons.js';

export { html, render, useState, useEffect, useRef, useMemo, useCallback, useLayoutEffect, Component };

/** Re-renders the calling component whenever the store changes. */
export function useStore(store) {
  const [, tick] = useState(0);
  useEffect(() => store.subscribe(() => tick((n) => n + 1)), [store]);
  return store;
}

/** The words for an error answer: a translation of its code when there is one. */
export function errorText(e) {
  if (e instanceof NetworkError) return t('error.network');
  if (e instanceof ApiError) {
    const key = 'error.' + e.code;
    const s = t(key);
    return s === key ? t('error.generic', { status: e.status }) : s;
  }
  return t('error.unexpected');
}

/**
 * A round badge: the person's avatar image when `media` names one (their upload, or this
 * node's copy of a remote user's), else the first letter of a name (also while the image
 * loads, and for an old avatar that is no image).
 */
export function Avatar({ name, size = 40, media = /** @type {string|null|undefined} */ (null) }) {
  const [src, setSrc] = useState(/** @type {string|null} */ (null));
  useEffect(() => {
    setSrc(null);
    if (!media || !/^[A-Za-z0-9_-]{1,64}$/.test(media)) return undefined;
    let alive = true;
    /** @type {string|null} */ let url = null;
    mediaUrl(media).then((u) => {
      url = u;
      if (alive) setSrc(u);
      else URL.revokeObjectURL(u);
    }, () => {});
    return () => {
      alive = false;
      if (url) URL.revokeObjectURL(url);
    };
  }, [media]);
  if (src) return html`<img class=${"avatar photo s" + size} src=${src} alt="" aria-hidden="true" />`;
  const letter = (name || '?').replace(/^[^A-Za-z0-9\u4e00-\u9fff]+/, '').slice(0, 1).toUpperCase() || '?';
  let hash = 0;
  for (const ch of name || '') hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return html`<span class=${"avatar s" + size} data-hue=${hash % 8} aria-hidden="true">${letter}</span>`;
}

/** A modal dialog (the native <dialog>: focus trapped, Escape closes). */
export function Dialog({ title, onClose, children, wide = false }) {
  const ref = useRef(/** @type {HTMLDialogElement|null} */ (null));
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const cancel = (e) => {
      e.preventDefault();
      onClose();
    };
    d && d.addEventListener('cancel', cancel);
    return () => d && d.removeEventListener('cancel', cancel);
  }, []);
  return html`<dialog ref=${ref} class=${wide ? 'dialog wide' : 'dialog'} aria-labelledby="dialog-title">
    <header class="dialog-head">
      <h2 id="dialog-title">${title}</h2>
      <button type="button" class="icon-button" onClick=${onClose} aria-label=${t('common.close')}><${Icon} name="close" /></button>
    </header>
    <div class="dialog-body">${children}</div>
  </dialog>`;
}

/** An inline error or status line, announced when it changes. */
export function Alert({ error, kind = 'error' }) {
  if (!error) return null;
  return html`<p class=${'alert ' + kind} role=${kind === 'error' ? 'alert' : 'status'}>${typeof error === 'string' ? error : errorText(error)}</p>`;
}

/** A labelled text field with an optional reason shown under it. */
export function Field({ id, label, value, onInput, type = 'text', hint = '', autocomplete = 'off', required = false, ...rest }) {
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <input id=${id} name=${id} type=${type} value=${value} required=${required}
      autocomplete=${autocomplete} aria-describedby=${hint ? id + '-hint' : undefined}
      onInput=${(e) => onInput(e.currentTarget.value)} ...${rest} />
    ${hint && html`<p class="hint" id=${id + '-hint'}>${hint}</p>`}
  </div>`;
}

/** Renders a policy text (Markdown headings, lists and paragraphs) without innerHTML. */
export function PolicyText({ text }) {
  const blocks = [];
  /** @type {string[]} */
  let list = [];
  const flush = () => {
    if (list.length) blocks.push(html`<ul>${list.map((i) => html`<li>${i}</li>`)}</ul>`);
    list = [];
  };
  for (const raw of (text || '').split('\n')) {
    const line = raw.trim();
    if (!line) {
      flush();
      continue;
    }
    const h = /^(#{1,4})\s+(.*)$/.exec(line);
    const li = /^[-*]\s+(.*)$/.exec(line) || /^\d+[.)]\s+(.*)$/.exec(line);
    if (h) {
      flush();
      const level = Math.min(h[1].length + 1, 4);
      blocks.push(level === 2 ? html`<h2>${h[2]}</h2>` : level === 3 ? html`<h3>${h[2]}</h3>` : html`<h4>${h[2]}</h4>`);
    } else if (li) list.push(li[1].replace(/\*\*/g, ''));
    else {
      flush();
      blocks.push(html`<p>${line.replace(/\*\*/g, '')}</p>`);
    }
  }
  flush();
  return html`<div class="policy-text">${blocks}</div>`;
}
