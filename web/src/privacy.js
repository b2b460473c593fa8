// The privacy centre: purposes with state and history, profile with per-field visibility,
// policy versions and pending acceptance, notices, devices, the data export, requests and
// complaints, real-name verification, the public page, guardian consent and account deletion.

import { html, useState, useEffect, useStore, Alert, Field, PolicyText, Dialog } from './ui.js';
import { t, has, formatDateTime, policyLanguage } from './i18n.js';
import * as api from './api.js';
import { Icon } from './icons.js';
import { purposesPath } from './purposes.js';
import { AvatarPicker } from './avatar.js';

const TABS = ['purposes', 'profile', 'policy', 'notices', 'devices', 'data', 'requests', 'realname', 'page', 'guardian', 'deletion'];

/**
 * Loads `path` and reloads on demand; a 404 gives null (nothing recorded). `reload` resolves
 * once the new value is in.
 */
function useResource(path) {
  const [value, setValue] = useState(/** @type {any} */ (undefined));
  const [error, setError] = useState(/** @type {any} */ (null));
  const load = () => api.call('GET', path).then(setValue, (e) => (e.status === 404 ? setValue(null) : setError(e)));
  useEffect(() => {
    load();
  }, [path]);
  return { value, error, reload: load };
}

export function PrivacyCentre({ store, tab, go }) {
  useStore(store);
  const current = TABS.includes(tab) ? tab : 'purposes';
  // At phone width the sections are a row that scrolls sideways: keep the open one in sight.
  useEffect(() => {
    const a = document.querySelector('.privacy-nav [aria-current="page"]');
    if (a) a.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  }, [current]);
  return html`<div class="privacy-layout">
    <header class="privacy-head">
      <a class="icon-button" href="#/chats" aria-label=${t('common.back_to_chats')}><${Icon} name="back" /></a>
      <h1>${t('privacy.title')}</h1>
    </header>
    <div class="privacy-body">
      <nav class="privacy-nav" aria-label=${t('privacy.sections')}>
        <ul>${TABS.map((k) => html`<li><a href=${'#/privacy/' + k} aria-current=${k === current ? 'page' : undefined}>${t('privacy.tab.' + k)}</a></li>`)}</ul>
      </nav>
      <main class="privacy-main" id="main" tabindex="0">
        <h2>${t('privacy.tab.' + current)}</h2>
        ${current === 'purposes' && html`<${Purposes} store=${store} />`}
        ${current === 'profile' && html`<${Profile} store=${store} />`}
        ${current === 'policy' && html`<${PolicyStanding} />`}
        ${current === 'notices' && html`<${Notices} />`}
        ${current === 'devices' && html`<${Devices} store=${store} go=${go} />`}
        ${current === 'data' && html`<${DataExport} />`}
        ${current === 'requests' && html`<${Requests} />`}
        ${current === 'realname' && html`<${RealName} />`}
        ${current === 'page' && html`<${PublicPage} store=${store} />`}
        ${current === 'guardian' && html`<${Guardian} />`}
        ${current === 'deletion' && html`<${Deletion} store=${store} />`}
      </main>
    </div>
  </div>`;
}

// Each purpose in the node's words (its title and description, in the language shown).
function Purposes({ store }) {
  const { value, error, reload } = useResource(purposesPath());
  const [err, setErr] = useState(/** @type {any} */ (null));
  const [open, setOpen] = useState(/** @type {string|null} */ (null));
  // The choice being saved, per purpose: the switch shows it (and is busy) until the node's
  // answer, so a redraw in between does not flip it back to the stored value.
  const [saving, setSaving] = useState(/** @type {Record<string, boolean>} */ ({}));
  const set = async (purpose, granted) => {
    setErr(null);
    setSaving((s) => ({ ...s, [purpose]: granted }));
    try {
      await api.call('PUT', `/api/v1/me/consents/${purpose}`, { granted });
      await reload();
      // What this device may see of history depends on cloud_sync.
      if (purpose === 'cloud_sync') await store.reloadHistory();
    } catch (e) {
      setErr(e);
    } finally {
      setSaving((s) => {
        const rest = { ...s };
        delete rest[purpose];
        return rest;
      });
    }
  };
  if (!value) return html`<${Alert} error=${error} />`;
  return html`<p class="lead">${t('privacy.purposes_lead')}</p>
    <p class="meta">${t('purpose.policy_version', { version: value.policy_version })}</p>
    <${Alert} error=${err} />
    <ul class="card-list">
      ${value.consents.map((c) => html`<li class="card" key=${c.purpose}>
        <div class="card-row">
          <div class="card-text">
            <h3 id=${'p-' + c.purpose}>${c.title} ${c.sensitive && html`<span class="tag">${t('privacy.sensitive')}</span>`}</h3>
            <p>${c.description}</p>
            <p class="meta">${c.granted ? t('privacy.granted_since', { since: formatDateTime(c.since) }) : t('privacy.not_granted')}</p>
          </div>
          <label class="switch-toggle">
            <input type="checkbox" role="switch" checked=${c.purpose in saving ? saving[c.purpose] : c.granted}
              aria-busy=${c.purpose in saving} disabled=${c.purpose in saving} aria-labelledby=${'p-' + c.purpose}
              onChange=${(e) => set(c.purpose, e.currentTarget.checked)} />
            <span aria-hidden="true"></span>
          </label>
        </div>
        ${c.history.length > 0 && html`<button type="button" class="link" aria-expanded=${open === c.purpose}
          onClick=${() => setOpen(open === c.purpose ? null : c.purpose)}>${t('privacy.history', { n: c.history.length })}</button>`}
        ${open === c.purpose && html`<ol class="history">${c.history.map((h) => html`<li>
          ${h.granted ? t('privacy.history_granted') : t('privacy.history_revoked')} · ${formatDateTime(h.at)} · ${t('privacy.policy_version', { version: h.policy_version })}</li>`)}</ol>`}
      </li>`)}
    </ul>`;
}

const PROFILE_FIELDS = ['gender', 'birthday', 'region', 'education', 'bio'];

function Profile({ store }) {
  const me = store.me;
  const [nickname, setNickname] = useState(me.nickname || '');
  const [fields, setFields] = useState(() => {
    /** @type {Record<string, {value: string, visibility: string}>} */
    const f = {};
    for (const k of PROFILE_FIELDS) f[k] = { value: (me.profile && me.profile[k] && me.profile[k].value) || '', visibility: (me.profile && me.profile[k] && me.profile[k].visibility) || 'private' };
    return f;
  });
  const [msg, setMsg] = useState(/** @type {any} */ (null));
  const save = async (e) => {
    e.preventDefault();
    setMsg(null);
    try {
      /** @type {Record<string, any>} */
      const patch = { nickname };
      // A filled field is sent with its visibility; one emptied is removed; one never set stays
      // unset (the node refuses an empty value).
      for (const k of PROFILE_FIELDS) {
        if (fields[k].value.trim()) patch[k] = { value: fields[k].value.trim(), visibility: fields[k].visibility };
        else if (me.profile && me.profile[k]) patch[k] = null;
      }
      store.me = await api.call('PATCH', '/api/v1/me', patch);
      store.changed();
      setMsg(t('privacy.saved'));
    } catch (err) {
      setMsg(err);
    }
  };
  return html`<form class="form" onSubmit=${save}>
    <p class="lead">${t('privacy.profile_lead')}</p>
    <${AvatarPicker} store=${store} />
    <${Field} id="nick" label=${t('register.nickname')} value=${nickname} onInput=${setNickname} required />
    <p class="meta">${t('privacy.phone_private', { phone: me.phone })}</p>
    ${PROFILE_FIELDS.map((k) => html`<div class="field-pair" key=${k}>
      <${Field} id=${'f-' + k} label=${t('profile.' + k)} value=${fields[k].value} type=${k === 'birthday' ? 'date' : 'text'}
        onInput=${(v) => setFields({ ...fields, [k]: { ...fields[k], value: v } })} />
      <div class="field"><label for=${'v-' + k}>${t('profile.visibility')}</label>
        <select id=${'v-' + k} value=${fields[k].visibility} onChange=${(e) => setFields({ ...fields, [k]: { ...fields[k], visibility: e.currentTarget.value } })}>
          ${['public', 'friends', 'private'].map((v) => html`<option value=${v} selected=${fields[k].visibility === v}>${t('visibility.' + v)}</option>`)}
        </select></div>
    </div>`)}
    <${Alert} error=${msg} kind=${typeof msg === 'string' ? 'ok' : 'error'} />
    <button type="submit" class="primary">${t('common.save')}</button>
  </form>`;
}

function PolicyStanding() {
  const mine = useResource('/api/v1/me/policy');
  const versions = useResource('/api/v1/policy/versions');
  const [reading, setReading] = useState(/** @type {any} */ (null));
  const [err, setErr] = useState(/** @type {any} */ (null));
  const read = async (v) => {
    try {
      setReading(await api.call('GET', `/api/v1/policy/versions/${encodeURIComponent(v)}?lang=${policyLanguage()}`));
    } catch (e) {
      setErr(e);
    }
  };
  const accept = async (v) => {
    try {
      await api.call('POST', '/api/v1/me/policy/accept', { version: v });
      mine.reload();
    } catch (e) {
      setErr(e);
    }
  };
  const m = mine.value;
  return html`<${Alert} error=${err || mine.error} />
    ${m && html`<div class="card">
      <p>${t('privacy.accepted_version', { version: m.accepted.version, at: formatDateTime(m.accepted.at) })}</p>
      ${m.optional_processing_paused && html`<p class="alert warn" role="status">${t('privacy.paused', { version: m.paused_by || '' })}</p>`}
      ${m.pending.map((p) => html`<div class="pending" key=${p.version}>
        <p><strong>${t('privacy.pending', { version: p.version, effective: p.effective })}</strong> ${p.narrows_rights && html`<span class="tag">${t('privacy.narrows')}</span>`}</p>
        <div class="row-actions"><button type="button" onClick=${() => read(p.version)}>${t('privacy.read')}</button>
          <button type="button" class="primary" onClick=${() => accept(p.version)}>${t('privacy.accept')}</button></div>
      </div>`)}
    </div>`}
    <h3>${t('privacy.versions')}</h3>
    <ul class="card-list">${versions.value && versions.value.versions.map((v) => html`<li class="card card-row" key=${v.version}>
      <span>${v.version} · ${t('policy.status.' + v.status)} · ${t('privacy.effective', { date: v.effective })}</span>
      <button type="button" class="small" onClick=${() => read(v.version)}>${t('privacy.read')}</button></li>`)}</ul>
    ${reading && html`<${Dialog} title=${t('policy.version_title', { version: reading.version })} onClose=${() => setReading(null)} wide>
      <${PolicyText} text=${reading.text} />
    <//>`}`;
}

/**
 * A notice's title and text: a notice the node wrote (`code` with `params`) in this client's
 * own words; an operator's notice, or a code this client does not know, as the node worded it.
 * @param {{code: string|null, params: Record<string, string>, title: string, text: string}} n
 */
export function noticeWords(n) {
  const key = 'notice.code.' + n.code;
  if (!n.code || !has(key + '.title') || !has(key + '.text')) return { title: n.title, text: n.text };
  const vars = { ...(n.params || {}) };
  if (vars.at) vars.at = formatDateTime(vars.at);
  return { title: t(key + '.title', vars), text: t(key + '.text', vars) };
}

function Notices() {
  // The node's words, for notices the client has none for, in the client's language.
  const { value, error } = useResource('/api/v1/me/notices?lang=' + policyLanguage());
  if (!value) return html`<${Alert} error=${error} />`;
  if (!value.notices.length) return html`<p class="empty">${t('privacy.no_notices')}</p>`;
  return html`<ul class="card-list">${value.notices.slice().reverse().map((n) => {
    const w = noticeWords(n);
    return html`<li class="card" key=${n.cursor} data-code=${n.code || undefined}>
    <h3>${w.title} <span class="tag">${t('notice.kind.' + n.kind)}</span></h3><p>${w.text}</p></li>`;
  })}</ul>`;
}

function Devices({ store, go }) {
  const { value, error, reload } = useResource('/api/v1/me/sessions');
  const [err, setErr] = useState(/** @type {any} */ (null));
  const end = async (s) => {
    try {
      if (s.current) {
        await store.logout();
        go('#/login');
        return;
      }
      await api.call('DELETE', `/api/v1/me/sessions/${encodeURIComponent(s.device_id)}`);
      reload();
    } catch (e) {
      setErr(e);
    }
  };
  if (!value) return html`<${Alert} error=${error} />`;
  return html`<${Alert} error=${err} /><ul class="card-list">${value.sessions.map((s) => html`<li class="card card-row" key=${s.device_id}>
    <span><strong>${s.device.name}</strong> · ${s.device.os} ${s.current && html`<span class="tag">${t('privacy.this_device')}</span>`}<br />
      <small>${t('privacy.last_seen', { at: formatDateTime(s.last_seen) })}</small></span>
    <button type="button" class="small danger" onClick=${() => end(s)}>${t('privacy.sign_out_device')}</button></li>`)}</ul>`;
}

function DataExport() {
  const [state, setState] = useState(/** @type {any} */ (null));
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    setState(null);
    try {
      await api.call('POST', '/api/v1/me/export');
      const blob = await api.downloadExport();
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = 'shanliao-export.json';
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      setState(t('privacy.export_done'));
    } catch (e) {
      setState(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<p class="lead">${t('privacy.export_lead')}</p>
    <${Alert} error=${state} kind=${typeof state === 'string' ? 'ok' : 'error'} />
    <button type="button" class="primary" disabled=${busy} onClick=${run}>${busy ? t('common.wait') : t('privacy.export')}</button>`;
}

function Requests() {
  const { value, error, reload } = useResource('/api/v1/me/requests');
  const [kind, setKind] = useState('access');
  const [text, setText] = useState('');
  const [msg, setMsg] = useState(/** @type {any} */ (null));
  const file = async (e) => {
    e.preventDefault();
    try {
      await api.call('POST', '/api/v1/me/requests', { kind, text });
      setText('');
      setMsg(t('privacy.request_filed'));
      reload();
    } catch (err) {
      setMsg(err);
    }
  };
  return html`<form class="form" onSubmit=${file}>
      <div class="field"><label for="req-kind">${t('privacy.request_kind')}</label>
        <select id="req-kind" value=${kind} onChange=${(e) => setKind(e.currentTarget.value)}>
          ${['access', 'correction', 'deletion', 'complaint', 'other'].map((k) => html`<option value=${k} selected=${k === kind}>${t('request.kind.' + k)}</option>`)}
        </select></div>
      <div class="field"><label for="req-text">${t('privacy.request_text')}</label>
        <textarea id="req-text" rows="4" value=${text} required onInput=${(e) => setText(e.currentTarget.value)}></textarea></div>
      <${Alert} error=${msg || error} kind=${typeof msg === 'string' ? 'ok' : 'error'} />
      <button type="submit" class="primary">${t('privacy.request_submit')}</button>
    </form>
    <ul class="card-list">${value && value.requests.map((r) => html`<li class="card" key=${r.id}>
      <h3>${t('request.kind.' + r.kind)} <span class="tag">${t('request.status.' + r.status)}</span></h3>
      <p>${r.text}</p><p class="meta">${formatDateTime(r.created)}</p>
      ${r.answer && html`<p class="answer"><strong>${t('privacy.answer')}</strong> ${r.answer}</p>`}</li>`)}</ul>`;
}

function RealName() {
  const { value, error, reload } = useResource('/api/v1/me/real-name');
  const [name, setName] = useState('');
  const [id, setId] = useState('');
  const [msg, setMsg] = useState(/** @type {any} */ (null));
  const submit = async (e) => {
    e.preventDefault();
    try {
      await api.call('POST', '/api/v1/me/real-name', { name, id_number: id });
      setName('');
      setId('');
      reload();
    } catch (err) {
      setMsg(err.code === 'consent_required' ? t('privacy.realname_needs') : err);
    }
  };
  const remove = async () => {
    try {
      await api.call('DELETE', '/api/v1/me/real-name');
      reload();
    } catch (err) {
      setMsg(err);
    }
  };
  return html`<p class="lead">${t('privacy.realname_lead')}</p><${Alert} error=${msg || error} />
    ${value
      ? html`<div class="card card-row"><span>${value.name} · ${value.id_number}<br /><small>${t('privacy.verified', { at: formatDateTime(value.verified) })}</small></span>
          <button type="button" class="small danger" onClick=${remove}>${t('common.delete')}</button></div>`
      : html`<form class="form" onSubmit=${submit}>
          <${Field} id="rn-name" label=${t('privacy.realname_name')} value=${name} onInput=${setName} required />
          <${Field} id="rn-id" label=${t('privacy.realname_id')} value=${id} onInput=${setId} hint=${t('privacy.realname_why')} required />
          <button type="submit" class="primary">${t('privacy.realname_submit')}</button></form>`}`;
}

function PublicPage({ store }) {
  const { value, error, reload } = useResource('/api/v1/me/public-page');
  const [phone, setPhone] = useState('');
  const [password, setPassword] = useState('');
  const [msg, setMsg] = useState(/** @type {any} */ (null));
  const set = async (enabled, e) => {
    if (e) e.preventDefault();
    try {
      await api.call('PUT', '/api/v1/me/public-page', enabled ? { enabled, phone, password } : { enabled });
      setPassword('');
      reload();
    } catch (err) {
      setMsg(err);
    }
  };
  if (value === undefined) return html`<${Alert} error=${error} />`;
  return html`<p class="lead">${t('privacy.page_lead')}</p><${Alert} error=${msg} />
    ${value && value.enabled
      ? html`<div class="card card-row"><span>${t('privacy.page_on', { since: formatDateTime(value.since) })}<br />
          <small>/api/v1/pages/${store.me.handle}</small></span>
          <button type="button" class="small danger" onClick=${() => set(false)}>${t('privacy.page_off')}</button></div>`
      : html`<form class="form" onSubmit=${(e) => set(true, e)}>
          <${Field} id="pp-phone" label=${t('register.phone')} value=${phone} onInput=${setPhone} type="tel" hint=${t('privacy.page_why')} required />
          <${Field} id="pp-password" label=${t('login.password')} value=${password} onInput=${setPassword} type="password" autocomplete="current-password" required />
          <button type="submit" class="primary">${t('privacy.page_enable')}</button></form>`}`;
}

// A minor's guardian agrees to some purposes; each is chosen here by the node's name for it.
function Guardian() {
  const { value, error, reload } = useResource('/api/v1/me/guardian-consent');
  const purposes = useResource(purposesPath());
  const [name, setName] = useState('');
  const [contact, setContact] = useState('');
  const [chosen, setChosen] = useState(/** @type {string[]} */ ([]));
  const [msg, setMsg] = useState(/** @type {any} */ (null));
  const [ok, setOk] = useState('');
  const submit = async (e) => {
    e.preventDefault();
    setMsg(null);
    setOk('');
    if (!chosen.length) {
      setMsg(t('privacy.guardian_choose'));
      return;
    }
    try {
      await api.call('POST', '/api/v1/me/guardian-consent', { guardian_name: name, guardian_contact: contact, purposes: chosen });
      setName('');
      setContact('');
      setChosen([]);
      setOk(t('privacy.guardian_saved'));
      reload();
    } catch (err) {
      setMsg(err);
    }
  };
  const titleOf = (p) => {
    const c = purposes.value && purposes.value.consents.find((x) => x.purpose === p);
    return c ? c.title : p;
  };
  const toggle = (p, on) => setChosen((list) => (on ? [...list.filter((x) => x !== p), p] : list.filter((x) => x !== p)));
  return html`<p class="lead">${t('privacy.guardian_lead')}</p>
    <${Alert} error=${msg || error || purposes.error} />
    <${Alert} error=${ok} kind="ok" />
    ${value && html`<div class="card"><p>${t('privacy.guardian_recorded', { name: value.guardian_name, at: formatDateTime(value.recorded) })}</p>
      <p class="meta">${t('privacy.guardian_covers', { purposes: value.purposes.map(titleOf).join(t('common.list_separator')) })}</p></div>`}
    <form class="form" onSubmit=${submit}>
      <${Field} id="g-name" label=${t('privacy.guardian_name')} value=${name} onInput=${setName} required />
      <${Field} id="g-contact" label=${t('privacy.guardian_contact')} value=${contact} onInput=${setContact} required />
      <fieldset class="field guardian-purposes">
        <legend>${t('privacy.guardian_purposes')}</legend>
        ${purposes.value && purposes.value.consents.map((c) => html`<label class="check" key=${c.purpose}>
          <input type="checkbox" checked=${chosen.includes(c.purpose)} onChange=${(e) => toggle(c.purpose, e.currentTarget.checked)} />
          <span>${c.title}</span></label>`)}
      </fieldset>
      <button type="submit" class="primary">${t('privacy.guardian_submit')}</button>
    </form>`;
}

function Deletion({ store }) {
  const [password, setPassword] = useState('');
  const [due, setDue] = useState(/** @type {string|null} */ (store.locked ? '' : null));
  const [msg, setMsg] = useState(/** @type {any} */ (null));
  const request = async (e) => {
    e.preventDefault();
    setMsg(null);
    try {
      const r = await api.call('POST', '/api/v1/me/deletion', { password });
      setPassword('');
      store.locked = true;
      setDue(r.due);
    } catch (err) {
      setMsg(err);
    }
  };
  const cancel = async () => {
    try {
      await api.call('DELETE', '/api/v1/me/deletion');
      setDue(null);
      store.locked = false;
      setMsg(t('privacy.deletion_cancelled'));
      await store.loadConversations();
    } catch (err) {
      setMsg(err);
    }
  };
  return html`<p class="lead">${t('privacy.deletion_lead')}</p>
    <${Alert} error=${msg} kind=${typeof msg === 'string' ? 'ok' : 'error'} />
    ${due
      ? html`<div class="card"><p class="alert warn" role="status">${due ? t('privacy.deletion_due', { due: formatDateTime(due) }) : t('privacy.deletion_pending')}</p>
          <button type="button" class="primary" onClick=${cancel}>${t('privacy.deletion_cancel')}</button></div>`
      : html`<form class="form" onSubmit=${request}>
          <${Field} id="del-password" label=${t('login.password')} type="password" value=${password} onInput=${setPassword} autocomplete="current-password" hint=${t('privacy.deletion_why')} required />
          <button type="submit" class="danger">${t('privacy.deletion_request')}</button></form>`}`;
}
