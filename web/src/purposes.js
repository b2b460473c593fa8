// The optional purposes as the node describes them (its title and description of each, in the
// language the client shows, with the policy version they go with), and asking for one at the
// moment it is needed in those words. Saying no leaves everything else working. The client
// keeps no words of its own for a purpose.

import { html, Dialog } from './ui.js';
import { t, policyLanguage } from './i18n.js';
import * as api from './api.js';

/** The node's last answer per language, so a refusal can name the purpose it asked for. */
const known = new Map();

/**
 * Every purpose with its state and the node's words, in the current language:
 * `{language, policy_version, consents: [{purpose, title, description, sensitive, granted, since, history}]}`.
 * @returns {Promise<any>}
 */
export async function loadPurposes() {
  const lang = policyLanguage();
  const r = await api.call('GET', `/api/v1/me/consents?lang=${lang}`);
  known.set(lang, r);
  return r;
}

/** The path the privacy centre loads (the same answer as loadPurposes). */
export function purposesPath() {
  return `/api/v1/me/consents?lang=${policyLanguage()}`;
}

/**
 * The node's name for `purpose` in the current language, from its last answer; the purpose's
 * wire name if none has been loaded.
 * @param {string} purpose
 */
export function purposeTitle(purpose) {
  const r = known.get(policyLanguage());
  const c = r && r.consents.find((x) => x.purpose === purpose);
  return c ? c.title : purpose;
}

/** The words for a refused purpose: it was not allowed, and where to allow it. */
export function refusedText(purpose) {
  return t('purpose.refused', { purpose: purposeTitle(purpose) });
}

/**
 * Resolves true when `purpose` is granted (already, or now by the person), false otherwise.
 * `show` receives `{view}` to draw the question, then null.
 * @param {string} purpose
 * @param {(v: any) => void} show
 */
export async function askPurpose(purpose, show) {
  const r = await loadPurposes();
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
      view: html`<${Dialog} title=${t('purpose.ask_title', { purpose: c.title })} onClose=${() => done(false)}>
        <p class="purpose-words">${c.description}</p>
        <p class="meta">${t('purpose.policy_version', { version: r.policy_version })}</p>
        <p class="hint">${t('purpose.ask_hint')}</p>
        <div class="row-actions">
          <button type="button" onClick=${() => done(false)}>${t('purpose.not_now')}</button>
          <button type="button" class="primary" onClick=${() => done(true)}>${t('purpose.allow')}</button>
        </div>
      <//>`,
    });
  });
}
