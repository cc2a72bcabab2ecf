// views/auth.js: log in and register. The token the API returns goes to
// sessionStorage (gone when the tab closes), the email stays for the next
// login after an expiry.

import { h, replace } from '../dom.js';
import { api, session } from '../api.js';
import { showError, clearError } from '../ui.js';

export function render(main, ctx, mode, onLoggedIn) {
  const register = mode === 'register';
  const email = h('input', { id: 'email', name: 'email', type: 'email', required: true, autocomplete: 'email', value: session.email, maxlength: 254 });
  const password = h('input', {
    id: 'password', name: 'password', type: 'password', required: true,
    autocomplete: register ? 'new-password' : 'current-password', minlength: register ? 8 : null, maxlength: 256,
  });
  const errors = h('div', { class: 'form-error' });
  const submit = h('button', { class: 'btn primary', type: 'submit' }, register ? 'Create account' : 'Log in');
  const flash = ctx.flash ? h('div', { class: `alert ${ctx.flash.kind}`, role: 'status' }, h('div', { class: 'msg' }, ctx.flash.message)) : null;

  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'auth-title' },
    flash ? h('div', { class: 'form-error' }, flash) : null,
    errors,
    h('div', { class: 'field' }, h('label', { for: 'email' }, 'Email'), email),
    h('div', { class: 'field' },
      h('label', { for: 'password' }, 'Password'), password,
      register ? h('span', { class: 'hint' }, 'At least 8 characters.') : null),
    h('div', { class: 'actions' }, submit));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearError(errors);
    if (!form.checkValidity()) {
      form.reportValidity();
      return;
    }
    submit.disabled = true;
    try {
      const body = { email: email.value.trim(), password: password.value };
      const r = await api.post(register ? '/auth/register' : '/auth/login', body, { auth: false });
      session.start(r.accessToken, r.user.email);
      onLoggedIn(r.user);
    } catch (err) {
      showError(errors, err, { login: !register });
      submit.disabled = false;
      password.select();
    }
  });

  replace(main, h('div', { class: 'auth' },
    h('h1', { id: 'auth-title', tabindex: '-1' }, register ? 'Create your account' : 'Log in to CryptoVPS'),
    h('p', { class: 'lead' }, register
      ? 'An email and a password are all it takes. No KYC.' + (ctx.sandbox ? ' Sandbox accounts start with a free credit.' : '')
      : 'Cloud servers by the hour, paid with crypto.'),
    form,
    h('p', { class: 'switch' }, register
      ? ['Already have an account? ', h('a', { href: '#/login' }, 'Log in')]
      : ['New here? ', h('a', { href: '#/register' }, 'Create an account')])));
  (session.email && !register ? password : email).focus();
  return null;
}
