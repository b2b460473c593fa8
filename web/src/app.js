// The top of the client: which screen the address (#/…) names, and signing in on start.

import { html, useState, useEffect, useStore } from './ui.js';
import { t, loadLanguage } from './i18n.js';
import * as api from './api.js';
import { Login, PolicyScreen, Register } from './auth.js';
import { ChatScreen } from './chat.js';
import { PrivacyCentre } from './privacy.js';
import { FriendsScreen } from './friends.js';
import { CommunitiesScreen } from './communities.js';
import { SearchScreen } from './search.js';
import { DiscoverScreen, InviteScreen, InviteSignedOut, takePendingInvite } from './discovery.js';

function useHash() {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/');
    window.addEventListener('hashchange', on);
    // A change between the first render and this subscription fired no event seen here.
    on();
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash;
}

/** @param {string} to */
export function go(to) {
  if (location.hash !== to) location.hash = to;
}

export function App({ store }) {
  useStore(store);
  const hash = useHash();
  const [ready, setReady] = useState(false);
  const [, relang] = useState(0);
  useEffect(() => {
    if (api.restoreToken()) {
      store.begin().then(
        () => setReady(true),
        () => {
          store.end();
          setReady(true);
        },
      );
    } else setReady(true);
  }, []);
  const onLanguage = async (lang) => {
    await loadLanguage(lang, true);
    document.documentElement.dataset.title = t('app.title');
    relang((n) => n + 1);
    store.changed();
  };
  if (!ready) return html`<div class="splash" role="status">${t('common.wait')}</div>`;
  const parts = hash.replace(/^#\/?/, '').split('/');
  const signedIn = !!store.me;
  if (!signedIn) {
    if (parts[0] === 'policy') return html`<${PolicyScreen} go=${go} onLanguage=${onLanguage} forRegistration=${true} />`;
    if (parts[0] === 'read-policy') return html`<${PolicyScreen} go=${go} onLanguage=${onLanguage} forRegistration=${false} />`;
    if (parts[0] === 'register' && parts[1]) return html`<${Register} store=${store} go=${go} version=${decodeURIComponent(parts[1])} onLanguage=${onLanguage} />`;
    if (parts[0] === 'invite' && parts[1]) return html`<${InviteSignedOut} parts=${parts.slice(1)} />`;
    return html`<${Login} store=${store} go=${go} onLanguage=${onLanguage} />`;
  }
  if (store.locked && parts[0] !== 'privacy') {
    go('#/privacy/deletion');
  }
  // An invite link opened before signing in comes back once signed in.
  const pending = parts[0] !== 'invite' && !store.locked ? takePendingInvite() : null;
  if (pending) go('#/invite/' + pending);
  if (parts[0] === 'privacy') return html`<${PrivacyCentre} store=${store} tab=${parts[1]} go=${go} />`;
  if (parts[0] === 'friends') return html`<${FriendsScreen} store=${store} go=${go} />`;
  if (parts[0] === 'communities') return html`<${CommunitiesScreen} store=${store} parts=${parts.slice(1)} />`;
  if (parts[0] === 'search') return html`<${SearchScreen} store=${store} go=${go} />`;
  if (parts[0] === 'discover') return html`<${DiscoverScreen} store=${store} tab=${parts[1]} go=${go} />`;
  if (parts[0] === 'invite' && parts[1]) return html`<${InviteScreen} store=${store} parts=${parts.slice(1)} go=${go} />`;
  return html`<${ChatScreen} store=${store} active=${parts[0] === 'chats' ? parts[1] || null : null} go=${go} onLanguage=${onLanguage} />`;
}
