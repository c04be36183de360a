/* global document */
// Times in the viewer's own time zone and locale. Without this script the
// server's text stands: the page language's format, in the zone the filter
// form last told it (UTC at first). The form learns the zone here.
(() => {
  const locale = document.documentElement.lang === 'nl' ? 'nl-NL' : 'en-GB';
  const format = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'medium' });
  for (const el of document.querySelectorAll('time[data-local]')) {
    const at = new Date(el.getAttribute('datetime'));
    if (!Number.isNaN(at.getTime())) {
      el.textContent = format.format(at);
      el.title = el.getAttribute('datetime');
    }
  }
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  for (const input of document.querySelectorAll('input[data-fill="time-zone"]')) if (!input.value && zone) input.value = zone;
  for (const el of document.querySelectorAll('[data-testid="audit-time-zone"][data-zone-text]')) el.textContent = el.dataset.zoneText.replace('{zone}', zone);
})();
