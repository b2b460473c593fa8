// Small settings: the language switch and desktop notifications (off until turned on).

import { html, useState } from './ui.js';
import { t, language, LANGUAGES } from './i18n.js';

/** A select between the catalogued languages. */
export function LanguageSwitch({ onChange }) {
  return html`<label class="lang-switch">
    <span class="visually-hidden">${t('settings.language')}</span>
    <select value=${language()} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${LANGUAGES.map((l) => html`<option value=${l} selected=${l === language()}>${t('language.' + l)}</option>`)}
    </select>
  </label>`;
}

/** Turns desktop notifications on (asking the browser) or off. */
export function NotificationToggle({ store }) {
  const [on, setOn] = useState(store.notify);
  const supported = typeof Notification !== 'undefined';
  const toggle = async (e) => {
    const want = e.currentTarget.checked;
    if (want && supported && Notification.permission !== 'granted') {
      const p = await Notification.requestPermission();
      if (p !== 'granted') {
        setOn(false);
        store.notify = false;
        return;
      }
    }
    store.notify = want;
    setOn(want);
  };
  return html`<label class="check"><input type="checkbox" checked=${on} disabled=${!supported} onChange=${toggle} />
    <span>${t('settings.notifications')}<br /><small>${t('settings.notifications_hint')}</small></span></label>`;
}
