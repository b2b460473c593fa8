// Communities (小组): my feed, finding public communities, favourites, one community with its
// posts, composing a post (text, photo, voice or file — the purpose asked at the moment of use,
// as in chat — a visibility and, only when chosen, a place), comments with replies, and for
// moderators the members, requests and the moderation log.

import { html, useState, useEffect, useRef, Alert, Field, Dialog } from './ui.js';
import { t, formatDateTime } from './i18n.js';
import * as api from './api.js';
import { askPurpose, refusedText } from './purposes.js';
import { kindOf, useArrivingUrl } from './chat.js';
import { Icon } from './icons.js';

const VISIBILITIES = ['members', 'friends', 'public'];

/** The communities screen; `parts` is the address after #/communities/, split at `/`. */
export function CommunitiesScreen({ store, parts }) {
  const [mine, setMine] = useState(/** @type {any[]|null} */ (null));
  const [n, setN] = useState(0);
  const [creating, setCreating] = useState(false);
  useEffect(() => {
    api.call('GET', '/api/v1/communities/mine').then((r) => setMine(r.communities), () => setMine([]));
  }, [n]);
  const reload = () => setN(n + 1);
  const view = parts[0] || 'feed';
  const id = view === 'c' ? parts[1] : null;
  const here = id ? 'c/' + id : view;
  const link = (to, label) => html`<li><a href=${'#/communities/' + to} aria-current=${to === here ? 'page' : undefined}>${label}</a></li>`;
  return html`<div class="privacy-layout communities">
    <header class="privacy-head">
      <a class="icon-button" href="#/chats" aria-label=${t('common.back_to_chats')}><${Icon} name="back" /></a>
      <h1>${t('community.title')}</h1>
      <span class="spacer"></span>
      <button type="button" class="primary small" onClick=${() => setCreating(true)}><${Icon} name="plus" size=${16} /> ${t('community.create')}</button>
    </header>
    <div class="privacy-body">
      <nav class="privacy-nav" aria-label=${t('community.sections')}>
        <ul>
          ${link('feed', t('community.feed'))}
          ${link('browse', t('community.browse'))}
          ${link('favourites', t('community.favourites'))}
        </ul>
        <h2 class="nav-title">${t('community.mine')}</h2>
        <ul>
          ${mine && mine.length === 0 && html`<li class="muted nav-empty">${t('community.none_yet')}</li>`}
          ${(mine || []).map((c) => link('c/' + c.id, c.reachable === false ? html`${c.name} <span class="muted">(${t('community.unreachable')})</span>` : c.name))}
        </ul>
      </nav>
      <main class="privacy-main" id="main" tabindex="0">
        ${view === 'feed' && html`<${Feed} key="feed" store=${store} path="/api/v1/communities/feed" live="*" title=${t('community.feed')} empty=${t('community.feed_empty')} />`}
        ${view === 'favourites' && html`<${Feed} key="fav" store=${store} path="/api/v1/communities/favourites" title=${t('community.favourites')} empty=${t('community.favourites_empty')} />`}
        ${view === 'browse' && html`<${Browse} />`}
        ${id && html`<${Community} key=${id} store=${store} id=${id} onChange=${reload} />`}
      </main>
    </div>
    ${creating && html`<${CreateDialog} onClose=${() => setCreating(false)} onCreated=${(c) => { setCreating(false); reload(); location.hash = '#/communities/c/' + c.id; }} />`}
  </div>`;
}

function CreateDialog({ onClose, onCreated }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [visibility, setVisibility] = useState('public');
  const [error, setError] = useState(/** @type {any} */ (null));
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      onCreated(await api.call('POST', '/api/v1/communities', { name: name.trim(), description: description.trim(), visibility }));
    } catch (err) {
      setError(err);
    }
  };
  return html`<${Dialog} title=${t('community.create')} onClose=${onClose}>
    <form class="form" onSubmit=${submit}>
      <${Field} id="community-name" label=${t('community.name')} value=${name} onInput=${setName} required=${true} maxlength="40" />
      <div class="field">
        <label for="community-description">${t('community.description')}</label>
        <textarea id="community-description" rows="3" maxlength="500" value=${description} onInput=${(e) => setDescription(e.currentTarget.value)}></textarea>
      </div>
      <fieldset class="field">
        <legend class="label">${t('community.visibility')}</legend>
        ${['public', 'private'].map((v) => html`<label class="radio"><input type="radio" name="community-visibility" value=${v} checked=${visibility === v} onChange=${() => setVisibility(v)} /> ${t('community.visibility.' + v)}</label>`)}
        <p class="hint">${t('community.visibility_hint')}</p>
      </fieldset>
      <${Alert} error=${error} />
      <div class="row-actions"><button type="submit" class="primary" disabled=${!name.trim()}>${t('community.create')}</button></div>
    </form>
  <//>`;
}

/** A community of another node is named `<16 hex digits>@<host>` (issue 23). */
const REMOTE_ADDRESS = /^[0-9a-f]{16}@[a-z0-9.-]+(:[0-9]{1,5})?$/;

/** The host of a community address, or null for a community of this node. */
export function remoteHost(id) {
  const at = id.indexOf('@');
  return at < 0 ? null : id.slice(at + 1);
}

/** Opening a community of another node by its address. */
function OpenRemote() {
  const [address, setAddress] = useState('');
  const [error, setError] = useState(/** @type {string|null} */ (null));
  const open = (e) => {
    e.preventDefault();
    const a = address.trim().toLowerCase();
    if (!REMOTE_ADDRESS.test(a)) {
      setError(t('community.bad_address'));
      return;
    }
    setError(null);
    location.hash = '#/communities/c/' + a;
  };
  return html`<form class="inline-form" onSubmit=${open}>
    <${Field} id="community-address" label=${t('community.open_address')} value=${address} onInput=${setAddress} hint=${t('community.open_address_hint')} />
    <button type="submit" disabled=${!address.trim()}>${t('community.open_button')}</button>
    ${error && html`<p class="error" role="alert">${error}</p>`}
  </form>`;
}

function Browse() {
  const [q, setQ] = useState('');
  const [list, setList] = useState(/** @type {any[]|null} */ (null));
  const [error, setError] = useState(/** @type {any} */ (null));
  const search = async (e) => {
    if (e) e.preventDefault();
    setError(null);
    try {
      const path = '/api/v1/communities' + (q.trim() ? '?q=' + encodeURIComponent(q.trim()) : '');
      setList((await api.call('GET', path)).communities);
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => {
    search(null);
  }, []);
  return html`<${Suggested} />
  <section aria-labelledby="browse-title">
    <h2 id="browse-title">${t('community.browse')}</h2>
    <form class="inline-form" role="search" onSubmit=${search}>
      <${Field} id="community-search" label=${t('community.search')} value=${q} onInput=${setQ} type="search" />
      <button type="submit">${t('community.search_button')}</button>
    </form>
    <${OpenRemote} />
    <${Alert} error=${error} />
    ${list && list.length === 0 && html`<p class="empty">${t('community.nothing_found')}</p>`}
    <ul class="card-list">
      ${(list || []).map((c) => html`<li class="card"><div class="card-row">
        <div class="card-text"><p><a href=${'#/communities/c/' + c.id}><strong>${c.name}</strong></a></p>
          <p class="muted">${c.description}</p>
          <p class="meta">${t('community.members_n', { n: c.members })}${c.role ? ' · ' + t('community.role.' + c.role) : ''}</p></div>
      </div></li>`)}
    </ul>
  </section>`;
}

/**
 * Suggested communities: public ones I am not in, ranked by the node from what I joined,
 * favourited, opened and shared — only while I grant `personalisation` (otherwise the node
 * keeps none of it, and this says how to turn it on).
 */
function Suggested() {
  const [list, setList] = useState(/** @type {any[]|null} */ (null));
  const [personal, setPersonal] = useState(false);
  const [error, setError] = useState(/** @type {any} */ (null));
  useEffect(() => {
    (async () => {
      try {
        const c = await api.call('GET', '/api/v1/me/consents');
        setPersonal(c.consents.some((x) => x.purpose === 'personalisation' && x.granted));
        setList((await api.call('GET', '/api/v1/communities/suggested')).communities);
      } catch (err) {
        setError(err);
      }
    })();
  }, []);
  return html`<section aria-labelledby="suggested-title" class="suggested">
    <h2 id="suggested-title">${t('community.suggested')}</h2>
    <${Alert} error=${error} />
    ${list && !personal && html`<p class="meta">${t('community.suggested_off')} <a href="#/privacy/purposes">${t('community.suggested_turn_on')}</a></p>`}
    ${list && personal && list.length === 0 && html`<p class="meta">${t('community.suggested_none')}</p>`}
    ${list && list.length > 0 && html`<ul class="card-list" aria-labelledby="suggested-title">
      ${list.map((c) => html`<li class="card" key=${c.id}><div class="card-row">
        <div class="card-text"><p><a href=${'#/communities/c/' + c.id}><strong>${c.name}</strong></a></p>
          ${c.description && html`<p class="muted">${c.description}</p>`}
          <p class="meta">${t('community.members_n', { n: c.members })}</p></div>
      </div></li>`)}
    </ul>`}
  </section>`;
}

/** A post's key: its community and number (posts of different nodes share numbers). */
const keyOf = (/** @type {any} */ p) => p.community + '/' + p.id;
const same = (/** @type {any} */ a, /** @type {any} */ b) => keyOf(a) === keyOf(b);

/**
 * A page of posts from `path` (the feed across mine, one community's, or favourites), with
 * "more". `live` says which community events it follows: one community's id, `'*'` for all of
 * mine, or null (favourites change only by my own hand). A new post is merged in at the top
 * (the browser's scroll anchoring keeps what is being read in place); a new comment refreshes
 * its post, whose open comments reload themselves.
 */
function Feed({ store, path, title, empty, role = null, live = null }) {
  const [posts, setPosts] = useState(/** @type {any[]|null} */ (null));
  // The query of the next page: `cursor=…` across nodes (my feed), else `before=N`.
  const [next, setNext] = useState(/** @type {string|null} */ (null));
  const [error, setError] = useState(/** @type {any} */ (null));
  const seen = useRef(store.communitySeen);
  const load = async (more) => {
    try {
      const r = await api.call('GET', path + (more ? (path.includes('?') ? '&' : '?') + more : ''));
      setPosts((p) => (more ? [...(p || []), ...r.posts.filter((x) => !(p || []).some((y) => same(x, y)))] : r.posts));
      if (r.cursor !== undefined) setNext(r.cursor ? 'cursor=' + encodeURIComponent(r.cursor) : null);
      else setNext(r.next ? 'before=' + r.next : null);
    } catch (err) {
      setError(err);
    }
  };
  /** The first page again, with posts not shown yet put in front of the ones already shown. */
  const merge = async () => {
    try {
      const r = await api.call('GET', path);
      setPosts((list) => [...r.posts.filter((x) => !(list || []).some((y) => same(x, y))), ...(list || [])]);
    } catch (err) {
      setError(err);
    }
  };
  const refresh = async (community, id) => {
    try {
      const p = await api.call('GET', `/api/v1/communities/${community}/posts/${id}`);
      setPosts((list) => (list || []).map((x) => (same(x, p) ? { ...x, comments: p.comments } : x)));
    } catch {
      // Gone or no longer visible: the next load shows it as it is.
    }
  };
  useEffect(() => {
    load(null);
  }, [path]);
  useEffect(() => {
    const fresh = store.communitySince(seen.current);
    seen.current = store.communitySeen;
    if (!live || !posts) return;
    const mine = fresh.filter((e) => live === '*' || e.community === live);
    const shown = new Set(posts.map(keyOf));
    if (mine.some((e) => e.comment === null && !shown.has(e.community + '/' + e.post))) merge();
    const commented = new Set(mine.filter((e) => e.comment !== null && shown.has(e.community + '/' + e.post)).map((e) => e.community + '/' + e.post));
    for (const k of commented) {
      const [community, id] = k.split('/');
      refresh(community, Number(id));
    }
  }, [store.communitySeen]);
  const replace = (p) => setPosts((list) => (list || []).map((x) => (same(x, p) ? p : x)));
  const remove = (p) => setPosts((list) => (list || []).filter((x) => !same(x, p)));
  return html`<section aria-label=${title}>
    ${title && html`<h2>${title}</h2>`}
    <${Alert} error=${error} />
    ${posts && posts.length === 0 && html`<p class="empty">${empty}</p>`}
    <ul class="post-list">${(posts || []).map((p) => html`<li key=${keyOf(p)}><${Post} store=${store} post=${p} role=${role} onChange=${replace} onRemove=${remove} /></li>`)}</ul>
    ${next && html`<button type="button" onClick=${() => load(next)}>${t('community.more')}</button>`}
  </section>`;
}

function Community({ store, id, onChange }) {
  const [c, setC] = useState(/** @type {any} */ (null));
  const [error, setError] = useState(/** @type {any} */ (null));
  const [dialog, setDialog] = useState(/** @type {string|null} */ (null));
  const [n, setN] = useState(0);
  useEffect(() => {
    api.call('GET', `/api/v1/communities/${id}`).then(setC, setError);
  }, [id, n]);
  const act = async (what) => {
    setError(null);
    try {
      await api.call('POST', `/api/v1/communities/${id}/${what}`);
      setN(n + 1);
      onChange();
    } catch (err) {
      setError(err);
    }
  };
  if (error && !c) return html`<${Alert} error=${error} />`;
  if (!c) return html`<p class="muted">${t('common.wait')}</p>`;
  // A community of another node is read and written through its host — its members, its log
  // and a moderator's actions too — and the host tells this node of new posts and comments
  // (live events); one's files go to it by reference and it fetches them from here; a post
  // there shows no place.
  const host = remoteHost(id);
  const moderator = c.role === 'owner' || c.role === 'moderator';
  const readable = c.visibility === 'public' || c.role;
  return html`<section aria-labelledby="community-title">
    <div class="community-head card">
      <h2 id="community-title">${c.name}</h2>
      ${c.description && html`<p>${c.description}</p>`}
      ${host && html`<p class="hint">${t('community.remote_hosted', { host })}</p>`}
      <p class="meta">${t('community.visibility.' + c.visibility)} · ${t('community.members_n', { n: c.members })}${c.role ? ' · ' + t('community.role.' + c.role) : ''}</p>
      <div class="row-actions">
        ${!c.role && !c.pending && html`<button type="button" class="primary" onClick=${() => act('join')}>${c.visibility === 'public' ? t('community.join') : t('community.ask_to_join')}</button>`}
        ${c.pending === 'invited' && html`<button type="button" class="primary" onClick=${() => act('join')}>${t('community.accept_invitation')}</button>`}
        ${c.pending === 'asked' && html`<span class="muted">${t('community.asked')}</span>`}
        ${c.role && html`<button type="button" onClick=${() => setDialog('members')}>${t('community.members')}</button>`}
        ${moderator && html`<button type="button" onClick=${() => setDialog('log')}>${t('community.log')}</button>`}
        ${(c.role === 'member' || c.role === 'moderator' || c.pending === 'asked') && html`<button type="button" class="ghost" onClick=${() => act('leave')}>${c.pending === 'asked' ? t('community.withdraw') : t('community.leave')}</button>`}
      </div>
      <${Alert} error=${error} />
    </div>
    ${c.role && html`<${Compose} community=${id} remote=${!!host} onPosted=${() => setN(n + 1)} />`}
    ${readable && html`<${Feed} key=${'c' + n} store=${store} path=${`/api/v1/communities/${id}/posts`} live=${c.role ? id : null} title="" role=${c.role} empty=${t('community.no_posts')} />`}
    ${dialog === 'members' && html`<${MembersDialog} community=${c} onClose=${() => setDialog(null)} />`}
    ${dialog === 'log' && html`<${LogDialog} community=${c} onClose=${() => setDialog(null)} />`}
  </section>`;
}

/** Composing a post: text, attachments (each asking its purpose first), visibility, place. */
function Compose({ community, remote = false, onPosted }) {
  const [text, setText] = useState('');
  const [media, setMedia] = useState(/** @type {any[]} */ ([]));
  const [visibility, setVisibility] = useState('members');
  const [showPlace, setShowPlace] = useState(false);
  const [place, setPlace] = useState('');
  const [ask, setAsk] = useState(/** @type {any} */ (null));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {any} */ (null));
  const fileInput = useRef(/** @type {HTMLInputElement|null} */ (null));
  const attach = async (file) => {
    setError(null);
    const { kind, purpose } = kindOf(file);
    if (purpose && !(await askPurpose(purpose, setAsk))) {
      setError(refusedText(purpose));
      return;
    }
    setBusy(true);
    try {
      const r = await api.upload(file, () => {});
      const item = kind === 'file' ? { type: kind, media_id: r.media_id, name: file.name || 'file' } : { type: kind, media_id: r.media_id };
      setMedia((m) => [...m, { ...item, label: file.name || t('chat.kind.' + kind) }]);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const togglePlace = async (on) => {
    setError(null);
    if (on && !(await askPurpose('precise_location', setAsk))) {
      setError(refusedText('precise_location'));
      return;
    }
    setShowPlace(on);
  };
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    /** @type {any} */
    const body = { text: text.trim(), visibility, media: media.map(({ label, ...m }) => m) };
    if (showPlace && place.trim()) body.place = place.trim();
    try {
      await api.call('POST', `/api/v1/communities/${community}/posts`, body);
      setText('');
      setMedia([]);
      setPlace('');
      setShowPlace(false);
      onPosted();
    } catch (err) {
      setError(err);
    }
  };
  return html`<form class="card form compose" onSubmit=${submit}>
    <div class="field">
      <label for="post-text">${t('community.compose')}</label>
      <textarea id="post-text" rows="3" maxlength="10000" value=${text} placeholder=${t('community.compose_placeholder')} onInput=${(e) => setText(e.currentTarget.value)}></textarea>
    </div>
    ${media.length > 0 && html`<ul class="attached">${media.map((m, i) => html`<li>
      <${Icon} name="file" size=${16} /> ${m.label}
      <button type="button" class="small ghost" onClick=${() => setMedia(media.filter((_, j) => j !== i))}>${t('community.remove_attachment')}</button></li>`)}</ul>`}
    ${remote && html`<p class="hint">${t('community.remote_no_place')}</p>`}
    <div class="compose-row">
      <button type="button" class="icon-button" aria-label=${t('composer.attach')} title=${t('composer.attach')} disabled=${busy || media.length >= 9}
        onClick=${() => fileInput.current && fileInput.current.click()}><${Icon} name="attach" /></button>
      <input type="file" ref=${fileInput} class="visually-hidden" tabindex="-1" aria-hidden="true"
        onChange=${(e) => { const f = e.currentTarget.files && e.currentTarget.files[0]; e.currentTarget.value = ''; if (f) attach(f); }} />
      <label class="inline-label">${t('community.post_visibility')}
        <select value=${visibility} onChange=${(e) => setVisibility(e.currentTarget.value)}>
          ${VISIBILITIES.map((v) => html`<option value=${v}>${t('community.post_visibility.' + v)}</option>`)}
        </select></label>
      ${!remote && html`<label class="inline-label"><input type="checkbox" checked=${showPlace} onChange=${(e) => togglePlace(e.currentTarget.checked)} /> ${t('community.show_place')}</label>`}
      <span class="spacer"></span>
      <button type="submit" class="primary" disabled=${busy || (!text.trim() && media.length === 0)}>${t('community.publish')}</button>
    </div>
    ${showPlace && html`<${Field} id="post-place" label=${t('community.place')} value=${place} onInput=${setPlace} maxlength="60" hint=${t('community.place_hint')} />`}
    ${busy && html`<p class="muted" role="status">${t('community.uploading')}</p>`}
    <${Alert} error=${error} />
    ${ask && ask.view}
  </form>`;
}

/** A media item of a post, fetched with the token. A file a member of another node posted
 * may still be on its way to the community's host: shown as arriving, and asked for again by
 * itself until it is there. */
function PostMedia({ post, m }) {
  const { url, failed, arriving } = useArrivingUrl(
    () => api.postMediaUrl(post.community, post.id, m.media_id),
    `${post.community}/${post.id}/${m.media_id}`,
  );
  const name = m.name || t('chat.kind.' + m.type);
  if (failed) return html`<p class="muted">${t('chat.media_failed')}</p>`;
  if (arriving) return html`<p class="muted media-arriving" role="status">${t('community.media_arriving', { name })}</p>`;
  if (!url) return html`<p class="muted">${t('chat.loading')}</p>`;
  if (m.type === 'image') return html`<img class="post-image" src=${url} alt=${t('community.photo')} />`;
  if (m.type === 'voice') return html`<audio controls src=${url} aria-label=${name}></audio>`;
  if (m.type === 'video') return html`<video controls src=${url} class="media-video" aria-label=${name}></video>`;
  return html`<a class="file-link" href=${url} download=${name}><${Icon} name="file" /> ${name}</a>`;
}

function Post({ store, post, role, onChange, onRemove }) {
  const [open, setOpen] = useState(false);
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(post.text);
  const [error, setError] = useState(/** @type {any} */ (null));
  // In a community of another node too: the edit or deletion goes through its host.
  const mine = store.me && post.author === store.me.user;
  const base = `/api/v1/communities/${post.community}/posts/${post.id}`;
  const run = async (f) => {
    setError(null);
    try {
      await f();
    } catch (err) {
      setError(err);
    }
  };
  const favourite = () => run(async () => {
    await api.call(post.favourite ? 'DELETE' : 'PUT', base + '/favourite');
    onChange({ ...post, favourite: !post.favourite });
  });
  const save = (e) => {
    e.preventDefault();
    run(async () => {
      onChange(await api.call('PATCH', base, { text: draft.trim() }));
      setEditing(false);
    });
  };
  const remove = () => run(async () => {
    await api.call('DELETE', base);
    onRemove(post);
  });
  const [shared, setShared] = useState(false);
  const share = () => run(async () => {
    const link = location.origin + location.pathname + '#/communities/c/' + post.community;
    // The clipboard may be refused (no permission): the link is still shared by hand.
    try {
      await navigator.clipboard.writeText(link);
    } catch {
      // nothing to undo
    }
    await api.call('POST', base + '/share');
    setShared(true);
  });
  return html`<article class="card post" aria-label=${t('community.post_by', { author: post.author })}>
    <header class="post-head"><strong>${post.author}</strong>
      <span class="meta"><time datetime=${post.created}>${formatDateTime(post.created)}</time> · ${t('community.post_visibility.' + post.visibility)}${post.edited ? ' · ' + t('community.edited') : ''}</span></header>
    ${editing
      ? html`<form class="form" onSubmit=${save}>
          <label for=${'edit-' + post.id} class="visually-hidden">${t('community.edit')}</label>
          <textarea id=${'edit-' + post.id} rows="3" value=${draft} onInput=${(e) => setDraft(e.currentTarget.value)}></textarea>
          <div class="row-actions"><button type="button" onClick=${() => setEditing(false)}>${t('community.cancel')}</button><button type="submit" class="primary">${t('common.save')}</button></div>
        </form>`
      : post.text && html`<p class="post-text">${post.text}</p>`}
    ${post.media.length > 0 && html`<div class="post-media">${post.media.map((m) => html`<${PostMedia} key=${m.media_id} post=${post} m=${m} />`)}</div>`}
    ${post.place && html`<p class="meta">${t('community.at_place', { place: post.place })}</p>`}
    <div class="post-actions">
      <button type="button" class="small ghost" aria-pressed=${post.favourite} onClick=${favourite}>${post.favourite ? t('community.unfavourite') : t('community.favourite')}</button>
      <button type="button" class="small ghost" aria-expanded=${open} onClick=${() => setOpen(!open)}>${t('community.comments_n', { n: post.comments })}</button>
      <button type="button" class="small ghost" onClick=${share}>${t('community.share')}</button>
      ${shared && html`<span class="meta" role="status">${t('community.shared')}</span>`}
      ${mine && !editing && html`<button type="button" class="small ghost" onClick=${() => { setDraft(post.text); setEditing(true); }}>${t('community.edit')}</button>`}
      ${(mine || role === 'owner' || role === 'moderator') && html`<button type="button" class="small ghost danger" onClick=${remove}>${mine ? t('community.delete') : t('community.remove')}</button>`}
    </div>
    <${Alert} error=${error} />
    ${open && html`<${Comments} store=${store} post=${post} onCount=${(n) => onChange({ ...post, comments: n })} />`}
  </article>`;
}

function Comments({ store, post, onCount }) {
  const [list, setList] = useState(/** @type {any[]|null} */ (null));
  const [text, setText] = useState('');
  const [parent, setParent] = useState(/** @type {any} */ (null));
  const [error, setError] = useState(/** @type {any} */ (null));
  const base = `/api/v1/communities/${post.community}/posts/${post.id}/comments`;
  const load = async () => {
    try {
      const all = [];
      let after = 0;
      for (let i = 0; i < 10; i += 1) {
        const r = await api.call('GET', `${base}?limit=100&after=${after}`);
        all.push(...r.comments);
        if (!r.next) break;
        after = r.next;
      }
      setList(all);
      onCount(all.length);
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => {
    load();
  }, [post.id]);
  // A comment by anyone (another browser of mine included) arrives as an event for its post.
  const seen = useRef(store.communitySeen);
  useEffect(() => {
    const fresh = store.communitySince(seen.current);
    seen.current = store.communitySeen;
    if (fresh.some((e) => e.comment !== null && e.post === post.id && e.community === post.community)) load();
  }, [store.communitySeen]);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      await api.call('POST', base, parent ? { text: text.trim(), parent: parent.id } : { text: text.trim() });
      setText('');
      setParent(null);
      await load();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async (c) => {
    setError(null);
    try {
      await api.call('DELETE', `${base}/${c.id}`);
      await load();
    } catch (err) {
      setError(err);
    }
  };
  const me = store.me && store.me.user;
  const top = (list || []).filter((c) => !c.parent);
  const one = (c) => html`<li key=${c.id} class=${c.parent ? 'comment reply' : 'comment'}>
    <p><strong>${c.author}</strong> <span class="meta">${formatDateTime(c.created)}</span></p>
    ${c.quote && html`<blockquote class="quote">${c.quote.text === null ? t('community.quote_gone') : c.quote.text}</blockquote>`}
    <p class="comment-text">${c.text}</p>
    <div class="post-actions">
      ${!c.parent && html`<button type="button" class="small ghost" onClick=${() => setParent(c)}>${t('community.reply')}</button>`}
      ${c.author === me && html`<button type="button" class="small ghost danger" onClick=${() => remove(c)}>${t('community.delete')}</button>`}
    </div>
  </li>`;
  return html`<section class="comments" aria-label=${t('community.comments')}>
    <ul class="comment-list">${top.map((c) => html`${one(c)}${(list || []).filter((r) => r.parent === c.id).map(one)}`)}</ul>
    <form class="inline-form" onSubmit=${submit}>
      <${Field} id=${'comment-' + post.id} label=${parent ? t('community.reply_to', { author: parent.author }) : t('community.comment')} value=${text} onInput=${setText} maxlength="2000" />
      <button type="submit" class="primary" disabled=${!text.trim()}>${t('community.send_comment')}</button>
    </form>
    ${parent && html`<button type="button" class="small ghost" onClick=${() => setParent(null)}>${t('community.cancel_reply')}</button>`}
    <${Alert} error=${error} />
  </section>`;
}

function MembersDialog({ community, onClose }) {
  const [rows, setRows] = useState(/** @type {any[]|null} */ (null));
  const [address, setAddress] = useState('');
  const [error, setError] = useState(/** @type {any} */ (null));
  const [n, setN] = useState(0);
  const id = community.id;
  const moderator = community.role === 'owner' || community.role === 'moderator';
  useEffect(() => {
    api.call('GET', `/api/v1/communities/${id}/members`).then((r) => setRows(r.members), setError);
  }, [n]);
  const act = async (who, action) => {
    setError(null);
    try {
      await api.call('POST', `/api/v1/communities/${id}/moderation`, { address: who, action });
      setN(n + 1);
    } catch (err) {
      setError(err);
    }
  };
  const invite = (e) => {
    e.preventDefault();
    act(address.trim(), 'admit');
    setAddress('');
  };
  const button = (who, action) => html`<button type="button" class="small" onClick=${() => act(who, action)}>${t('community.action.' + action)}</button>`;
  return html`<${Dialog} title=${t('community.members')} onClose=${onClose} wide=${true}>
    ${moderator && html`<form class="inline-form" onSubmit=${invite}>
      <${Field} id="invite-address" label=${t('community.invite')} value=${address} onInput=${setAddress} hint=${t('chat.address_hint')} />
      <button type="submit" disabled=${!address.trim()}>${t('community.action.admit')}</button>
    </form>`}
    <${Alert} error=${error} />
    <ul class="member-list">${(rows || []).map((m) => html`<li>
      <span class="member-name"><strong>${m.address}</strong>
        <span class="role">${m.status === 'member' ? t('community.role.' + m.role) : t('community.status.' + m.status)}</span></span>
      ${moderator && html`<span class="member-actions">
        ${m.status === 'asked' && html`${button(m.address, 'admit')}${button(m.address, 'reject')}`}
        ${m.status === 'invited' && button(m.address, 'reject')}
        ${m.status === 'banned' && button(m.address, 'unban')}
        ${m.status === 'member' && m.role === 'member' && html`${button(m.address, 'remove')}${button(m.address, 'ban')}`}
        ${community.role === 'owner' && m.status === 'member' && m.role === 'member' && button(m.address, 'moderator')}
        ${community.role === 'owner' && m.role === 'moderator' && html`${button(m.address, 'member')}${button(m.address, 'ban')}`}
      </span>`}
    </li>`)}</ul>
  <//>`;
}

function LogDialog({ community, onClose }) {
  const [entries, setEntries] = useState(/** @type {any[]|null} */ (null));
  const [error, setError] = useState(/** @type {any} */ (null));
  useEffect(() => {
    api.call('GET', `/api/v1/communities/${community.id}/log?limit=100`).then((r) => setEntries(r.entries), setError);
  }, []);
  const who = (a) => a || t('community.erased_user');
  return html`<${Dialog} title=${t('community.log')} onClose=${onClose} wide=${true}>
    <${Alert} error=${error} />
    ${entries && entries.length === 0 && html`<p class="empty">${t('community.log_empty')}</p>`}
    <ol class="card-list">${(entries || []).map((e) => html`<li class="card">
      <p><strong>${who(e.actor)}</strong> · ${t('community.logged.' + e.action)}${e.target ? ' · ' + e.target : ''}${e.post ? ' · #' + e.post : ''}${e.role ? ' · ' + t('community.role.' + e.role) : ''}</p>
      <p class="meta">${formatDateTime(e.at)}</p>
    </li>`)}</ol>
  <//>`;
}
