// The single sign-on hand-off page: go on to the organisation's sign-in page at once (the
// link stays on the page for browsers without scripts).
const link = document.getElementById('sso-continue');
if (link) {
  window.location.assign(link.href);
}
