/* global document, navigator */
// The recovery codes page: a "copy" button (shown only when the browser can copy).
for (const button of document.querySelectorAll('[data-copy]')) {
  if (!navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener('click', () => {
    navigator.clipboard.writeText(button.dataset.copy).then(() => button.setAttribute('aria-pressed', 'true'));
  });
}
