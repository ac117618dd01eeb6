// The sign-in page's "Sign in with a passkey" button, wired to django-allauth's WebAuthn login
// (allauth's own snippet configures it with an inline JSON block, which the portal's CSP test forbids).
document.addEventListener('DOMContentLoaded', function () {
  if (document.getElementById('passkey_login') && window.allauth && window.allauth.webauthn) {
    window.allauth.webauthn.forms.loginForm({ ids: { login: 'passkey_login', credential: 'mfa_credential' } })
  }
})
