// The chat's tools, on the watch page and the studio's event page alike: replies, reactions
// (the watch page's) and, for moderators, delete / time out / ban and slow mode. chat.mjs owns
// the socket: it passes every server message on as a `bfl:chat` event and sends what this module
// asks for with `bfl:send`. Moderation goes through the watch page's routes
// (/watch/{id}/chat/...), which call the chat moderation service the API calls.
const root = document.getElementById('chat');
const eventId = root.dataset.eventId;
const me = root.dataset.userId;
const moderator = root.dataset.moderator === 'true';
const list = document.getElementById('chat-messages');
const form = document.getElementById('chat-form');
const input = document.getElementById('chat-input');
const chatError = document.getElementById('chat-error');
const banner = document.getElementById('reply-banner');
const bannerText = document.getElementById('reply-text');
const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content ?? '';

function showError(text) {
  chatError.textContent = text;
  chatError.hidden = false;
}

async function moderate(path, body) {
  const answer = await fetch(`/watch/${eventId}/chat/${path}`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRF-Token': csrfToken() },
    body: JSON.stringify(body ?? {}),
  }).catch(() => null);
  if (!answer) { showError('The server could not be reached.'); return null; }
  if (!answer.ok) {
    const problem = await answer.json().catch(() => null);
    showError(problem?.error?.message ?? `Refused (${answer.status}).`);
    return null;
  }
  chatError.hidden = true;
  return answer.status === 204 ? {} : answer.json();
}

function tool(label, text, onClick) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'link tool';
  button.textContent = text;
  button.setAttribute('aria-label', label);
  button.addEventListener('click', onClick);
  return button;
}

function replyTo(item) {
  form.dataset.replyTo = item.dataset.id;
  const snippet = item.querySelector('.body')?.textContent ?? '';
  bannerText.textContent = `Replying to ${item.dataset.author}: ${snippet.slice(0, 60)}`;
  banner.hidden = false;
  input.focus();
}

function clearReply() {
  delete form.dataset.replyTo;
  banner.hidden = true;
}

function decorate(item) {
  if (!(item instanceof HTMLLIElement) || item.querySelector('.tools')) return;
  const author = item.dataset.author || 'someone';
  const tools = document.createElement('span');
  tools.className = 'tools';
  if (me) tools.append(tool(`Reply to ${author}`, 'Reply', () => replyTo(item)));
  if (moderator) {
    tools.append(tool(`Delete the message from ${author}`, 'Delete',
      () => moderate(`${item.dataset.id}/delete`)));
    const target = item.dataset.userId;
    if (target && target !== me) {
      tools.append(tool(`Time out ${author} for 5 minutes`, 'Time out',
        async () => { if (await moderate(`timeouts/${target}`, { seconds: 300 })) showError(`${author} is timed out for 5 minutes.`); }));
      tools.append(tool(`Ban ${author} from this chat`, 'Ban',
        async () => { if (await moderate(`bans/${target}`, {})) showError(`${author} is banned from this chat.`); }));
    }
  }
  if (tools.childElementCount) item.append(tools);
}

list.querySelectorAll('li').forEach(decorate);
new MutationObserver((changes) => {
  changes.forEach((change) => change.addedNodes.forEach(decorate));
}).observe(list, { childList: true });

document.getElementById('reply-cancel').addEventListener('click', clearReply);
document.addEventListener('bfl:sent', clearReply);

// ------------------------------------------------------------------ reactions

const totals = {};
document.querySelectorAll('#reactions .reaction').forEach((button) => {
  button.addEventListener('click', () => {
    document.dispatchEvent(new CustomEvent('bfl:send', { detail: { type: 'react', kind: button.dataset.kind } }));
  });
});

function onReactions(counts) {
  Object.entries(counts).forEach(([kind, n]) => {
    totals[kind] = (totals[kind] ?? 0) + n;
    const shown = document.getElementById(`reaction-${kind}`);
    if (shown) shown.textContent = String(totals[kind]);
  });
}

// ------------------------------------------------------------------ slow mode

const slowState = document.getElementById('slow-mode-state');
const slowForm = document.getElementById('slow-mode-form');

function showSlowMode(seconds) {
  if (!slowState) return;
  slowState.textContent = seconds ? `Slow mode: ${seconds} s` : 'Slow mode off';
}

slowForm?.addEventListener('submit', async (event) => {
  event.preventDefault();
  const seconds = Number(document.getElementById('slow-mode').value);
  const room = await moderate('slow-mode', { seconds });
  if (room) showSlowMode(room.slow_mode_seconds);
});

document.addEventListener('bfl:chat', (event) => {
  const message = event.detail;
  if (message.type === 'reactions') onReactions(message.counts);
  else if (message.type === 'room') showSlowMode(message.slow_mode_seconds);
  else if (message.type === 'welcome') {
    const reactions = document.getElementById('reactions');
    if (reactions) reactions.hidden = message.read_only;
  } else if (message.type === 'moderation' && message.user_id === me && message.action === 'timeout') {
    showError(`You are timed out until ${new Date(message.until).toLocaleTimeString()}.`);
  }
});
