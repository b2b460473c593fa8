// Finding people (issue 22): suggestions with the reason for each and the choices behind them;
// contacts matching (numbers read, normalised and hashed on the device by contacts.js — only
// hashes are sent); nearby people (the browser's position becomes an H3 cell of resolution 7
// on the device — only the cell is sent, never coordinates); invites (friend and group links
// with their QR codes, redeeming one, join requests). Each purpose is asked for when first used.

import { html, useState, useEffect, useRef, useStore, Alert, Field, Avatar } from './ui.js';
import { t, formatDateTime, formatClock } from './i18n.js';
import * as api from './api.js';
import { Icon } from './icons.js';
import { askPurpose, refusedText } from './purposes.js';
import { prepare, contactHash, callingCodeOf, MAX_UPLOAD } from './contacts.js';

const TABS = ['suggestions', 'contacts', 'nearby', 'invites'];
const BANDS = ['same_area', 'about_3km', 'about_5km'];
/** Largest contacts file read (a phone's whole address book as vCards is far smaller). */
const MAX_FILE = 5 * 1024 * 1024;
/** Where an invite opened while signed out waits for the sign-in (this tab only). */
const PENDING_INVITE = 'shanliao.invite';

/** The discovery screen; `tab` is the part of the address after #/discover/. */
export function DiscoverScreen({ store, tab, go }) {
  useStore(store);
  const current = TABS.includes(tab) ? tab : 'suggestions';
  const [ask, setAsk] = useState(/** @type {any} */ (null));
  return html`<div class="privacy-layout discover">
    <header class="privacy-head">
      <a class="icon-button" href="#/chats" aria-label=${t('common.back_to_chats')}><${Icon} name="back" /></a>
      <h1>${t('discover.title')}</h1>
    </header>
    <div class="privacy-body">
      <nav class="privacy-nav" aria-label=${t('discover.sections')}>
        <ul>${TABS.map((k) => html`<li><a href=${'#/discover/' + k} aria-current=${k === current ? 'page' : undefined}>${t('discover.tab.' + k)}</a></li>`)}</ul>
      </nav>
      <main class="privacy-main friends-main" id="main" tabindex="0">
        <h2>${t('discover.tab.' + current)}</h2>
        ${current === 'suggestions' && html`<${Suggestions} store=${store} setAsk=${setAsk} />`}
        ${current === 'contacts' && html`<${Contacts} store=${store} setAsk=${setAsk} />`}
        ${current === 'nearby' && html`<${NearbyPeople} setAsk=${setAsk} />`}
        ${current === 'invites' && html`<${Invites} store=${store} go=${go} />`}
      </main>
    </div>
    ${ask && ask.view}
  </div>`;
}

/** The consents as `{purpose: granted}`, reloadable. */
function useConsents() {
  const [value, setValue] = useState(/** @type {Record<string, boolean>|null} */ (null));
  const [error, setError] = useState(/** @type {any} */ (null));
  const load = () =>
    api.call('GET', '/api/v1/me/consents').then(
      (r) => setValue(Object.fromEntries(r.consents.map((c) => [c.purpose, c.granted]))),
      setError,
    );
  useEffect(() => {
    load();
  }, []);
  return { consents: value, error, reload: load };
}

/** Turns a purpose on (asking in the policy's words first) or off. */
async function setPurpose(purpose, on, setAsk) {
  if (on) return askPurpose(purpose, setAsk);
  await api.call('PUT', `/api/v1/me/consents/${purpose}`, { granted: false });
  return false;
}

/** A switch with its label and the reason under it. */
function Switch({ id, label, hint, checked, busy, onChange }) {
  // The box shows the stored choice after each answer, also when a question was declined
  // (the browser had already ticked it, and the value passed in did not change).
  const ref = useRef(/** @type {HTMLInputElement|null} */ (null));
  useEffect(() => {
    if (ref.current && !busy) ref.current.checked = !!checked;
  });
  return html`<div class="card card-row">
    <div class="card-text">
      <h3 id=${id}>${label}</h3>
      <p class="meta" id=${id + '-hint'}>${hint}</p>
    </div>
    <label class="switch-toggle">
      <input ref=${ref} type="checkbox" role="switch" checked=${checked} aria-labelledby=${id} aria-describedby=${id + '-hint'}
        aria-busy=${busy} disabled=${busy} onChange=${(e) => onChange(e.currentTarget.checked)} />
      <span aria-hidden="true"></span>
    </label>
  </div>`;
}

function Suggestions({ store, setAsk }) {
  const { consents, error, reload } = useConsents();
  const [findable, setFindable] = useState(/** @type {boolean|null} */ (null));
  const [busy, setBusy] = useState(/** @type {string|null} */ (null));
  const [err, setErr] = useState(/** @type {any} */ (null));
  useEffect(() => {
    api.call('GET', '/api/v1/me/discovery').then((r) => setFindable(r.findable_by_phone), setErr);
  }, []);
  const toggle = async (what, on) => {
    setErr(null);
    setBusy(what);
    try {
      if (what === 'findable') setFindable((await api.call('PUT', '/api/v1/me/discovery', { findable_by_phone: on })).findable_by_phone);
      else await setPurpose(what, on, setAsk);
      await reload();
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(null);
    }
  };
  if (!consents) return html`<${Alert} error=${error} />`;
  return html`<${Alert} error=${err} />
    <section aria-labelledby="h-people">
      <h3 id="h-people" class="section-title">${t('discover.people')}</h3>
      ${consents.recommend_me
        ? html`<${SuggestionList} store=${store} />`
        : html`<p class="empty">${t('discover.suggestions_off')}</p>
          <button type="button" class="primary" onClick=${() => toggle('recommend_me', true)}>${t('discover.turn_on')}</button>`}
    </section>
    <section aria-labelledby="h-choices">
      <h3 id="h-choices" class="section-title">${t('discover.choices')}</h3>
      <div class="card-list">
        <${Switch} id="s-recommend-me" label=${t('discover.recommend_me')} hint=${t('discover.recommend_me_hint')}
          checked=${consents.recommend_me} busy=${busy === 'recommend_me'} onChange=${(on) => toggle('recommend_me', on)} />
        <${Switch} id="s-be-recommended" label=${t('discover.be_recommended')} hint=${t('discover.be_recommended_hint')}
          checked=${consents.be_recommended} busy=${busy === 'be_recommended'} onChange=${(on) => toggle('be_recommended', on)} />
        ${findable !== null && html`<${Switch} id="s-findable" label=${t('discover.findable')} hint=${t('discover.findable_hint')}
          checked=${findable} busy=${busy === 'findable'} onChange=${(on) => toggle('findable', on)} />`}
      </div>
    </section>`;
}

/** Why someone is suggested, in words. */
function reasonText(r) {
  if (r.kind === 'mutual_friends') return t('discover.reason.mutual_friends', { n: r.count });
  return t('discover.reason.' + r.kind);
}

/** A person found (suggested or nearby) with their card. */
function Found({ p, meta }) {
  return html`<div class="card-text friend-person">
    <${Avatar} name=${p.nickname} />
    <div>
      <h4>${p.nickname}</h4>
      <p class="meta">${p.address}</p>
      ${meta && html`<p class="reasons">${meta}</p>`}
    </div>
  </div>`;
}

/** Sends a friend request to `address`; the button says when it went. */
function AddFriend({ p, onError }) {
  const [sent, setSent] = useState(false);
  const add = async () => {
    onError(null);
    try {
      await api.call('POST', '/api/v1/friends/requests', { to: p.address });
      setSent(true);
    } catch (e) {
      onError(e);
    }
  };
  return sent
    ? html`<span class="tag" role="status">${t('discover.request_sent')}</span>`
    : html`<button type="button" class="primary" onClick=${add} aria-label=${t('discover.add_who', { who: p.nickname })}>${t('discover.add')}</button>`;
}

/** The suggestions, page by page; `onlyContacts` keeps those from my contacts. */
function SuggestionList({ store, onlyContacts = false, reloadKey = 0 }) {
  const [items, setItems] = useState(/** @type {any[]|null} */ (null));
  const [next, setNext] = useState(/** @type {string|null} */ (null));
  const [err, setErr] = useState(/** @type {any} */ (null));
  const page = async (cursor) => {
    const r = await api.call('GET', '/api/v1/me/suggestions?limit=20' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    setNext(r.next);
    return r.suggestions;
  };
  const load = () => page(null).then(setItems, setErr);
  useEffect(() => {
    load();
  }, [store.friendEvents, reloadKey]);
  const more = async () => {
    try {
      const got = await page(next);
      setItems((have) => [...(have || []), ...got]);
    } catch (e) {
      setErr(e);
    }
  };
  const dismiss = async (p) => {
    setErr(null);
    try {
      await api.call('POST', '/api/v1/me/suggestions/dismissed', { address: p.address });
      setItems((have) => (have || []).filter((x) => x.address !== p.address));
    } catch (e) {
      setErr(e);
    }
  };
  if (!items) return html`<${Alert} error=${err} />`;
  const shown = onlyContacts ? items.filter((s) => s.reasons.some((r) => r.kind === 'contact')) : items;
  return html`<${Alert} error=${err} />
    ${shown.length === 0
      ? html`<p class="empty">${onlyContacts ? t('discover.no_contact_matches') : t('discover.no_suggestions')}</p>`
      : html`<ul class="card-list" aria-label=${onlyContacts ? t('discover.contact_matches') : t('discover.people')}>
        ${shown.map((s) => html`<li class="card card-row" key=${s.address}>
          <${Found} p=${s} meta=${s.reasons.map(reasonText).join(' · ')} />
          <div class="row-actions">
            <${AddFriend} p=${s} onError=${setErr} />
            <button type="button" onClick=${() => dismiss(s)} aria-label=${t('discover.dismiss_who', { who: s.nickname })}>${t('discover.dismiss')}</button>
          </div></li>`)}</ul>`}
    ${next && !onlyContacts && html`<button type="button" onClick=${more}>${t('discover.more')}</button>`}`;
}

function Contacts({ store, setAsk }) {
  const [text, setText] = useState('');
  const [code, setCode] = useState(callingCodeOf(store.me && store.me.phone));
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState(/** @type {any} */ (null));
  const [done, setDone] = useState(/** @type {any} */ (null));
  const [shownKey, setShownKey] = useState(0);
  const [granted, setGranted] = useState(/** @type {any} */ (null));
  useEffect(() => {
    api.call('GET', '/api/v1/me/consents').then((r) => setGranted(Object.fromEntries(r.consents.map((c) => [c.purpose, c.granted]))), setErr);
  }, [shownKey]);
  const pick = async (e) => {
    const input = e.currentTarget;
    const file = input.files && input.files[0];
    input.value = '';
    if (!file) return;
    if (file.size > MAX_FILE) {
      setErr(t('discover.contacts_file_too_big'));
      return;
    }
    // Read here; the file itself is never sent.
    const read = await file.text();
    setText((have) => (have.trim() ? have.trimEnd() + '\n' : '') + read);
  };
  const { numbers, unreadable } = prepare(text, code);
  const submit = async (e) => {
    e.preventDefault();
    setErr(null);
    setDone(null);
    if (numbers.length === 0) {
      setErr(t('discover.contacts_none'));
      return;
    }
    if (!(await askPurpose('contacts_matching', setAsk))) {
      setErr(refusedText('contacts_matching'));
      return;
    }
    setBusy(true);
    try {
      const hashes = await Promise.all(numbers.map(contactHash));
      let checked = 0;
      let matched = 0;
      let left = 0;
      for (let i = 0; i < hashes.length; i += MAX_UPLOAD) {
        const r = await api.call('POST', '/api/v1/me/contacts', { hashes: hashes.slice(i, i + MAX_UPLOAD) });
        checked += r.checked;
        matched += r.matched;
        left = r.quota_left;
      }
      // The numbers are not kept here either.
      setText('');
      setDone({ checked, matched, left });
      setShownKey((n) => n + 1);
    } catch (x) {
      setErr(x);
    } finally {
      setBusy(false);
    }
  };
  const forget = async () => {
    setErr(null);
    try {
      await api.call('DELETE', '/api/v1/me/contacts');
      setDone(null);
      setShownKey((n) => n + 1);
      setErr(t('discover.contacts_forgotten'));
    } catch (x) {
      setErr(x);
    }
  };
  const askSuggestions = async () => {
    if (await askPurpose('recommend_me', setAsk)) setShownKey((n) => n + 1);
  };
  return html`<p class="lead">${t('discover.contacts_lead')}</p>
    <form class="form card" onSubmit=${submit} aria-labelledby="h-upload">
      <h3 id="h-upload">${t('discover.contacts_form')}</h3>
      <div class="field">
        <label for="contact-numbers">${t('discover.contacts_numbers')}</label>
        <textarea id="contact-numbers" rows="6" value=${text} aria-describedby="contact-numbers-hint"
          onInput=${(e) => setText(e.currentTarget.value)}></textarea>
        <p class="hint" id="contact-numbers-hint">${t('discover.contacts_numbers_hint')}</p>
      </div>
      <div class="field">
        <label for="contact-file">${t('discover.contacts_file')}</label>
        <input id="contact-file" type="file" accept=".vcf,.csv,text/vcard,text/csv,text/plain" onChange=${pick} />
      </div>
      <${Field} id="contact-code" label=${t('discover.contacts_code')} hint=${t('discover.contacts_code_hint')} value=${code} onInput=${setCode} inputmode="tel" />
      <p class="meta" role="status">${t('discover.contacts_ready', { n: numbers.length })}${unreadable > 0 ? ' ' + t('discover.contacts_unreadable', { n: unreadable }) : ''}</p>
      <${Alert} error=${err} kind=${typeof err === 'string' && err === t('discover.contacts_forgotten') ? 'ok' : 'error'} />
      <div class="row-actions">
        <button type="submit" class="primary" disabled=${busy}>${busy ? t('common.wait') : t('discover.contacts_check')}</button>
        <button type="button" onClick=${forget}>${t('discover.contacts_forget')}</button>
      </div>
    </form>
    ${done && html`<p class="alert ok" role="status">${t('discover.contacts_done', { checked: done.checked, matched: done.matched, left: done.left })}</p>`}
    <section aria-labelledby="h-matches">
      <h3 id="h-matches" class="section-title">${t('discover.contact_matches')}</h3>
      ${granted && (granted.recommend_me
        ? html`<${SuggestionList} store=${store} onlyContacts=${true} reloadKey=${shownKey} />`
        : html`<p class="empty">${t('discover.matches_need_suggestions')}</p>
          <button type="button" onClick=${askSuggestions}>${t('discover.turn_on')}</button>`)}
    </section>`;
}

/**
 * The device's current H3 cell of resolution 7 (about 5 km²). The position is read here and
 * goes no further: only the cell is returned.
 * @returns {Promise<string>}
 */
async function currentCell() {
  if (!navigator.geolocation) throw new Error('no_geolocation');
  const pos = await new Promise((resolve, reject) =>
    navigator.geolocation.getCurrentPosition(resolve, reject, { enableHighAccuracy: false, maximumAge: 300000, timeout: 20000 }),
  );
  const h3 = await import('../vendor/h3/h3-js.es.js');
  return h3.latLngToCell(pos.coords.latitude, pos.coords.longitude, 7);
}

function NearbyPeople({ setAsk }) {
  const [mine, setMine] = useState(/** @type {any} */ (undefined));
  const [people, setPeople] = useState(/** @type {any[]|null} */ (null));
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState(/** @type {any} */ (null));
  const [friends, setFriends] = useState(/** @type {Set<string>} */ (new Set()));
  const look = async () => {
    const [near, f] = await Promise.all([api.call('GET', '/api/v1/nearby'), api.call('GET', '/api/v1/friends')]);
    setFriends(new Set(f.friends.map((x) => x.user)));
    setPeople(near.people);
  };
  useEffect(() => {
    api.call('GET', '/api/v1/me/location').then(
      async (r) => {
        setMine(r.cell ? r : null);
        if (r.cell) await look().catch(setErr);
      },
      (e) => (e.status === 403 ? setMine(null) : setErr(e)),
    );
  }, []);
  const share = async () => {
    setErr(null);
    if (!(await askPurpose('precise_location', setAsk))) {
      setErr(refusedText('precise_location'));
      return;
    }
    setBusy(true);
    try {
      const cell = await currentCell();
      setMine(await api.call('PUT', '/api/v1/me/location', { cell }));
      await look();
    } catch (e) {
      // A GeolocationPositionError (denied, unavailable, timed out) has a numeric code.
      setErr(e instanceof api.ApiError || e instanceof api.NetworkError ? e : t('discover.no_position'));
    } finally {
      setBusy(false);
    }
  };
  const stop = async () => {
    setErr(null);
    try {
      await api.call('DELETE', '/api/v1/me/location');
      setMine(null);
      setPeople(null);
      setErr(t('discover.stopped'));
    } catch (e) {
      setErr(e);
    }
  };
  if (mine === undefined) return html`<${Alert} error=${err} />`;
  return html`<p class="lead">${t('discover.nearby_lead')}</p>
    <${Alert} error=${err} kind=${err === t('discover.stopped') ? 'ok' : 'error'} />
    <div class="card">
      ${mine
        ? html`<p role="status">${t('discover.visible_until', { at: formatClock(Date.parse(mine.expires)) })}</p>
          <div class="row-actions">
            <button type="button" class="primary" onClick=${share} disabled=${busy}>${busy ? t('common.wait') : t('discover.update_area')}</button>
            <button type="button" class="danger" onClick=${stop}>${t('discover.stop_sharing')}</button>
          </div>`
        : html`<p>${t('discover.not_visible')}</p>
          <button type="button" class="primary" onClick=${share} disabled=${busy}>${busy ? t('common.wait') : t('discover.share')}</button>`}
    </div>
    ${mine && people && (people.length === 0
      ? html`<p class="empty">${t('discover.nobody_nearby')}</p>`
      : BANDS.map((b) => {
          const here = people.filter((p) => p.band === b);
          return here.length > 0 && html`<section aria-labelledby=${'h-band-' + b} key=${b}>
            <h3 id=${'h-band-' + b} class="section-title">${t('discover.band.' + b)}</h3>
            <ul class="card-list">${here.map((p) => html`<li class="card card-row" key=${p.address}>
              <${Found} p=${p} meta=${t('discover.band.' + b)} />
              <div class="row-actions">${friends.has(p.address)
                ? html`<span class="tag">${t('discover.a_friend')}</span>`
                : html`<${AddFriend} p=${p} onError=${setErr} />`}</div></li>`)}</ul>
          </section>`;
        }))}`;
}

/** The QR code the node drew (SVG), as an image: the page never inserts markup. */
function Qr({ svg }) {
  return html`<img class="qr" width="240" height="240" alt=${t('discover.qr_alt')}
    src=${'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(svg)} />`;
}

/** A made invite's link (selectable, copyable) and QR code. */
function InviteLink({ invite }) {
  const [copied, setCopied] = useState(false);
  const id = 'invite-link-' + invite.id;
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(invite.link);
      setCopied(true);
    } catch {
      setCopied(false);
    }
  };
  return html`<div class="invite-link">
    <div class="field">
      <label for=${id}>${t('discover.invite_link')}</label>
      <input id=${id} type="text" readonly value=${invite.link} onFocus=${(e) => e.currentTarget.select()} />
    </div>
    <div class="row-actions">
      <button type="button" onClick=${copy}>${t('discover.copy')}</button>
      ${copied && html`<span role="status">${t('discover.copied')}</span>`}
    </div>
    <${Qr} svg=${invite.qr_svg} />
  </div>`;
}

const HOURS = [24, 168, 720];

/** The form that makes a friend or group invite. */
function MakeInvite({ store, onMade }) {
  const groups = store.conversations.filter((c) => c.kind === 'group' && (c.role === 'owner' || c.role === 'admin'));
  const [kind, setKind] = useState('friend');
  const [group, setGroup] = useState('');
  const [hours, setHours] = useState(168);
  const [uses, setUses] = useState('10');
  const [autoJoin, setAutoJoin] = useState(false);
  const [err, setErr] = useState(/** @type {any} */ (null));
  const submit = async (e) => {
    e.preventDefault();
    setErr(null);
    /** @type {any} */
    const body = { kind, expires_in_hours: hours, max_uses: Number(uses) };
    if (kind === 'group') {
      body.conversation = group || (groups[0] && groups[0].id);
      body.auto_join = autoJoin;
    }
    try {
      onMade(await api.call('POST', '/api/v1/invites', body));
    } catch (x) {
      setErr(x);
    }
  };
  return html`<form class="form card" onSubmit=${submit} aria-labelledby="h-make">
    <h3 id="h-make">${t('discover.make')}</h3>
    <fieldset class="choices">
      <legend class="lead">${t('discover.invite_kind')}</legend>
      <label class="check"><input type="radio" name="invite-kind" checked=${kind === 'friend'} onChange=${() => setKind('friend')} />
        <span>${t('discover.kind.friend')}</span></label>
      <label class="check"><input type="radio" name="invite-kind" checked=${kind === 'group'} disabled=${groups.length === 0} onChange=${() => setKind('group')} />
        <span>${t('discover.kind.group')}${groups.length === 0 ? ' — ' + t('discover.no_groups') : ''}</span></label>
    </fieldset>
    ${kind === 'group' && html`<div class="field">
        <label for="invite-group">${t('discover.group')}</label>
        <select id="invite-group" value=${group || (groups[0] && groups[0].id)} onChange=${(e) => setGroup(e.currentTarget.value)}>
          ${groups.map((g) => html`<option value=${g.id} key=${g.id}>${g.name}</option>`)}
        </select>
      </div>
      <label class="check"><input type="checkbox" checked=${autoJoin} onChange=${(e) => setAutoJoin(e.currentTarget.checked)} />
        <span>${t('discover.auto_join')}<br /><small>${t('discover.auto_join_hint')}</small></span></label>`}
    <div class="field">
      <label for="invite-hours">${t('discover.expires')}</label>
      <select id="invite-hours" value=${String(hours)} onChange=${(e) => setHours(Number(e.currentTarget.value))}>
        ${HOURS.map((h) => html`<option value=${String(h)} key=${h}>${t('discover.hours.' + h)}</option>`)}
      </select>
    </div>
    <${Field} id="invite-uses" label=${t('discover.max_uses')} hint=${t('discover.max_uses_hint')} type="number" min="1" max="1000" value=${uses} onInput=${setUses} required />
    <${Alert} error=${err} />
    <button type="submit" class="primary">${t('discover.make_submit')}</button>
  </form>`;
}

/** What an invite is and how far it has been used. */
function inviteState(v, now) {
  if (v.revoked) return t('discover.state.revoked');
  if (Date.parse(v.expires) <= now) return t('discover.state.expired');
  if (v.uses >= v.max_uses) return t('discover.state.used_up');
  return t('discover.state.live', { uses: v.uses, max: v.max_uses, at: formatDateTime(v.expires) });
}

function Invites({ store, go }) {
  const [list, setList] = useState(/** @type {any[]|null} */ (null));
  const [joins, setJoins] = useState(/** @type {any[]} */ ([]));
  const [made, setMade] = useState(/** @type {any} */ (null));
  const [open, setOpen] = useState(/** @type {string|null} */ (null));
  const [err, setErr] = useState(/** @type {any} */ (null));
  const [n, setN] = useState(0);
  useEffect(() => {
    Promise.all([api.call('GET', '/api/v1/invites'), api.call('GET', '/api/v1/me/join-requests')]).then(([i, j]) => {
      setList(i.invites);
      setJoins(j.join_requests);
    }, setErr);
  }, [n, store.friendEvents, store.joinEvents, store.conversations.length]);
  const reload = () => setN(n + 1);
  const act = async (fn) => {
    setErr(null);
    try {
      await fn();
      reload();
    } catch (e) {
      setErr(e);
    }
  };
  const groupName = (id) => (store.conversations.find((c) => c.id === id) || { name: t('discover.a_group') }).name;
  const now = Date.now();
  return html`<${Alert} error=${err} />
    <${MakeInvite} store=${store} onMade=${(v) => {
      setMade(v);
      reload();
    }} />
    ${made && html`<section class="card made" aria-labelledby="h-made">
      <h3 id="h-made">${made.kind === 'group' ? t('discover.made_group', { name: groupName(made.conversation) }) : t('discover.made_friend')}</h3>
      <p class="meta">${t('discover.made_hint')}</p>
      <${InviteLink} invite=${made} />
    </section>`}
    <${Redeem} store=${store} go=${go} />
    <section aria-labelledby="h-joins">
      <h3 id="h-joins" class="section-title">${t('discover.join_requests')} ${joins.length > 0 && html`<span class="badge">${joins.length}</span>`}</h3>
      ${joins.length === 0 ? html`<p class="empty">${t('discover.no_join_requests')}</p>` : html`<ul class="card-list">
        ${joins.map((j) => html`<li class="card card-row" key=${j.id}>
          <${Found} p=${{ nickname: j.nickname, address: j.requester }} meta=${t('discover.wants_to_join', { name: groupName(j.conversation), at: formatDateTime(j.at) })} />
          <div class="row-actions">
            <button type="button" class="primary" onClick=${() => act(() => api.call('POST', `/api/v1/me/join-requests/${j.id}`, { accept: true }).then(() => store.refreshConversations()))}
              aria-label=${t('discover.let_in_who', { who: j.nickname })}>${t('discover.let_in')}</button>
            <button type="button" onClick=${() => act(() => api.call('POST', `/api/v1/me/join-requests/${j.id}`, { accept: false }))}
              aria-label=${t('friends.decline_who', { who: j.nickname })}>${t('friends.decline')}</button>
          </div></li>`)}</ul>`}
    </section>
    <section aria-labelledby="h-invites">
      <h3 id="h-invites" class="section-title">${t('discover.my_invites')}</h3>
      ${list && (list.length === 0 ? html`<p class="empty">${t('discover.no_invites')}</p>` : html`<ul class="card-list">
        ${list.map((v) => {
          const title = v.kind === 'group' ? t('discover.invite_to', { name: groupName(v.conversation) }) : t('discover.kind.friend');
          const live = !v.revoked && Date.parse(v.expires) > now && v.uses < v.max_uses;
          return html`<li class="card" key=${v.id}>
            <div class="card-row">
              <div class="card-text">
                <h4>${title}</h4>
                <p class="meta">${inviteState(v, now)}${v.auto_join ? ' · ' + t('discover.auto_join_short') : ''}</p>
              </div>
              <div class="row-actions">
                ${v.link && html`<button type="button" aria-expanded=${open === v.id} onClick=${() => setOpen(open === v.id ? null : v.id)}>${t('discover.show_link')}</button>`}
                ${live && html`<button type="button" class="danger" onClick=${() => act(() => api.call('DELETE', `/api/v1/invites/${v.id}`))}
                  aria-label=${t('discover.revoke_what', { what: title })}>${t('discover.revoke')}</button>`}
              </div>
            </div>
            ${open === v.id && v.link && html`<${InviteLink} invite=${v} />`}
          </li>`;
        })}</ul>`)}
    </section>`;
}

/** Words for what redeeming did. */
function redeemedText(r) {
  if (r.result === 'friend_requested') return t('discover.redeemed.friend', { who: r.address });
  return t('discover.redeemed.' + r.result);
}

/** Paste a link (or its code) someone sent. */
function Redeem({ store, go }) {
  const [link, setLink] = useState('');
  const [err, setErr] = useState(/** @type {any} */ (null));
  const [done, setDone] = useState(/** @type {any} */ (null));
  const submit = async (e) => {
    e.preventDefault();
    setErr(null);
    setDone(null);
    try {
      const r = await api.call('POST', '/api/v1/invites/redeem', { link: link.trim() });
      if (r.result === 'joined') await store.refreshConversations();
      setLink('');
      setDone(r);
    } catch (x) {
      setErr(x);
    }
  };
  return html`<form class="form card" onSubmit=${submit} aria-labelledby="h-redeem">
    <h3 id="h-redeem">${t('discover.redeem')}</h3>
    <${Field} id="redeem-link" label=${t('discover.redeem_link')} hint=${t('discover.redeem_hint')} value=${link} onInput=${setLink} required />
    <${Alert} error=${err} />
    ${done && html`<p class="alert ok" role="status">${redeemedText(done)}
      ${done.result === 'joined' && html` <a href=${'#/chats/' + done.conversation}>${t('discover.open_group')}</a>`}</p>`}
    <button type="submit" class="primary">${t('discover.redeem_submit')}</button>
  </form>`;
}

/**
 * An invite link opened in this client (`#/invite/<token>[/<handle>]`): answered only when the
 * person presses the button. The link is this node's (the page came from its domain), so its
 * code is what is sent.
 */
export function InviteScreen({ store, parts, go }) {
  useStore(store);
  const [token, handle] = parts;
  const [err, setErr] = useState(/** @type {any} */ (null));
  const [done, setDone] = useState(/** @type {any} */ (null));
  const accept = async () => {
    setErr(null);
    try {
      const r = await api.call('POST', '/api/v1/invites/redeem', { link: handle ? `${token}/${handle}` : token });
      if (r.result === 'joined') await store.refreshConversations();
      setDone(r);
    } catch (e) {
      setErr(e);
    }
  };
  return html`<div class="privacy-layout">
    <header class="privacy-head">
      <a class="icon-button" href="#/chats" aria-label=${t('common.back_to_chats')}><${Icon} name="back" /></a>
      <h1>${t('discover.invitation')}</h1>
    </header>
    <main class="privacy-main friends-main" id="main" tabindex="0">
      <div class="card form">
        <p>${handle ? t('discover.invited_friend', { who: handle }) : t('discover.invited_group')}</p>
        <${Alert} error=${err} />
        ${done
          ? html`<p class="alert ok" role="status">${redeemedText(done)}</p>
            <div class="row-actions">
              ${done.result === 'joined'
                ? html`<a class="button primary" href=${'#/chats/' + done.conversation}>${t('discover.open_group')}</a>`
                : html`<a class="button primary" href="#/friends">${t('friends.title')}</a>`}
            </div>`
          : html`<div class="row-actions">
              <button type="button" onClick=${() => go('#/chats')}>${t('purpose.not_now')}</button>
              <button type="button" class="primary" onClick=${accept}>${t('discover.accept_invite')}</button>
            </div>`}
      </div>
    </main>
  </div>`;
}

/** An invite link opened while signed out: kept for after signing in, and what to do. */
export function InviteSignedOut({ parts }) {
  useEffect(() => {
    sessionStorage.setItem(PENDING_INVITE, parts.filter(Boolean).join('/'));
  }, []);
  return html`<div class="auth-shell"><div class="auth-card">
    <div class="brand"><span class="brand-mark" aria-hidden="true"></span><span class="brand-name">${t('app.name')}</span></div>
    <main>
      <h1>${t('discover.invitation')}</h1>
      <p class="lead">${t('discover.invite_sign_in')}</p>
      <p class="meta">${t('discover.invite_elsewhere')}</p>
      <div class="row-actions">
        <a class="button" href="#/policy">${t('login.register')}</a>
        <a class="button primary" href="#/login">${t('login.submit')}</a>
      </div>
    </main>
  </div></div>`;
}

/** The invite opened before signing in, taken (once) so the signed-in client can show it. */
export function takePendingInvite() {
  const v = sessionStorage.getItem(PENDING_INVITE);
  if (v) sessionStorage.removeItem(PENDING_INVITE);
  return v;
}
