// The client's state and everything that changes it: the signed-in person, conversations,
// messages (paged), sends in flight (retried with the same txn id), drafts, unread counts and
// the live stream. Views read it and call its methods; it tells them to redraw.

import * as api from './api.js';
import { Live } from './live.js';

const PAGE = 50;
/** How long read positions gather before one request tells the node (ms). */
const READ_DELAY = 300;

/**
 * @typedef {{id: string, seq: number, ts: number, sender: string, recalled: boolean, body: any}} Message
 * @typedef {{txn: string, body: any, state: 'sending'|'failed'|'pending', error?: any, ts: number, id?: string, echo?: string}} Outgoing
 * @typedef {{items: Message[], hasMore: boolean, loading: boolean, loaded: boolean}} History
 */

export class Store {
  constructor() {
    /** @type {Set<() => void>} */
    this.listeners = new Set();
    /** @type {any} */
    this.me = null;
    /** @type {any[]} */
    this.conversations = [];
    /** @type {Map<string, Message|null>} */
    this.last = new Map();
    /** @type {Map<string, any>} read-position updates waiting to be sent, per conversation */
    this.readTimers = new Map();
    /** @type {Map<string, History>} */
    this.history = new Map();
    /** @type {Map<string, Outgoing[]>} */
    this.outgoing = new Map();
    /** @type {Map<string, string>} */
    this.drafts = new Map();
    /** @type {Map<string, any>} conversation details with members */
    this.details = new Map();
    /** @type {string|null} */
    this.active = null;
    /** @type {'connecting'|'online'|'offline'} */
    this.connection = 'connecting';
    /** @type {string} text for the screen-reader announcement region */
    this.announcement = '';
    this.notify = false;
    /** @type {Live|null} */
    this.live = null;
    this.locked = false;
    this.noticeCount = 0;
    /** Friend events seen: the friends screen reloads on each. */
    this.friendEvents = 0;
    /** Join-request events seen (made or answered): the invites screen reloads on each. */
    this.joinEvents = 0;
    /**
     * The last community events (new posts and comments), numbered, for the screens showing
     * them to catch up with what came since they last looked; a bounded window.
     * @type {{n: number, community: string, post: number, comment: number|null}[]}
     */
    this.communityEvents = [];
    this.communitySeen = 0;
    /** @type {any} */
    this.flushTimer = null;
    this.lastFlush = 0;
    /** @type {number|null} when the oldest not yet drawn live message came in */
    this.frameAt = null;
    /** @type {Promise<void>|null} */
    this.refreshing = null;
    /** @type {Promise<void>|null} */
    this.refreshQueued = null;
    /** @type {number} time the last live message was drawn after its frame (ms) */
    this.lastDrawDelay = 0;
    // Coming back to the tab reads what arrived in the open conversation meanwhile.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState !== 'hidden' && this.active) {
        this.markRead(this.active);
        this.changed();
      }
    });
  }

  /** @param {() => void} fn */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Tells the views to redraw: at once when the last redraw is more than a frame ago, else at
   * the end of that frame, so a burst of live events draws about 60 times a second at most.
   */
  changed() {
    if (this.flushTimer) return;
    const wait = Math.max(0, this.lastFlush + 16 - performance.now());
    this.flushTimer = setTimeout(() => this.flush(), wait);
  }

  flush() {
    this.flushTimer = null;
    this.lastFlush = performance.now();
    for (const fn of this.listeners) fn();
    this.updateTitle();
    const at = this.frameAt;
    this.frameAt = null;
    // Preact redraws in a microtask after the listeners; the next animation frame comes after
    // that redraw, so its time is the frame-to-drawn delay (docs/PERFORMANCE.md).
    if (at !== null) requestAnimationFrame(() => (this.lastDrawDelay = performance.now() - at));
  }

  /** Signs in: a new session for this browser. */
  async login(login, password, keep) {
    const device = { name: 'Web', os: platformName(), app_version: 'web-1' };
    const r = await api.call('POST', '/api/v1/sessions', { login, password, device });
    api.setToken(r.token, keep);
    await this.begin();
  }

  /** Loads who I am and my conversations, and opens the live stream. */
  async begin() {
    this.me = await api.call('GET', '/api/v1/me');
    this.locked = false;
    try {
      await this.loadConversations();
    } catch (e) {
      // Waiting for erasure: only cancelling (and the export) is open.
      if (e instanceof api.ApiError && e.code === 'account_pending_deletion') this.locked = true;
      else throw e;
    }
    this.live = new Live(
      () => api.currentToken(),
      (ev) => this.onEvent(ev),
      (s) => {
        const back = s === 'online' && this.connection !== 'online';
        this.connection = s;
        if (back) this.retryFailed();
        this.changed();
      },
    );
    this.live.start();
    this.changed();
  }

  async logout() {
    try {
      await api.call('DELETE', '/api/v1/sessions/current');
    } catch {
      /* the token is forgotten here either way */
    }
    this.end();
  }

  /** Forgets everything of the session (after sign-out, or a token that stopped working). */
  end() {
    if (this.live) this.live.stop();
    this.live = null;
    api.setToken(null, false);
    this.me = null;
    this.conversations = [];
    this.history.clear();
    this.outgoing.clear();
    this.drafts.clear();
    this.last.clear();
    for (const timer of this.readTimers.values()) clearTimeout(timer);
    this.readTimers.clear();
    this.details.clear();
    this.active = null;
    this.changed();
  }

  /** Loads my conversations with their unread counts and last messages, as the node counts them. */
  async loadConversations() {
    const r = await api.call('GET', '/api/v1/conversations');
    this.conversations = r.conversations;
    for (const c of this.conversations) {
      const known = this.last.get(c.id);
      const listed = fromListed(c.last_message);
      // A message drawn from the live stream may be newer than the list's answer.
      if (!known || !listed || known.seq <= listed.seq) this.last.set(c.id, listed);
      // A read position this client has not sent yet still counts.
      if (this.readTimers.has(c.id) || (this.active === c.id && document.visibilityState !== 'hidden')) {
        c.unread = 0;
        this.markRead(c.id);
      }
    }
    this.sortConversations();
    this.changed();
  }

  /**
   * Reloads the list once for a burst of events (one load in flight, at most one more queued
   * behind it), instead of once per event.
   * @returns {Promise<void>}
   */
  refreshConversations() {
    if (this.refreshQueued) return this.refreshQueued;
    const run = () => this.loadConversations().catch(() => {});
    const next = (this.refreshing || Promise.resolve()).then(() => {
      this.refreshQueued = null;
      this.refreshing = run().then(() => {
        this.refreshing = null;
      });
      return this.refreshing;
    });
    this.refreshQueued = next;
    return next;
  }

  sortConversations() {
    const key = (c) => {
      const m = this.last.get(c.id);
      return Math.max(Date.parse(c.last_activity || c.created) || 0, m ? m.ts : 0);
    };
    this.conversations.sort((a, b) => key(b) - key(a));
  }

  /** Unread messages in `id`: the node's count, kept up to date from the live stream. */
  unread(id) {
    const c = this.conversations.find((x) => x.id === id);
    return c ? c.unread || 0 : 0;
  }

  /**
   * Marks `id` read up to its last message: at once on this screen, on the node within a
   * moment (one request for a burst of messages read while the conversation is open).
   * @param {string} id
   */
  markRead(id) {
    const c = this.conversations.find((x) => x.id === id);
    if (!c) return;
    c.unread = 0;
    if (this.readTimers.has(id)) return;
    this.readTimers.set(
      id,
      setTimeout(() => {
        const conv = this.conversations.find((x) => x.id === id);
        if (!conv) {
          this.readTimers.delete(id);
          return;
        }
        api
          .call('PUT', `/api/v1/conversations/${id}/read`, { seq: conv.last_seq })
          .then((r) => (conv.read_seq = r.read_seq))
          .catch(() => {
            /* the list shows it unread again after the next reload; nothing is lost */
          })
          .finally(() => this.readTimers.delete(id));
      }, READ_DELAY),
    );
  }

  totalUnread() {
    return this.conversations.reduce((n, c) => n + this.unread(c.id), 0);
  }

  updateTitle() {
    const n = this.totalUnread();
    const base = document.documentElement.dataset.title || document.title.replace(/^\(\d+\) /, '');
    document.documentElement.dataset.title = base;
    document.title = n > 0 ? `(${n}) ${base}` : base;
  }

  /** Opens a conversation: its first page of history if not loaded yet. */
  async open(id) {
    this.active = id;
    this.markRead(id);
    this.changed();
    const h = this.history.get(id);
    if (!h || !h.loaded) await this.loadOlder(id);
    if (!this.details.has(id)) this.loadDetails(id);
  }

  async loadDetails(id) {
    try {
      this.details.set(id, await api.call('GET', `/api/v1/conversations/${id}`));
      this.changed();
    } catch {
      // The header shows what the list knows; details kept from before are no longer trusted.
      if (this.details.delete(id)) this.changed();
    }
  }

  /** Loads the page before the oldest message loaded (the first page when none is). */
  async loadOlder(id) {
    let h = this.history.get(id);
    if (!h) {
      h = { items: [], hasMore: true, loading: false, loaded: false };
      this.history.set(id, h);
    }
    if (h.loading || !h.hasMore) return;
    h.loading = true;
    this.changed();
    try {
      const oldest = h.items.length ? h.items[0].seq : null;
      const q = oldest ? `?limit=${PAGE}&before=${oldest}` : `?limit=${PAGE}`;
      const r = await api.call('GET', `/api/v1/conversations/${id}/messages${q}`);
      const page = r.messages.slice().reverse();
      const known = new Set(h.items.map((m) => m.seq));
      h.items = page.filter((m) => !known.has(m.seq)).concat(h.items);
      h.hasMore = r.messages.length === PAGE;
      h.loaded = true;
    } finally {
      h.loading = false;
      this.changed();
    }
  }

  /** Drops cached history (after cloud_sync changes what this device may see) and reloads. */
  async reloadHistory() {
    this.history.clear();
    this.last.clear();
    await this.loadConversations();
    if (this.active) await this.loadOlder(this.active);
  }

  /** Sends `body` into conversation `id` with a new txn id. */
  send(id, body) {
    /** @type {Outgoing} */
    const o = { txn: crypto.randomUUID(), body, state: 'sending', ts: Date.now() };
    const list = this.outgoing.get(id) || [];
    list.push(o);
    this.outgoing.set(id, list);
    this.changed();
    return this.deliver(id, o);
  }

  /** Sends again with the same txn id: the node stores it at most once. */
  retry(id, txn) {
    const o = (this.outgoing.get(id) || []).find((x) => x.txn === txn);
    if (!o || o.state === 'sending') return Promise.resolve();
    o.state = 'sending';
    o.error = undefined;
    this.changed();
    return this.deliver(id, o);
  }

  retryFailed() {
    for (const [id, list] of this.outgoing)
      for (const o of list) if (o.state === 'failed' && o.error instanceof api.NetworkError) this.retry(id, o.txn);
  }

  /** @param {string} id @param {Outgoing} o */
  async deliver(id, o) {
    try {
      const r = await api.call('POST', `/api/v1/conversations/${id}/messages`, {
        txn_id: o.txn,
        body: o.body,
      });
      if (r.status === 202) {
        // Hosted on another node: it has the message; its seq comes with the event, unless that
        // event came first.
        if (o.echo) this.dropOutgoing(id, o.txn);
        else o.state = 'pending';
      } else {
        o.id = r.id;
        this.settle(id, { id: r.id, seq: r.seq, ts: r.ts, sender: this.me.user, recalled: false, body: o.body });
        this.dropOutgoing(id, o.txn);
      }
    } catch (e) {
      o.state = 'failed';
      o.error = e;
      o.echo = undefined;
    }
    this.changed();
  }

  dropOutgoing(id, txn) {
    const list = (this.outgoing.get(id) || []).filter((x) => x.txn !== txn);
    this.outgoing.set(id, list);
  }

  /** Puts a stored message in place (from a send's answer or an event), once. */
  settle(id, m) {
    let h = this.history.get(id);
    if (!h) {
      // Kept from the live stream: without cloud_sync the node may not serve it again.
      h = { items: [], hasMore: true, loading: false, loaded: false };
      this.history.set(id, h);
    }
    if (!h.items.some((x) => x.seq === m.seq)) {
      h.items.push(m);
      h.items.sort((a, b) => a.seq - b.seq);
    }
    const last = this.last.get(id);
    if (!last || last.seq <= m.seq) this.last.set(id, m);
    const c = this.conversations.find((x) => x.id === id);
    if (c) {
      const fresh = m.seq > c.last_seq;
      c.last_seq = Math.max(c.last_seq, m.seq);
      c.last_activity = new Date(m.ts).toISOString();
      if (this.active === id && document.visibilityState !== 'hidden') this.markRead(id);
      else if (fresh && m.sender !== this.me.user) c.unread = (c.unread || 0) + 1;
    }
    this.sortConversations();
  }

  /** @param {any} ev */
  onEvent(ev) {
    const started = performance.now();
    switch (ev.type) {
      case 'message': {
        const id = ev.conversation;
        const m = ev.message;
        if (!this.conversations.some((c) => c.id === id)) this.refreshConversations();
        // A send into another node's conversation waits for this event.
        const list = this.outgoing.get(id) || [];
        const mine = list.find(
          (o) => o.id === m.id || (o.state === 'pending' && m.sender === this.me.user && sameBody(o.body, m.body)),
        );
        if (mine) this.dropOutgoing(id, mine.txn);
        else if (m.sender === this.me.user) {
          // The event can overtake the send's own answer: the oldest send of the same body still
          // in flight is hidden (not dropped, so a failure would still show) until that answer.
          const echo = list.find((o) => o.state === 'sending' && !o.echo && sameBody(o.body, m.body));
          if (echo) echo.echo = m.id;
        }
        this.settle(id, m);
        if (m.sender !== this.me.user) {
          const c = this.conversations.find((x) => x.id === id);
          const who = c && c.kind === 'direct' ? c.with : m.sender;
          this.announcement = `${who}: ${m.body && m.body.type === 'text' ? m.body.text : ''}`;
          this.desktopNotify(who, m);
        }
        break;
      }
      case 'recall': {
        // Replaced, not changed in place: a message's view redraws when its object changes.
        const h = this.history.get(ev.conversation);
        if (h) h.items = h.items.map((x) => (x.seq === ev.seq ? { ...x, recalled: true, body: null } : x));
        const last = this.last.get(ev.conversation);
        if (last && last.seq === ev.seq) this.last.set(ev.conversation, { ...last, recalled: true, body: null });
        break;
      }
      case 'membership':
      case 'renamed':
      case 'visibility':
        // The open conversation keeps its details on screen until the fresh ones replace them
        // (dropping them first drew an empty member list in between); any other is read again
        // when it is next opened.
        if (this.active !== ev.conversation) this.details.delete(ev.conversation);
        this.refreshConversations().then(() => {
          if (this.active === ev.conversation) {
            if (this.conversations.some((c) => c.id === ev.conversation)) this.loadDetails(ev.conversation);
            else {
              this.details.delete(ev.conversation);
              this.active = null;
            }
          }
          this.changed();
        });
        break;
      case 'notice':
        this.noticeCount = (this.noticeCount || 0) + 1;
        break;
      case 'friend':
        this.friendEvents += 1;
        break;
      case 'join':
        this.joinEvents += 1;
        break;
      case 'community':
        this.communitySeen += 1;
        this.communityEvents.push({ n: this.communitySeen, community: ev.community, post: ev.post, comment: ev.comment ?? null });
        if (this.communityEvents.length > 200) this.communityEvents.splice(0, this.communityEvents.length - 200);
        break;
      default:
        break;
    }
    if (ev.type === 'message' && this.frameAt === null) this.frameAt = started;
    this.changed();
  }

  /** The community events numbered after `n` (those still in the window). */
  communitySince(n) {
    return this.communityEvents.filter((e) => e.n > n);
  }

  desktopNotify(who, m) {
    if (!this.notify || typeof Notification === 'undefined') return;
    if (Notification.permission !== 'granted' || document.visibilityState !== 'hidden') return;
    const text = m.body && m.body.type === 'text' ? m.body.text : '';
    new Notification(who, { body: text, tag: m.id });
  }

  async recall(id, seq) {
    await api.call('POST', `/api/v1/conversations/${id}/messages/${seq}/recall`);
    this.onEvent({ type: 'recall', conversation: id, seq });
  }

  async hide(id, seq) {
    await api.call('DELETE', `/api/v1/conversations/${id}/messages/${seq}`);
    const h = this.history.get(id);
    if (h) h.items = h.items.filter((m) => m.seq !== seq);
    this.changed();
  }

  /** Opens (or finds) the direct conversation with `address`. */
  async startDirect(address) {
    const c = await api.call('POST', '/api/v1/conversations', { kind: 'direct', with: address });
    await this.loadConversations();
    await this.open(c.id);
    return c;
  }

  async createGroup(name, members, isPublic) {
    const c = await api.call('POST', '/api/v1/conversations', {
      kind: 'group',
      name,
      members,
      public: isPublic,
    });
    await this.loadConversations();
    await this.open(c.id);
    return c;
  }

  /** Runs a group change, then refreshes what it affects. */
  async groupChange(id, method, path, body) {
    await api.call(method, `/api/v1/conversations/${id}${path}`, body);
    await this.loadConversations();
    // The details stay until the fresh ones replace them, as for a membership event.
    if (this.conversations.some((c) => c.id === id)) await this.loadDetails(id);
    else {
      this.details.delete(id);
      if (this.active === id) this.active = null;
    }
    this.changed();
  }

  draft(id) {
    return this.drafts.get(id) || '';
  }

  setDraft(id, text) {
    this.drafts.set(id, text);
  }
}

/**
 * The list's last message in the shape of a history message (what the list draws of it).
 * @param {any} l
 * @returns {Message|null}
 */
function fromListed(l) {
  if (!l) return null;
  const recalled = l.kind === 'recalled';
  const body = recalled ? null : l.kind === 'text' ? { type: 'text', text: l.preview } : { type: l.kind, name: l.preview };
  return { id: '', seq: l.seq, ts: l.ts, sender: l.sender, recalled, body };
}

function sameBody(a, b) {
  if (!a || !b || a.type !== b.type) return false;
  return a.type === 'text' ? a.text === b.text : a.media_id === b.media_id;
}

function platformName() {
  const ua = navigator.userAgent;
  if (/Android/.test(ua)) return 'Android';
  if (/iPhone|iPad/.test(ua)) return 'iOS';
  if (/Mac OS X/.test(ua)) return 'macOS';
  if (/Windows/.test(ua)) return 'Windows';
  if (/Linux/.test(ua)) return 'Linux';
  return 'Browser';
}
