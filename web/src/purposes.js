// Asking for an optional purpose (photos, microphone, camera, …) at the moment it is needed,
// in the policy's own words (the node's description of the purpose). Saying no leaves
// everything else working.

import { html, Dialog } from './ui.js';
import { t } from './i18n.js';
import * as api from './api.js';

/**
 * Resolves true when `purpose` is granted (already, or now by the person), false otherwise.
 * `show` receives `{view}` to draw the question, then null.
 * @param {string} purpose
 * @param {(v: any) => void} show
 */
export async function askPurpose(purpose, show) {
  const r = await api.call('GET', '/api/v1/me/consents');
  const c = r.consents.find((x) => x.purpose === purpose);
  if (!c) return false;
  if (c.granted) return true;
  return new Promise((resolve) => {
    const done = async (grant) => {
      show(null);
      if (!grant) return resolve(false);
      try {
        await api.call('PUT', `/api/v1/me/consents/${purpose}`, { granted: true });
        resolve(true);
      } catch {
        resolve(false);
      }
    };
    show({
      view: html`<${Dialog} title=${t('purpose.ask_title', { purpose: t('purpose.' + purpose) })} onClose=${() => done(false)}>
        <p class="purpose-words">${c.description}</p>
        <p class="hint">${t('purpose.ask_hint')}</p>
        <div class="row-actions">
          <button type="button" onClick=${() => done(false)}>${t('purpose.not_now')}</button>
          <button type="button" class="primary" onClick=${() => done(true)}>${t('purpose.allow')}</button>
        </div>
      <//>`,
    });
  });
}
