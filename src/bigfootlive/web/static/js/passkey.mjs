// Passkeys (WebAuthn) on our forms: `data-webauthn="create"` (enrolment) or "get" (a sign-in
// or step-up challenge), with the server's options as JSON in `data-options`. The button asks
// the browser (navigator.credentials), then the form posts the answer as JSON in `credential`.

const toBytes = (text) => {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
};

const toText = (buffer) => {
  let binary = '';
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

const descriptors = (list) => (list ?? []).map((d) => ({ ...d, id: toBytes(d.id) }));

function creationOptions(json) {
  return {
    ...json,
    challenge: toBytes(json.challenge),
    user: { ...json.user, id: toBytes(json.user.id) },
    excludeCredentials: descriptors(json.excludeCredentials),
  };
}

function requestOptions(json) {
  return { ...json, challenge: toBytes(json.challenge), allowCredentials: descriptors(json.allowCredentials) };
}

function asJson(credential) {
  const r = credential.response;
  const response = { clientDataJSON: toText(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toText(r.attestationObject);
    response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    response.authenticatorData = toText(r.authenticatorData);
    response.signature = toText(r.signature);
    if (r.userHandle) response.userHandle = toText(r.userHandle);
  }
  return {
    id: credential.id,
    rawId: toText(credential.rawId),
    type: credential.type,
    response,
    authenticatorAttachment: credential.authenticatorAttachment ?? undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

const FAILED = {
  NotAllowedError: 'The browser or the authenticator cancelled the request. Try again.',
  InvalidStateError: 'This authenticator already holds a passkey of your account.',
  SecurityError: 'Passkeys do not work on this address of the site.',
};

for (const form of document.querySelectorAll('form[data-webauthn]')) {
  const button = form.querySelector('[data-webauthn-start]');
  const status = form.querySelector('.webauthn-status');
  const say = (text) => { status.textContent = text; };
  if (!window.PublicKeyCredential || !navigator.credentials) {
    say('This browser cannot use passkeys.');
    button.disabled = true;
    continue;
  }
  const options = JSON.parse(form.dataset.options);
  const creating = form.dataset.webauthn === 'create';
  button.addEventListener('click', async () => {
    button.disabled = true;
    say('Waiting for your passkey…');
    try {
      const credential = creating
        ? await navigator.credentials.create({ publicKey: creationOptions(options) })
        : await navigator.credentials.get({ publicKey: requestOptions(options) });
      form.elements.credential.value = JSON.stringify(asJson(credential));
      say('Checking…');
      form.submit();
    } catch (error) {
      say(FAILED[error.name] ?? `The passkey did not work (${error.name}).`);
      button.disabled = false;
    }
  });
}
