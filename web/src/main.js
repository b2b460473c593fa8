// Start-up: load the catalogue of the person's language, then draw the client.

import { html, render } from './ui.js';
import { initialLanguage, loadLanguage, t } from './i18n.js';
import { Store } from './state.js';
import { App } from './app.js';

async function main() {
  await loadLanguage(initialLanguage());
  document.title = t('app.title');
  document.documentElement.dataset.title = t('app.title');
  const store = new Store();
  // For the browser tests' figures (draw time of live messages); nothing secret is on it.
  /** @type {any} */ (window).shanliao = { store };
  const root = document.getElementById('app');
  if (root) render(html`<${App} store=${store} />`, root);
}

main();
