// Every page: htmx requests carry the CSRF token of the page.
const token = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

export function csrfToken() {
  return token;
}

document.addEventListener('htmx:configRequest', (event) => {
  event.detail.headers['X-CSRF-Token'] = token;
});
