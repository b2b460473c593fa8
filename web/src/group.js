// Managing a group: members and roles, invite, remove, rename, public/private, transfer of
// ownership, leaving.

import { html, useState, useEffect, useStore, Dialog, Alert, Field, Avatar } from './ui.js';
import { t } from './i18n.js';

export function GroupDialog({ store, conv, go, onClose }) {
  useStore(store);
  const d = store.details.get(conv.id);
  const [invite, setInvite] = useState('');
  const [name, setName] = useState(conv.name || '');
  const [error, setError] = useState(/** @type {any} */ (null));
  const [done, setDone] = useState('');
  useEffect(() => {
    if (!d) store.loadDetails(conv.id);
  }, [d]);
  const me = store.me.user;
  const role = conv.role;
  const run = (method, path, body, message) => async (e) => {
    if (e && e.preventDefault) e.preventDefault();
    setError(null);
    setDone('');
    try {
      await store.groupChange(conv.id, method, path, body);
      setDone(message);
      if (!store.conversations.some((c) => c.id === conv.id)) {
        onClose();
        go('#/chats');
      }
    } catch (err) {
      setError(err);
    }
  };
  // The public/private choice being saved: the box shows it (and is busy) until the node's
  // answer, so a redraw in between does not flip it back to the stored value.
  const [savingPublic, setSavingPublic] = useState(/** @type {boolean|null} */ (null));
  const setPublic = async (value) => {
    setSavingPublic(value);
    try {
      await run('PATCH', '', { public: value }, t('group.visibility_saved'))();
    } finally {
      setSavingPublic(null);
    }
  };
  const members = (d && d.members) || [];
  return html`<${Dialog} title=${t('group.manage_title', { name: conv.name || '' })} onClose=${onClose} wide>
    <${Alert} error=${error} />
    <${Alert} error=${done} kind="ok" />
    ${(role === 'owner' || role === 'admin') && html`<form class="inline-form" onSubmit=${run('PATCH', '', { name: name.trim() }, t('group.renamed'))}>
      <${Field} id="rename" label=${t('group.name')} value=${name} onInput=${setName} required />
      <button type="submit">${t('group.rename')}</button>
    </form>`}
    ${role === 'owner' && html`<label class="check"><input type="checkbox" checked=${savingPublic === null ? conv.public : savingPublic}
        aria-busy=${savingPublic !== null} disabled=${savingPublic !== null} onChange=${(e) => setPublic(e.currentTarget.checked)} />
      <span>${t('group.public')}<br /><small>${t('group.public_hint')}</small></span></label>`}
    <form class="inline-form" onSubmit=${(e) => { run('POST', '/members', { user: invite.trim() }, t('group.invited'))(e); setInvite(''); }}>
      <${Field} id="invite" label=${t('group.invite')} value=${invite} onInput=${setInvite} hint=${t('chat.address_hint')} required />
      <button type="submit">${t('group.invite_button')}</button>
    </form>
    <h3>${t('group.members')}</h3>
    <ul class="member-list">
      ${members.map((m) => {
        const who = m.user || m.address;
        return html`<li key=${who}>
          <${Avatar} name=${m.nickname || who} media=${m.avatar} size=${36} />
          <span class="member-name">${m.nickname || who}<small>${who}</small></span>
          <span class="role">${t('group.role.' + m.role)}</span>
          <span class="member-actions">
            ${role === 'owner' && who !== me && m.role !== 'owner' && html`
              <button type="button" class="small" onClick=${run('PATCH', '/members/' + encodeURIComponent(who), { role: m.role === 'admin' ? 'member' : 'admin' }, t('group.role_saved'))}>
                ${m.role === 'admin' ? t('group.make_member') : t('group.make_admin')}</button>
              <button type="button" class="small" onClick=${run('POST', '/owner', { user: who }, t('group.transferred'))}>${t('group.transfer')}</button>`}
            ${who !== me && (role === 'owner' || (role === 'admin' && m.role === 'member')) && html`
              <button type="button" class="small danger" onClick=${run('DELETE', '/members/' + encodeURIComponent(who), undefined, t('group.removed'))}>${t('group.remove')}</button>`}
          </span>
        </li>`;
      })}
    </ul>
    <div class="row-actions">
      <button type="button" class="danger" onClick=${run('DELETE', '/members/' + encodeURIComponent(me), undefined, t('group.left'))}>${t('group.leave')}</button>
    </div>
    ${role === 'owner' && html`<p class="hint">${t('group.owner_leave_hint')}</p>`}
  <//>`;
}
