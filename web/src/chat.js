// The chat screen: the conversation list, one conversation (live, paged history, failed sends
// with retry, recall, delete from my view, drafts), attachments with the purpose asked for at
// the moment of use, and starting direct chats and groups.

import { html, useState, useEffect, useRef, useLayoutEffect, useStore, Avatar, Dialog, Alert, Field, errorText, Component } from './ui.js';
import { t, formatTime, formatClock, formatDay, dayOf } from './i18n.js';
import * as api from './api.js';
import { ApiError } from './api.js';
import { GroupDialog } from './group.js';
import { askPurpose, refusedText } from './purposes.js';
import { LanguageSwitch, NotificationToggle } from './settings.js';
import { Icon } from './icons.js';
import { Heights, rowsFor, tailRows, covers, OVERSCAN } from './windowing.js';

/** What a conversation is called in the list and its header. */
export function title(c) {
  if (!c) return '';
  if (c.kind === 'direct') return c.with || '';
  return c.name || t('chat.unnamed_group');
}

function preview(m) {
  if (!m) return t('chat.no_messages');
  if (m.recalled) return t('chat.recalled');
  const b = m.body || {};
  if (b.type === 'text') return b.text;
  return t('chat.kind.' + b.type);
}

export function ChatScreen({ store, active, go, onLanguage }) {
  useStore(store);
  const [dialog, setDialog] = useState(/** @type {string|null} */ (null));
  useEffect(() => {
    if (active && store.active !== active) store.open(active);
    if (!active && store.active) {
      store.active = null;
      store.changed();
    }
  }, [active]);
  const conv = store.conversations.find((c) => c.id === active);
  return html`<div class=${'chat-layout' + (active ? ' has-active' : '')}>
    <aside class="sidebar" aria-label=${t('chat.conversations')}>
      <header class="sidebar-head">
        <${Avatar} name=${store.me && store.me.nickname} media=${store.me && store.me.avatar} size=${36} />
        <div class="me">
          <strong>${store.me && store.me.nickname}</strong>
          <small>${store.me && store.me.user}</small>
        </div>
        <a class="icon-button" href="#/search" aria-label=${t('search.open')} title=${t('search.open')}><${Icon} name="search" /></a>
        <button type="button" class="icon-button" onClick=${() => setDialog('new')} aria-label=${t('chat.new')} title=${t('chat.new')}>${html`<${Icon} name="plus" />`}</button>
        <button type="button" class="icon-button" onClick=${() => setDialog('settings')} aria-label=${t('settings.title')} title=${t('settings.title')}>${html`<${Icon} name="settings" />`}</button>
      </header>
      ${store.connection !== 'online' && html`<p class="banner" role="status">${t('chat.connection.' + store.connection)}</p>`}
      <nav class="conv-list" aria-label=${t('chat.conversations')}>
        ${store.conversations.length === 0 && html`<div class="empty-list"><p>${t('chat.empty_list')}</p>
          <button class="primary" type="button" onClick=${() => setDialog('new')}>${t('chat.new')}</button></div>`}
        <ul>
          ${store.conversations.map((c) => {
            const n = store.unread(c.id);
            const last = store.last.get(c.id);
            return html`<li key=${c.id}>
              <a href=${'#/chats/' + c.id} class=${'conv-row' + (c.id === active ? ' active' : '')}
                aria-current=${c.id === active ? 'page' : undefined}>
                <${Avatar} name=${title(c)} />
                <span class="conv-main">
                  <span class="conv-top"><span class="conv-name">${title(c)}</span>
                    <time class="conv-time">${last ? formatTime(last.ts) : ''}</time></span>
                  <span class="conv-bottom"><span class="conv-preview">${preview(last)}</span>
                    ${n > 0 && html`<span class="badge" aria-label=${t('chat.unread', { n })}>${n > 99 ? '99+' : n}</span>`}</span>
                </span>
              </a>
            </li>`;
          })}
        </ul>
      </nav>
      <footer class="sidebar-foot">
        <a class="button ghost" href="#/friends"><${Icon} name="people" /> ${t('friends.title')}</a>
        <a class="button ghost" href="#/discover"><${Icon} name="discover" /> ${t('discover.title')}</a>
        <a class="button ghost" href="#/communities"><${Icon} name="community" /> ${t('community.title')}</a>
        <a class="button ghost" href="#/privacy"><${Icon} name="shield" /> ${t('privacy.title')}</a>
      </footer>
    </aside>
    <main class="conversation-pane" id="main">
      ${conv
        ? html`<${Conversation} key=${conv.id} store=${store} conv=${conv} go=${go} />`
        : html`<div class="placeholder"><div class="placeholder-mark" aria-hidden="true"></div><h1>${t('chat.pick_title')}</h1><p>${t('chat.pick')}</p></div>`}
    </main>
    <div class="visually-hidden" aria-live="polite" role="status">${store.announcement}</div>
    ${dialog === 'new' && html`<${NewChatDialog} store=${store} go=${go} onClose=${() => setDialog(null)} />`}
    ${dialog === 'settings' && html`<${SettingsDialog} store=${store} go=${go} onLanguage=${onLanguage} onClose=${() => setDialog(null)} />`}
  </div>`;
}

function SettingsDialog({ store, go, onLanguage, onClose }) {
  return html`<${Dialog} title=${t('settings.title')} onClose=${onClose}>
    <div class="form">
      <div class="field"><span class="label">${t('settings.language')}</span><${LanguageSwitch} onChange=${onLanguage} /></div>
      <${NotificationToggle} store=${store} />
      <button type="button" class="danger" onClick=${async () => {
        onClose();
        await store.logout();
        go('#/login');
      }}>${t('settings.sign_out')}</button>
    </div>
  <//>`;
}

function NewChatDialog({ store, go, onClose }) {
  const [tab, setTab] = useState('direct');
  const [address, setAddress] = useState('');
  const [name, setName] = useState('');
  const [members, setMembers] = useState('');
  const [isPublic, setPublic] = useState(false);
  const [error, setError] = useState(/** @type {any} */ (null));
  const grantAndRetry = async () => {
    try {
      await api.call('PUT', '/api/v1/me/consents/cross_border_transfer', { granted: true });
    } catch (err) {
      setError(err);
      return;
    }
    await submit(null);
  };
  // Only the caller's own missing consent can be granted here; the other person's cannot.
  const cross = error instanceof ApiError && error.status === 451 && error.code === 'residency';
  const submit = async (e) => {
    if (e) e.preventDefault();
    setError(null);
    try {
      const c =
        tab === 'direct'
          ? await store.startDirect(address.trim())
          : await store.createGroup(name.trim(), members.split(/[\s,，]+/).filter(Boolean), isPublic);
      onClose();
      go('#/chats/' + c.id);
    } catch (err) {
      setError(err);
    }
  };
  return html`<${Dialog} title=${t('chat.new')} onClose=${onClose}>
    <div class="tabs" role="tablist">
      <button type="button" role="tab" aria-selected=${tab === 'direct'} onClick=${() => setTab('direct')}>${t('chat.new_direct')}</button>
      <button type="button" role="tab" aria-selected=${tab === 'group'} onClick=${() => setTab('group')}>${t('chat.new_group')}</button>
    </div>
    <form class="form" onSubmit=${submit}>
      ${tab === 'direct'
        ? html`<${Field} id="address" label=${t('chat.address')} value=${address} onInput=${setAddress} hint=${t('chat.address_hint')} required />`
        : html`<${Field} id="group-name" label=${t('group.name')} value=${name} onInput=${setName} required />
          <${Field} id="group-members" label=${t('group.members_to_add')} value=${members} onInput=${setMembers} hint=${t('group.members_hint')} />
          <label class="check"><input type="checkbox" checked=${isPublic} onChange=${(e) => setPublic(e.currentTarget.checked)} />
            <span>${t('group.public')}<br /><small>${t('group.public_hint')}</small></span></label>`}
      ${cross
        ? html`<div class="cross-border" role="alert"><p>${t('chat.cross_border_explained')}</p>
            <button type="button" class="primary" onClick=${grantAndRetry}>${t('chat.grant_cross_border_start')}</button></div>`
        : html`<${Alert} error=${error} />`}
      <button class="primary wide" type="submit">${tab === 'direct' ? t('chat.start') : t('group.create')}</button>
    </form>
  <//>`;
}

function Conversation({ store, conv, go }) {
  const [showGroup, setShowGroup] = useState(false);
  const [dragging, setDragging] = useState(false);
  const composer = useRef(/** @type {any} */ (null));
  const details = store.details.get(conv.id);
  const subtitle =
    conv.kind === 'group' ? t('group.member_count', { n: conv.member_count || (details && details.members ? details.members.length : 0) }) : conv.with;
  const onDrop = (e) => {
    e.preventDefault();
    setDragging(false);
    const files = e.dataTransfer && e.dataTransfer.files;
    if (files && files.length && composer.current) composer.current.attach(files[0]);
  };
  return html`<section class="conversation" aria-label=${title(conv)}
      onDragOver=${(e) => { e.preventDefault(); setDragging(true); }}
      onDragLeave=${() => setDragging(false)} onDrop=${onDrop}>
    <header class="conv-head">
      <a class="icon-button back" href="#/chats" aria-label=${t('common.back')}>${html`<${Icon} name="back" />`}</a>
      <${Avatar} name=${title(conv)} size=${36} />
      <div class="conv-title"><h1>${title(conv)}</h1><small>${subtitle}</small></div>
      ${conv.kind === 'group' && html`<button type="button" class="button ghost" onClick=${() => setShowGroup(true)}>${t('group.manage')}</button>`}
    </header>
    <${MessageList} store=${store} conv=${conv} />
    <${Composer} composerRef=${composer} store=${store} conv=${conv} />
    ${dragging && html`<div class="drop-hint" aria-hidden="true">${t('composer.drop')}</div>`}
    ${showGroup && html`<${GroupDialog} store=${store} conv=${conv} go=${go} onClose=${() => setShowGroup(false)} />`}
  </section>`;
}

/** The space between two rows of the message list (`.messages` gap), in pixels. */
const ROW_GAP = 6;

/**
 * The messages of a conversation, windowed: only the rows near the visible part are drawn
 * (with their day separators), the rest kept as space above and below, so a history of ten
 * thousand messages scrolls as lightly as one of fifty. Older pages load when the top is
 * reached; the view stays where it was when they come in, and follows new ones at the end.
 */
function MessageList({ store, conv }) {
  const h = store.history.get(conv.id);
  // A send whose own event already came in is shown once, as the stored message.
  const out = (store.outgoing.get(conv.id) || []).filter((o) => !(o.echo && o.state === 'sending'));
  const box = useRef(/** @type {HTMLElement|null} */ (null));
  const spacer = useRef(/** @type {HTMLElement|null} */ (null));
  const heights = useRef(new Heights()).current;
  const anchor = useRef({ height: 0, top: 0, atBottom: true, first: 0 });
  /** The first and last seq drawn while not following the end; null when following it. */
  const [shown, setShown] = useState(/** @type {{first: number, last: number}|null} */ (null));
  const items = h ? h.items : [];
  const keys = items.map((m) => m.seq);
  const a = anchor.current;
  const viewport = box.current ? box.current.clientHeight : 800;
  let rows;
  if (a.atBottom || !shown) rows = tailRows(keys, heights, viewport);
  else {
    let start = keys.findIndex((k) => k >= shown.first);
    if (start < 0) start = keys.length;
    let end = start;
    while (end < keys.length && keys[end] <= shown.last) end++;
    let before = 0;
    for (let i = 0; i < start; i++) before += heights.get(keys[i]);
    let after = 0;
    for (let i = end; i < keys.length; i++) after += heights.get(keys[i]);
    rows = { start, end, before, after };
  }
  // Measure what was drawn; keep the view where it was when older messages come in above,
  // and follow new ones at the end.
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    for (const row of /** @type {NodeListOf<HTMLElement>} */ (el.querySelectorAll(':scope > .row'))) {
      heights.set(Number(row.dataset.seq), row.offsetHeight + ROW_GAP);
    }
    const first = keys.length ? keys[0] : 0;
    if (a.first && first < a.first) el.scrollTop = el.scrollHeight - a.height + a.top;
    else if (a.atBottom) el.scrollTop = el.scrollHeight;
    a.first = first;
  });
  const onScroll = () => {
    const el = box.current;
    if (!el) return;
    a.height = el.scrollHeight;
    a.top = el.scrollTop;
    const wasAtBottom = a.atBottom;
    a.atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 200 && h && h.hasMore && !h.loading) {
      store.loadOlder(conv.id);
    }
    if (a.atBottom) {
      if (!wasAtBottom || shown) setShown(null);
      return;
    }
    // Redraw only when the spare rows drawn beyond the visible part run out.
    const top = el.scrollTop - (spacer.current ? spacer.current.offsetTop : 0);
    const drawn = keys.length && rows.end > rows.start ? { first: keys[rows.start], last: keys[rows.end - 1] } : null;
    if (wasAtBottom || !covers(keys, drawn, rowsFor(keys, heights, top, el.clientHeight, OVERSCAN / 2))) {
      const want = rowsFor(keys, heights, top, el.clientHeight);
      if (want.end > want.start) setShown({ first: keys[want.start], last: keys[want.end - 1] });
    }
  };
  const drawn = [];
  for (let i = rows.start; i < rows.end; i++) {
    const m = items[i];
    const day = dayOf(m.ts);
    const sep = i === 0 || dayOf(items[i - 1].ts) !== day ? html`<p class="day">${formatDay(m.ts)}</p>` : null;
    drawn.push(html`<div class="row" key=${m.seq} data-seq=${m.seq}>${sep}<${Bubble} store=${store} conv=${conv} m=${m} /></div>`);
  }
  return html`<div class="messages windowed" ref=${box} onScroll=${onScroll} role="log" aria-label=${t('chat.messages')} tabindex="0">
    ${h && h.loading && html`<p class="loading">${t('chat.loading')}</p>`}
    ${h && h.loaded && !h.hasMore && html`<p class="history-start">${t('chat.history_start')}</p>`}
    <div class="spacer" ref=${spacer} aria-hidden="true" style=${{ height: rows.before + 'px' }}></div>
    ${drawn}
    <div class="spacer" aria-hidden="true" style=${{ height: rows.after + 'px' }}></div>
    ${out.map((o) => html`<${Outgoing} key=${o.txn} store=${store} conv=${conv} o=${o} />`)}
  </div>`;
}

/**
 * One stored message. A class so that it redraws only when its message (replaced, never
 * changed in place) or its own menu changes: a long history stays cheap to redraw.
 */
class Bubble extends Component {
  constructor(props) {
    super(props);
    this.state = { menu: false, error: null };
  }

  shouldComponentUpdate(next, state) {
    return next.m !== this.props.m || next.conv !== this.props.conv || state !== this.state;
  }

  render({ store, conv, m }, { menu, error }) {
    const mine = m.sender === store.me.user;
    const act = (fn) => async () => {
      this.setState({ menu: false });
      try {
        await fn();
      } catch (e) {
        this.setState({ error: e });
      }
    };
    return html`<div class=${'msg' + (mine ? ' mine' : '')} data-seq=${m.seq}>
      ${!mine && conv.kind === 'group' && html`<span class="sender">${m.sender}</span>`}
      <div class="bubble-row">
        <div class=${'bubble' + (m.recalled ? ' recalled' : '')}>
          ${m.recalled ? t('chat.recalled') : html`<${Body} body=${m.body} />`}
          <time class="msg-time">${formatClock(m.ts)}</time>
        </div>
        ${!m.recalled && html`<button type="button" class="icon-button msg-more" aria-haspopup="menu" aria-expanded=${menu}
          aria-label=${t('chat.message_actions')} onClick=${() => this.setState({ menu: !menu })}><${Icon} name="more" /></button>`}
      </div>
      ${menu && html`<div class="msg-menu" role="menu">
        ${mine && html`<button role="menuitem" type="button" onClick=${act(() => store.recall(conv.id, m.seq))}>${t('chat.recall')}</button>`}
        <button role="menuitem" type="button" onClick=${act(() => store.hide(conv.id, m.seq))}>${t('chat.delete_for_me')}</button>
      </div>`}
      <${Alert} error=${error} />
    </div>`;
  }
}

/** A message body: text, or a media file fetched with the token. */
function Body({ body }) {
  if (!body) return null;
  if (body.type === 'text') return html`<p class="text">${body.text}</p>`;
  return html`<${Media} body=${body} />`;
}

/** How long to wait before asking again for media still arriving: the node's Retry-After,
 * kept between 1 and 30 seconds. */
function arrivingWait(e) {
  return Math.min(Math.max(e.retryAfter || 2, 1), 30) * 1000;
}

/**
 * The object URL of a file `load()` fetches with the token (revoked when done). A file from
 * another node may still be on its way (503 `media_arriving`): then `arriving` is true and it
 * is asked for again by itself, after the node's Retry-After, until it is there.
 * @param {() => Promise<string>} load
 * @param {string} key what is loaded: a change loads again
 */
export function useArrivingUrl(load, key) {
  const [url, setUrl] = useState(/** @type {string|null} */ (null));
  const [failed, setFailed] = useState(false);
  const [arriving, setArriving] = useState(false);
  useEffect(() => {
    let u = null;
    let live = true;
    let timer = 0;
    const attempt = () =>
      load().then(
        (x) => {
          u = x;
          if (!live) return;
          setArriving(false);
          setUrl(x);
        },
        (e) => {
          if (!live) return;
          if (e instanceof ApiError && e.status === 503 && e.code === 'media_arriving') {
            setArriving(true);
            timer = window.setTimeout(attempt, arrivingWait(e));
          } else setFailed(true);
        },
      );
    attempt();
    return () => {
      live = false;
      window.clearTimeout(timer);
      if (u) URL.revokeObjectURL(u);
    };
  }, [key]);
  return { url, failed, arriving };
}

function Media({ body }) {
  // Sent from another node and still being fetched from there: shown as arriving.
  const { url, failed, arriving } = useArrivingUrl(() => api.mediaUrl(body.media_id), body.media_id);
  const name = body.name || t('chat.kind.' + body.type);
  if (failed) return html`<p class="text muted">${t('chat.media_failed')}</p>`;
  if (arriving) return html`<p class="text muted media-arriving" role="status">${t('chat.media_arriving', { name })}</p>`;
  if (!url) return html`<p class="text muted">${t('chat.loading')}</p>`;
  if (body.type === 'image') return html`<a href=${url} download=${name}><img class="media-image" src=${url} alt=${name} /></a>`;
  if (body.type === 'voice') return html`<audio controls src=${url} aria-label=${name}></audio>`;
  if (body.type === 'video') return html`<video controls src=${url} class="media-video" aria-label=${name}></video>`;
  return html`<a class="file-link" href=${url} download=${name}><${Icon} name="file" /> ${name}</a>`;
}

function Outgoing({ store, conv, o }) {
  const cross = o.error instanceof ApiError && o.error.status === 451 && o.error.code === 'residency';
  const grant = async () => {
    try {
      await api.call('PUT', '/api/v1/me/consents/cross_border_transfer', { granted: true });
      await store.retry(conv.id, o.txn);
    } catch (e) {
      o.error = e;
      store.changed();
    }
  };
  return html`<div class="msg mine outgoing" data-state=${o.state}>
    <div class="bubble-row"><div class="bubble">
      <${OutgoingBody} body=${o.body} />
      <span class="msg-state">${t('chat.state.' + o.state)}</span>
    </div></div>
    ${o.state === 'failed' && html`<div class="failed">
      <p role="alert">${cross ? t('chat.cross_border_explained') : errorText(o.error)}</p>
      ${cross && html`<button type="button" class="primary small" onClick=${grant}>${t('chat.grant_cross_border')}</button>`}
      <button type="button" class="small" onClick=${() => store.retry(conv.id, o.txn)}>${t('chat.retry')}</button>
      <button type="button" class="small ghost" onClick=${() => { store.dropOutgoing(conv.id, o.txn); store.changed(); }}>${t('chat.discard')}</button>
    </div>`}
  </div>`;
}

function OutgoingBody({ body }) {
  if (body.type === 'text') return html`<p class="text">${body.text}</p>`;
  return html`<p class="text"><${Icon} name="file" size=${16} /> ${body.name || t('chat.kind.' + body.type)}</p>`;
}

/** The kind of message a file becomes, and the purpose it needs. */
export function kindOf(file) {
  const type = file.type || '';
  if (type.startsWith('image/')) return { kind: 'image', purpose: 'photos' };
  if (type.startsWith('audio/')) return { kind: 'voice', purpose: 'microphone' };
  if (type.startsWith('video/')) return { kind: 'video', purpose: 'camera' };
  return { kind: 'file', purpose: null };
}

function ComposerImpl({ store, conv }, ref) {
  const [text, setText] = useState(store.draft(conv.id));
  const [upload, setUpload] = useState(/** @type {any} */ (null));
  const [ask, setAsk] = useState(/** @type {any} */ (null));
  const [error, setError] = useState(/** @type {any} */ (null));
  const fileInput = useRef(/** @type {HTMLInputElement|null} */ (null));
  const area = useRef(/** @type {HTMLTextAreaElement|null} */ (null));
  const recording = useRef(/** @type {{rec: MediaRecorder, keep: boolean}|null} */ (null));
  const [recordingSince, setRecordingSince] = useState(0);
  const [, tick] = useState(0);
  useEffect(() => {
    if (area.current) area.current.focus();
  }, [conv.id]);
  useEffect(() => {
    if (!recordingSince) return undefined;
    const timer = setInterval(() => tick((n) => n + 1), 500);
    return () => clearInterval(timer);
  }, [recordingSince]);
  // Leaving the conversation while recording throws the recording away.
  useEffect(() => () => stopRecording(false), []);
  const send = (e) => {
    if (e) e.preventDefault();
    const body = text.trim();
    if (!body) return;
    setText('');
    store.setDraft(conv.id, '');
    store.send(conv.id, { type: 'text', text: body });
  };
  const onKey = (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) send(e);
  };
  /** Sends a file, asking first for the purpose its kind needs. */
  const attach = async (file) => {
    setError(null);
    const { kind, purpose } = kindOf(file);
    if (purpose) {
      const ok = await askPurpose(purpose, setAsk);
      if (!ok) {
        setError(refusedText(purpose));
        return;
      }
    }
    setUpload({ name: file.name, progress: 0, preview: kind === 'image' ? URL.createObjectURL(file) : null });
    try {
      const r = await api.upload(file, (p) => setUpload((u) => u && { ...u, progress: p }));
      // Only a file carries its name; a photo, clip or voice message does not.
      const body = kind === 'file' ? { type: kind, media_id: r.media_id, name: file.name || 'file' } : { type: kind, media_id: r.media_id };
      await store.send(conv.id, body);
    } catch (err) {
      setError(err);
    } finally {
      setUpload((u) => {
        if (u && u.preview) URL.revokeObjectURL(u.preview);
        return null;
      });
    }
  };
  if (ref) ref.current = { attach };
  /**
   * Records a voice message (the microphone purpose first) or a video (the camera purpose
   * first, then the microphone for its sound: refused, the video is silent), then the
   * browser's own question.
   * @param {'voice'|'video'} kind
   */
  const record = async (kind) => {
    setError(null);
    const needed = kind === 'video' ? 'camera' : 'microphone';
    if (!(await askPurpose(needed, setAsk))) {
      setError(refusedText(needed));
      return;
    }
    const sound = kind === 'voice' || (await askPurpose('microphone', setAsk));
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(kind === 'video' ? { video: true, audio: sound } : { audio: true });
    } catch {
      setError(t(kind === 'video' ? 'composer.camera_unavailable' : 'composer.mic_unavailable'));
      return;
    }
    const rec = new MediaRecorder(stream);
    /** @type {Blob[]} */
    const parts = [];
    rec.ondataavailable = (e) => e.data.size && parts.push(e.data);
    rec.onstop = () => {
      stream.getTracks().forEach((tr) => tr.stop());
      const keep = recording.current && recording.current.keep;
      recording.current = null;
      setRecordingSince(0);
      if (keep && parts.length) {
        const type = (rec.mimeType || (kind === 'video' ? 'video/webm' : 'audio/webm')).split(';')[0];
        attach(new File(parts, kind + '.' + (type.split('/')[1] || 'webm'), { type }));
      }
    };
    recording.current = { rec, keep: false };
    rec.start();
    setRecordingSince(Date.now());
  };
  const stopRecording = (keep) => {
    if (!recording.current) return;
    recording.current.keep = keep;
    recording.current.rec.stop();
  };
  const onPaste = (e) => {
    const f = e.clipboardData && e.clipboardData.files && e.clipboardData.files[0];
    if (f) {
      e.preventDefault();
      attach(f);
    }
  };
  return html`<form class="composer" onSubmit=${send}>
    ${upload && html`<div class="upload" role="status">
      ${upload.preview && html`<img src=${upload.preview} alt="" class="upload-preview" />`}
      <span>${t('composer.uploading', { name: upload.name })}</span>
      <progress max="1" value=${upload.progress} aria-label=${t('composer.progress')}></progress>
    </div>`}
    <${Alert} error=${error} />
    ${recordingSince > 0 && html`<div class="recording" role="status">
      <span class="rec-dot" aria-hidden="true"></span>
      <span>${t('composer.recording', { secs: Math.floor((Date.now() - recordingSince) / 1000) })}</span>
      <button type="button" class="small" onClick=${() => stopRecording(false)}>${t('composer.record_cancel')}</button>
      <button type="button" class="small primary" onClick=${() => stopRecording(true)}>${t('composer.record_send')}</button>
    </div>`}
    <div class="composer-row">
      <button type="button" class="icon-button" aria-label=${t('composer.attach')} title=${t('composer.attach')}
        onClick=${() => fileInput.current && fileInput.current.click()}><${Icon} name="attach" /></button>
      <input type="file" ref=${fileInput} class="visually-hidden" tabindex="-1" aria-hidden="true"
        onChange=${(e) => { const f = e.currentTarget.files && e.currentTarget.files[0]; e.currentTarget.value = ''; if (f) attach(f); }} />
      <button type="button" class="icon-button" aria-label=${t('composer.record')} title=${t('composer.record')}
        disabled=${recordingSince > 0 || typeof MediaRecorder === 'undefined'} onClick=${() => record('voice')}><${Icon} name="mic" /></button>
      <button type="button" class="icon-button" aria-label=${t('composer.record_video')} title=${t('composer.record_video')}
        disabled=${recordingSince > 0 || typeof MediaRecorder === 'undefined'} onClick=${() => record('video')}><${Icon} name="video" /></button>
      <label for="composer-text" class="visually-hidden">${t('composer.label')}</label>
      <textarea id="composer-text" ref=${area} rows="1" value=${text} placeholder=${t('composer.placeholder')}
        onInput=${(e) => { setText(e.currentTarget.value); store.setDraft(conv.id, e.currentTarget.value); }}
        onKeyDown=${onKey} onPaste=${onPaste}></textarea>
      <button type="submit" class="primary send" disabled=${!text.trim()}>${t('composer.send')}</button>
    </div>
    ${ask && ask.view}
  </form>`;
}

/** The composer with an `attach(file)` handle for drag and drop (no forwardRef needed). */
function Composer(props) {
  return ComposerImpl(props, props.composerRef);
}
export { Composer };
