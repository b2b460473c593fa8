// The search screen (#/search): one box over people, groups, communities, posts, comments
// and my messages, with a scope choice, highlighted results that open the conversation or the
// community, and — only while the person grants `personalisation` — their recent searches,
// which they can clear. The query goes in a POST body, never in the address bar.

import { html, useState, useEffect } from './ui.js';
import { Alert, Avatar } from './ui.js';
import { Icon } from './icons.js';
import { t, formatDateTime } from './i18n.js';
import * as api from './api.js';

const SCOPES = ['all', 'people', 'groups', 'communities', 'posts', 'comments', 'messages'];

/**
 * `text` with the [start, end) code-point ranges in `spans` marked.
 * @param {{text: string, spans: number[][]}} props
 */
function Marked({ text, spans }) {
  const chars = Array.from(text);
  const out = [];
  let at = 0;
  for (const [s, e] of spans) {
    if (s > at) out.push(chars.slice(at, s).join(''));
    out.push(html`<mark>${chars.slice(s, e).join('')}</mark>`);
    at = e;
  }
  if (at < chars.length) out.push(chars.slice(at).join(''));
  return html`${out}`;
}

export function SearchScreen({ store, go }) {
  const [query, setQuery] = useState('');
  const [scope, setScope] = useState('all');
  const [results, setResults] = useState(/** @type {any} */ (null));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {any} */ (null));
  const [recent, setRecent] = useState(/** @type {any[]|null} */ (null));
  const [personal, setPersonal] = useState(false);

  const loadRecent = async () => {
    try {
      const c = await api.call('GET', '/api/v1/me/consents');
      const on = c.consents.some((x) => x.purpose === 'personalisation' && x.granted);
      setPersonal(on);
      setRecent(on ? (await api.call('GET', '/api/v1/me/searches')).searches : []);
    } catch (e) {
      setError(e);
    }
  };
  useEffect(() => {
    loadRecent();
  }, []);

  /** @param {string} q @param {string} sc @param {string|null} [cursor] */
  const run = async (q, sc, cursor = null) => {
    if (!q.trim()) return;
    setBusy(true);
    setError(null);
    try {
      const body = { query: q, scopes: sc === 'all' ? SCOPES.slice(1) : [sc] };
      if (cursor) body.cursor = cursor;
      const r = await api.call('POST', '/api/v1/search', body);
      if (cursor && results) {
        // The next page of the one scope shown.
        const merged = { ...results };
        merged[sc] = { items: [...results[sc].items, ...r[sc].items], next: r[sc].next };
        setResults(merged);
      } else setResults(r);
      if (r.logged) loadRecent();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const submit = (e) => {
    e.preventDefault();
    run(query, scope);
  };
  const clear = async () => {
    try {
      await api.call('DELETE', '/api/v1/me/searches');
      setRecent([]);
    } catch (e) {
      setError(e);
    }
  };
  const openDirect = async (address) => {
    try {
      const r = await api.call('POST', '/api/v1/conversations', { kind: 'direct', with: address });
      await store.refreshConversations();
      go('#/chats/' + r.id);
    } catch (e) {
      setError(e);
    }
  };
  const section = (key, render) => {
    if (!results || !results[key]) return null;
    const s = results[key];
    return html`<section class="search-section" aria-labelledby=${'sr-' + key}>
      <h2 id=${'sr-' + key}>${t('search.scope.' + key)}</h2>
      ${s.items.length === 0
        ? html`<p class="meta">${t('search.none')}</p>`
        : html`<ul class="search-results">${s.items.map(render)}</ul>`}
      ${s.next && html`<button type="button" class="ghost" disabled=${busy}
        onClick=${() => { setScope(key); run(query, key, s.next); }}>${t('search.more')}</button>`}
    </section>`;
  };

  return html`<div class="privacy-layout search-layout">
    <header class="privacy-head">
      <a class="icon-button" href="#/chats" aria-label=${t('common.back_to_chats')}><${Icon} name="back" /></a>
      <h1>${t('search.title')}</h1>
    </header>
    <main class="search-main" id="main" tabindex="0">
      <form class="search-form" role="search" onSubmit=${submit}>
        <label class="visually-hidden" for="search-q">${t('search.query')}</label>
        <input id="search-q" type="search" maxlength="100" autocomplete="off" value=${query}
          placeholder=${t('search.placeholder')} onInput=${(e) => setQuery(e.currentTarget.value)} />
        <button class="primary" type="submit" disabled=${busy || !query.trim()}>${t('search.submit')}</button>
      </form>
      <fieldset class="search-scopes">
        <legend class="visually-hidden">${t('search.scope_label')}</legend>
        ${SCOPES.map((s) => html`<label class=${'chip' + (scope === s ? ' on' : '')}>
          <input type="radio" name="scope" value=${s} checked=${scope === s}
            onChange=${() => { setScope(s); if (query.trim()) run(query, s); }} />${t('search.scope.' + s)}</label>`)}
      </fieldset>
      <${Alert} error=${error} />
      ${!results && recent !== null && html`<section class="search-section" aria-labelledby="sr-recent">
        <h2 id="sr-recent">${t('search.recent')}</h2>
        ${!personal
          ? html`<p class="meta">${t('search.recent_off')} <a href="#/privacy/purposes">${t('search.recent_turn_on')}</a></p>`
          : recent.length === 0
            ? html`<p class="meta">${t('search.recent_none')}</p>`
            : html`<ul class="recent-list">${recent.map((r) => html`<li key=${r.at + r.query}>
                <button type="button" class="link" onClick=${() => { setQuery(r.query); run(r.query, scope); }}>${r.query}</button>
                <time class="meta">${formatDateTime(r.at)}</time></li>`)}</ul>
              <button type="button" class="ghost" onClick=${clear}>${t('search.recent_clear')}</button>`}
      </section>`}
      ${section('people', (p) => html`<li key=${p.address}>
        <button type="button" class="search-hit" onClick=${() => openDirect(p.address)}>
          <${Avatar} name=${p.nickname} size=${32} />
          <span><strong><${Marked} text=${p.nickname} spans=${p.nickname_highlights} /></strong>
            <small><${Marked} text=${p.address} spans=${p.address_highlights} /></small></span>
        </button></li>`)}
      ${section('groups', (g) => html`<li key=${g.id}>
        <a class="search-hit" href=${'#/chats/' + g.id}>
          <${Avatar} name=${g.name} size=${32} />
          <span><strong><${Marked} text=${g.name} spans=${g.highlights} /></strong>
            <small>${g.member ? t('search.group_member') : t('search.group_public')}</small></span>
        </a></li>`)}
      ${section('communities', (c) => html`<li key=${c.id}>
        <a class="search-hit" href=${'#/communities/c/' + c.id}>
          <${Avatar} name=${c.name} size=${32} />
          <span><strong><${Marked} text=${c.name} spans=${c.highlights} /></strong>
            <small>${c.member ? t('search.community_member') : t('search.community_' + c.visibility)}</small>
            ${c.description && html`<span class="snippet"><${Marked} text=${c.description} spans=${c.description_highlights} /></span>`}</span>
        </a></li>`)}
      ${section('posts', (p) => html`<li key=${p.community + '/' + p.id}>
        <a class="search-hit" href=${'#/communities/c/' + p.community}>
          <span><small>${p.community_name} · ${p.author} · ${formatDateTime(p.created)}</small>
            <span class="snippet"><${Marked} text=${p.snippet} spans=${p.highlights} /></span></span>
        </a></li>`)}
      ${section('comments', (c) => html`<li key=${c.post + '/' + c.id}>
        <a class="search-hit" href=${'#/communities/c/' + c.community}>
          <span><small>${t('search.comment_on', { community: c.community_name })} · ${c.author} · ${formatDateTime(c.created)}</small>
            <span class="snippet"><${Marked} text=${c.snippet} spans=${c.highlights} /></span></span>
        </a></li>`)}
      ${section('messages', (m) => html`<li key=${m.id}>
        <a class="search-hit" href=${'#/chats/' + m.conversation}>
          <span><small>${m.sender} · ${formatDateTime(new Date(m.ts).toISOString())}</small>
            <span class="snippet"><${Marked} text=${m.snippet} spans=${m.highlights} /></span></span>
        </a></li>`)}
    </main>
  </div>`;
}
