// Latchkey's passkey pages: runs the WebAuthn ceremony in the browser with
// @simplewebauthn/browser (served beside this file as /static/webauthn.js) and
// posts the authenticator's answer as a plain form. No inline script: the CSP
// allows scripts from this origin only. Each form looks like
//   <form data-passkey="register|authenticate|signin" data-options="{…json…}">
//     <input type="hidden" name="response">  <button data-passkey-start hidden>
// and the page's [data-passkey-error] paragraph is shown when the browser or
// the person says no.
/* global window, document */
(function () {
  'use strict';
  var lib = window.SimpleWebAuthnBrowser;
  var forms = document.querySelectorAll('form[data-passkey]');
  if (!forms.length) return;

  function showError(form, name) {
    var box = document.querySelector('[data-passkey-error]');
    if (!box) return;
    var text = box.getAttribute('data-text-' + name) || box.getAttribute('data-text-failed');
    if (text) box.textContent = text;
    box.hidden = false;
    if (box.focus) box.focus();
    form.removeAttribute('data-busy');
  }

  function submit(form, result) {
    form.querySelector('input[name="response"]').value = JSON.stringify(result);
    form.submit();
  }

  function run(form, autofill) {
    var kind = form.getAttribute('data-passkey');
    var optionsJSON;
    try {
      optionsJSON = JSON.parse(form.getAttribute('data-options'));
    } catch {
      return showError(form, 'failed');
    }
    if (!autofill) form.setAttribute('data-busy', '');
    var ceremony =
      kind === 'register'
        ? lib.startRegistration({ optionsJSON: optionsJSON })
        : lib.startAuthentication({ optionsJSON: optionsJSON, useBrowserAutofill: !!autofill });
    ceremony.then(
      function (result) {
        submit(form, result);
      },
      function (err) {
        // A conditional request ends quietly when the person signs in another way.
        if (autofill) return;
        showError(form, err && err.name === 'NotAllowedError' ? 'cancelled' : 'failed');
      },
    );
  }

  var supported = !!(lib && lib.browserSupportsWebAuthn());
  Array.prototype.forEach.call(forms, function (form) {
    var start = form.querySelector('[data-passkey-start]');
    var unsupported = document.querySelector('[data-passkey-unsupported]');
    if (!supported) {
      if (unsupported) unsupported.hidden = false;
      return;
    }
    if (start) {
      start.hidden = false;
      start.addEventListener('click', function (event) {
        event.preventDefault();
        if (!form.hasAttribute('data-busy')) run(form, false);
      });
    }
    // The login page: offer the passkeys in the email field's autofill where the browser can.
    if (form.getAttribute('data-passkey') === 'signin' && form.hasAttribute('data-autofill')) {
      lib.browserSupportsWebAuthnAutofill().then(function (yes) {
        if (yes) run(form, true);
      });
    }
  });
})();
