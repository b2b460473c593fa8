// The friends screen: add a friend by address with a note, incoming and outgoing requests
// (accept, decline, cancel), my friends (message, remove, block), the users I block (unblock),
// and who may message me. Requests update live: the store counts `friend` events.

import { html, useState, useEffect, useStore, Alert, Field, Avatar } from './ui.js';
import { t, formatDateTime } from './i18n.js';
import * as api from './api.js';
import { Icon } from './icons.js';

/** Everything the screen shows, loaded together and again after each `friend` event. */
function useFriends(store) {
  const [value, setValue] = useState(/** @type {any} */ (null));
  const [error, setError] = useState(/** @type {any} */ (null));
  const [n, setN] = useState(0);
  useEffect(() => {
    Promise.all([
      api.call('GET', '/api/v1/friends'),
      api.call('GET', '/api/v1/friends/requests'),
      api.call('GET', '/api/v1/blocks'),
      api.call('GET', '/api/v1/me/direct-messages'),
    ]).then(
      ([f, r, b, d]) => setValue({ friends: f.friends, requests: r.requests, blocks: b.blocks, dm: d.direct_messages }),
      setError,
    );
  }, [n, store.friendEvents]);
  return { value, error, reload: () => setN(n + 1) };
}

export function FriendsScreen({ store, go }) {
  useStore(store);
  const { value, error, reload } = useFriends(store);
  const [msg, setMsg] = useState(/** @type {any} */ (null));
  const act = async (fn, done) => {
    setMsg(null);
    try {
      await fn();
      if (done) setMsg(done);
      reload();
    } catch (e) {
      setMsg(e);
    }
  };
  const message = async (address) => {
    try {
      const c = await api.call('POST', '/api/v1/conversations', { kind: 'direct', with: address });
      await store.refreshConversations();
      go('#/chats/' + c.id);
    } catch (e) {
      setMsg(e);
    }
  };
  const incoming = value ? value.requests.filter((r) => r.direction === 'incoming') : [];
  const outgoing = value ? value.requests.filter((r) => r.direction === 'outgoing') : [];
  return html`<div class="privacy-layout">
    <header class="privacy-head">
      <a class="icon-button" href="#/chats" aria-label=${t('common.back_to_chats')}><${Icon} name="back" /></a>
      <h1>${t('friends.title')}</h1>
    </header>
    <main class="privacy-main friends-main" id="main" tabindex="0">
      <${Alert} error=${error} />
      <${Alert} error=${msg} kind=${typeof msg === 'string' ? 'ok' : 'error'} />
      <${AddFriend} onSent=${() => act(async () => {}, t('friends.sent'))} />
      ${value && html`
        <section aria-labelledby="h-incoming">
          <h2 id="h-incoming">${t('friends.incoming')} ${incoming.length > 0 && html`<span class="badge">${incoming.length}</span>`}</h2>
          ${incoming.length === 0 ? html`<p class="empty">${t('friends.no_incoming')}</p>` : html`<ul class="card-list">
            ${incoming.map((r) => html`<li class="card card-row" key=${r.id}>
              <${Person} p=${r} meta=${t('friends.requested_at', { at: formatDateTime(r.created) })} note=${r.note} />
              <div class="row-actions">
                <button type="button" class="primary" onClick=${() => act(() => api.call('POST', `/api/v1/friends/requests/${r.id}/accept`), t('friends.accepted'))}
                  aria-label=${t('friends.accept_who', { who: r.nickname })}>${t('friends.accept')}</button>
                <button type="button" onClick=${() => act(() => api.call('POST', `/api/v1/friends/requests/${r.id}/decline`))}
                  aria-label=${t('friends.decline_who', { who: r.nickname })}>${t('friends.decline')}</button>
              </div></li>`)}</ul>`}
        </section>
        <section aria-labelledby="h-outgoing">
          <h2 id="h-outgoing">${t('friends.outgoing')}</h2>
          ${outgoing.length === 0 ? html`<p class="empty">${t('friends.no_outgoing')}</p>` : html`<ul class="card-list">
            ${outgoing.map((r) => html`<li class="card card-row" key=${r.id}>
              <${Person} p=${r} meta=${t('friends.waiting_since', { at: formatDateTime(r.created) })} note=${r.note} />
              <div class="row-actions"><button type="button" onClick=${() => act(() => api.call('DELETE', `/api/v1/friends/requests/${r.id}`))}
                aria-label=${t('friends.cancel_who', { who: r.nickname })}>${t('friends.cancel')}</button></div></li>`)}</ul>`}
        </section>
        <section aria-labelledby="h-friends">
          <h2 id="h-friends">${t('friends.list')}</h2>
          ${value.friends.length === 0 ? html`<p class="empty">${t('friends.none')}</p>` : html`<ul class="card-list">
            ${value.friends.map((f) => html`<li class="card card-row" key=${f.id}>
              <${Person} p=${f} meta=${t('friends.since', { at: formatDateTime(f.since) })} />
              <div class="row-actions">
                <button type="button" class="primary" onClick=${() => message(f.user)} aria-label=${t('friends.message_who', { who: f.nickname })}>${t('friends.message')}</button>
                <button type="button" onClick=${() => act(() => api.call('DELETE', `/api/v1/friends/${f.id}`))}
                  aria-label=${t('friends.remove_who', { who: f.nickname })}>${t('friends.remove')}</button>
                <button type="button" class="danger" onClick=${() => act(() => api.call('POST', '/api/v1/blocks', { user: f.user }), t('friends.blocked'))}
                  aria-label=${t('friends.block_who', { who: f.nickname })}>${t('friends.block')}</button>
              </div></li>`)}</ul>`}
        </section>
        <${BlockByAddress} onDone=${(fn) => act(fn, t('friends.blocked'))} />
        <section aria-labelledby="h-blocks">
          <h2 id="h-blocks">${t('friends.blocks')}</h2>
          <p class="lead">${t('friends.blocks_lead')}</p>
          ${value.blocks.length === 0 ? html`<p class="empty">${t('friends.no_blocks')}</p>` : html`<ul class="card-list">
            ${value.blocks.map((b) => html`<li class="card card-row" key=${b.id}>
              <${Person} p=${b} meta=${t('friends.blocked_since', { at: formatDateTime(b.since) })} />
              <div class="row-actions"><button type="button" onClick=${() => act(() => api.call('DELETE', `/api/v1/blocks/${b.id}`))}
                aria-label=${t('friends.unblock_who', { who: b.nickname })}>${t('friends.unblock')}</button></div></li>`)}</ul>`}
        </section>
        <${DirectMessages} value=${value.dm} onSet=${(v) => act(() => api.call('PUT', '/api/v1/me/direct-messages', { direct_messages: v }), t('privacy.saved'))} />`}
    </main>
  </div>`;
}

function Person({ p, meta, note = null }) {
  return html`<div class="card-text friend-person">
    <${Avatar} name=${p.nickname} />
    <div>
      <h3>${p.nickname}</h3>
      <p class="meta">${p.user} · ${meta}</p>
      ${note && html`<p class="note"><span class="visually-hidden">${t('friends.note')}: </span>“${note}”</p>`}
    </div>
  </div>`;
}

function AddFriend({ onSent }) {
  const [to, setTo] = useState('');
  const [note, setNote] = useState('');
  const [err, setErr] = useState(/** @type {any} */ (null));
  const submit = async (e) => {
    e.preventDefault();
    setErr(null);
    try {
      await api.call('POST', '/api/v1/friends/requests', note.trim() ? { to: to.trim(), note } : { to: to.trim() });
      setTo('');
      setNote('');
      onSent();
    } catch (x) {
      setErr(x);
    }
  };
  return html`<form class="form card" onSubmit=${submit} aria-labelledby="h-add">
    <h2 id="h-add">${t('friends.add')}</h2>
    <${Field} id="friend-to" label=${t('chat.address')} hint=${t('chat.address_hint')} value=${to} onInput=${setTo} required />
    <div class="field">
      <label for="friend-note">${t('friends.note')}</label>
      <textarea id="friend-note" rows="2" maxlength="200" value=${note} aria-describedby="friend-note-hint"
        onInput=${(e) => setNote(e.currentTarget.value)}></textarea>
      <p class="hint" id="friend-note-hint">${t('friends.note_hint')}</p>
    </div>
    <${Alert} error=${err} />
    <button type="submit" class="primary">${t('friends.send')}</button>
  </form>`;
}

function BlockByAddress({ onDone }) {
  const [who, setWho] = useState('');
  const submit = (e) => {
    e.preventDefault();
    const user = who.trim();
    onDone(async () => {
      await api.call('POST', '/api/v1/blocks', { user });
      setWho('');
    });
  };
  return html`<form class="form inline-form" onSubmit=${submit}>
    <${Field} id="block-who" label=${t('friends.block_address')} value=${who} onInput=${setWho} required />
    <button type="submit" class="danger">${t('friends.block')}</button>
  </form>`;
}

function DirectMessages({ value, onSet }) {
  // Shown as chosen at once; the reload after saving confirms it.
  const [chosen, setChosen] = useState(value);
  useEffect(() => setChosen(value), [value]);
  const choose = (v) => {
    setChosen(v);
    onSet(v);
  };
  return html`<section aria-labelledby="h-dm">
    <h2 id="h-dm">${t('friends.dm_title')}</h2>
    <fieldset class="choices">
      <legend class="lead">${t('friends.dm_lead')}</legend>
      ${['anyone', 'friends'].map((v) => html`<label class="check" key=${v}>
        <input type="radio" name="dm" value=${v} checked=${chosen === v} onChange=${() => choose(v)} />
        <span>${t('friends.dm.' + v)}</span></label>`)}
    </fieldset>
  </section>`;
}
