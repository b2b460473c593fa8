// Setting and removing one's avatar in the profile screen: an image is uploaded like a photo
// (the photos purpose asked for first, metadata stripped by the node) and named in
// PATCH /api/v1/me; removing sends null. The nodes that hold the person fetch it from here.

import { html, useState, Alert, Avatar } from './ui.js';
import { t } from './i18n.js';
import * as api from './api.js';
import { askPurpose, refusedText } from './purposes.js';

/** The current avatar with "choose a picture" and "remove". */
export function AvatarPicker({ store }) {
  const me = store.me;
  const [busy, setBusy] = useState(false);
  const [ask, setAsk] = useState(/** @type {any} */ (null));
  const [msg, setMsg] = useState(/** @type {any} */ (null));
  const [ok, setOk] = useState(false);
  const say = (/** @type {any} */ m, /** @type {boolean} */ good) => {
    setMsg(m);
    setOk(good);
  };
  const save = async (/** @type {string|null} */ avatar) => {
    store.me = await api.call('PATCH', '/api/v1/me', { avatar });
    store.changed();
  };
  const choose = async (/** @type {Event} */ e) => {
    const input = /** @type {HTMLInputElement} */ (e.currentTarget);
    const file = input.files && input.files[0];
    input.value = '';
    if (!file) return;
    setMsg(null);
    if (!(await askPurpose('photos', setAsk))) {
      say(refusedText('photos'), false);
      return;
    }
    setBusy(true);
    try {
      const r = await api.upload(file, () => {});
      await save(r.media_id);
      say(t('avatar.saved'), true);
    } catch (err) {
      say(err, false);
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    setMsg(null);
    setBusy(true);
    try {
      await save(null);
      say(t('avatar.removed'), true);
    } catch (err) {
      say(err, false);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="field avatar-picker" aria-busy=${busy}>
    <span class="label">${t('avatar.title')}</span>
    <div class="row-actions">
      <${Avatar} name=${me.nickname} media=${me.avatar} size=${96} />
      <label class="button">${t('avatar.choose')}
        <input type="file" accept="image/jpeg,image/png,image/gif,image/webp" class="visually-hidden" disabled=${busy} onChange=${choose} />
      </label>
      ${me.avatar && html`<button type="button" disabled=${busy} onClick=${remove}>${t('avatar.remove')}</button>`}
    </div>
    <p class="hint">${t('avatar.hint')}</p>
    <${Alert} error=${msg} kind=${ok ? 'ok' : 'error'} />
    ${ask && ask.view}
  </div>`;
}
