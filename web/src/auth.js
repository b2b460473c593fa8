// Before signing in: reading the privacy policy, registering with only the needed fields, and
// signing in with handle or phone.

import { html, useState, useEffect, Field, Alert, PolicyText } from './ui.js';
import { t, policyLanguage } from './i18n.js';
import * as api from './api.js';
import { LanguageSwitch } from './settings.js';

/** The policy in effect, in the current language. */
function usePolicy() {
  const [policy, setPolicy] = useState(/** @type {any} */ (null));
  const [error, setError] = useState(/** @type {any} */ (null));
  useEffect(() => {
    api.call('GET', `/api/v1/policy?lang=${policyLanguage()}`).then(setPolicy, setError);
  }, [policyLanguage()]);
  return { policy, error };
}

function Shell({ children, onLanguage }) {
  return html`<div class="auth-shell">
    <div class="auth-card">
      <div class="brand">
        <span class="brand-mark" aria-hidden="true"></span>
        <span class="brand-name">${t('app.name')}</span>
        <span class="spacer"></span>
        <${LanguageSwitch} onChange=${onLanguage} />
      </div>
      ${children}
    </div>
    <p class="auth-foot">${t('auth.foot')}</p>
  </div>`;
}

/** Sign in with handle or phone. */
export function Login({ store, go, onLanguage }) {
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const [keep, setKeep] = useState(false);
  const [error, setError] = useState(/** @type {any} */ (null));
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await store.login(login.trim(), password, keep);
      go('#/chats');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<${Shell} onLanguage=${onLanguage}>
    <main>
      <h1>${t('login.title')}</h1>
      <p class="lead">${t('login.lead')}</p>
      <form onSubmit=${submit} class="form">
        <${Field} id="login" label=${t('login.login')} value=${login} onInput=${setLogin} autocomplete="username" required />
        <${Field} id="password" label=${t('login.password')} type="password" value=${password} onInput=${setPassword} autocomplete="current-password" required />
        <label class="check"><input type="checkbox" checked=${keep} onChange=${(e) => setKeep(e.currentTarget.checked)} />
          <span>${t('login.keep')}<br /><small>${t('login.keep_hint')}</small></span></label>
        <${Alert} error=${error} />
        <button class="primary wide" type="submit" disabled=${busy}>${busy ? t('common.wait') : t('login.submit')}</button>
      </form>
      <p class="switch">${t('login.no_account')} <a href="#/policy">${t('login.register')}</a></p>
      <p class="switch"><a href="#/read-policy">${t('login.read_policy')}</a></p>
    </main>
  <//>`;
}

/** The policy, read before registering; "agree" leads to the form with its version. */
export function PolicyScreen({ go, onLanguage, forRegistration }) {
  const { policy, error } = usePolicy();
  return html`<${Shell} onLanguage=${onLanguage}>
    <main>
      <h1>${t('policy.title')}</h1>
      <${Alert} error=${error} />
      ${policy && html`<p class="meta">${t('policy.version', { version: policy.version, effective: policy.effective })}</p>
        <div class="policy-box" tabindex="0" role="region" aria-label=${t('policy.title')}><${PolicyText} text=${policy.text} /></div>
        ${forRegistration
          ? html`<div class="row-actions">
              <a class="button" href="#/login">${t('common.back')}</a>
              <button class="primary" type="button" onClick=${() => go('#/register/' + encodeURIComponent(policy.version))}>${t('policy.agree')}</button>
            </div>`
          : html`<div class="row-actions"><a class="button" href="#/login">${t('common.back')}</a></div>`}`}
    </main>
  <//>`;
}

/** Registration: phone, handle, nickname, password — each with why it is needed. */
export function Register({ store, go, version, onLanguage }) {
  const [f, setF] = useState({ phone: '', handle: '', nickname: '', password: '' });
  const [keep, setKeep] = useState(false);
  const [error, setError] = useState(/** @type {any} */ (null));
  const [busy, setBusy] = useState(false);
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.call('POST', '/api/v1/accounts', { ...f, handle: f.handle.trim(), phone: f.phone.trim(), accept_policy: version });
      await store.login(f.handle.trim(), f.password, keep);
      go('#/chats');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<${Shell} onLanguage=${onLanguage}>
    <main>
      <h1>${t('register.title')}</h1>
      <p class="lead">${t('register.lead', { version })}</p>
      <form onSubmit=${submit} class="form">
        <${Field} id="phone" label=${t('register.phone')} value=${f.phone} onInput=${set('phone')} type="tel" autocomplete="tel" hint=${t('register.phone_why')} placeholder="+8613800138000" required />
        <${Field} id="handle" label=${t('register.handle')} value=${f.handle} onInput=${set('handle')} autocomplete="username" hint=${t('register.handle_why')} required />
        <${Field} id="nickname" label=${t('register.nickname')} value=${f.nickname} onInput=${set('nickname')} autocomplete="nickname" hint=${t('register.nickname_why')} required />
        <${Field} id="new-password" label=${t('register.password')} type="password" value=${f.password} onInput=${set('password')} autocomplete="new-password" hint=${t('register.password_why')} required />
        <label class="check"><input type="checkbox" checked=${keep} onChange=${(e) => setKeep(e.currentTarget.checked)} />
          <span>${t('login.keep')}</span></label>
        <${Alert} error=${error} />
        <button class="primary wide" type="submit" disabled=${busy}>${busy ? t('common.wait') : t('register.submit')}</button>
      </form>
      <p class="switch">${t('register.have_account')} <a href="#/login">${t('login.submit')}</a></p>
    </main>
  <//>`;
}
