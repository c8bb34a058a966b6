// The chat panel (templates/_chat.html) of the watch page and of the studio's event page: the
// event's chat over the WebSocket protocol (docs/realtime.md): messages, deletions, the viewer
// count (`presence`), resume after a reconnect and the composer for those who may chat. It owns
// the socket: every server message goes out as a `bfl:chat` event (chat_tools.mjs, the watch
// page's player listen), and client messages asked for with `bfl:send` go through it.
const root = document.getElementById('chat');
const eventId = root.dataset.eventId;
const list = document.getElementById('chat-messages');
const chatStatus = document.getElementById('chat-status');
const form = document.getElementById('chat-form');
const input = document.getElementById('chat-input');
const chatError = document.getElementById('chat-error');
let socket = null;
let lastId = list.lastElementChild?.dataset.id ?? null;  // the page's recent messages
let attempts = 0;
let refs = 0;

function addMessage(message) {
  if (document.getElementById(`m-${message.id}`)) return;  // a resume overlaps broadcasts
  const item = document.createElement('li');
  item.id = `m-${message.id}`;
  item.dataset.id = message.id;
  const author = document.createElement('span');
  author.className = 'author';
  author.textContent = typeof message.author === 'string' && message.author ? message.author : 'someone';
  const body = document.createElement('span');
  body.className = 'body';
  body.textContent = message.body;
  item.dataset.userId = message.user_id ?? '';
  item.dataset.author = author.textContent;
  if (message.reply_to) {  // chat_tools.mjs links it to the message it answers
    const to = document.createElement('a');
    to.className = 'reply-to';
    to.href = `#m-${message.reply_to}`;
    to.textContent = `↪ ${document.getElementById(`m-${message.reply_to}`)?.dataset.author ?? 'a message'}`;
    item.append(to, ' ');
  }
  item.append(author, body);
  list.append(item);
  list.scrollTop = list.scrollHeight;
  lastId = message.id;
}

function handle(message) {
  switch (message.type) {
    case 'welcome':
      attempts = 0;
      chatStatus.textContent = message.read_only ? 'Connected, read-only.' : 'Connected.';  // #chat-signin says how to write
      form.hidden = message.read_only;
      if (lastId) socket.send(JSON.stringify({ type: 'resume', last_id: lastId }));
      break;
    case 'message': addMessage(message.message); break;
    case 'history': message.messages.forEach(addMessage); break;
    case 'deleted': document.getElementById(`m-${message.message_id}`)?.remove(); break;
    case 'presence': {
      const viewers = document.getElementById('viewer-count');
      if (viewers) viewers.textContent = String(message.viewers);
      document.getElementById('chat-viewers')?.removeAttribute('hidden');  // the studio's, once known
      break;
    }
    case 'ping': socket.send(JSON.stringify({ type: 'pong' })); break;
    case 'error':
      chatError.textContent = message.message;
      chatError.hidden = false;
      break;
    case 'ack': chatError.hidden = true; break;
    default: break;
  }
  document.dispatchEvent(new CustomEvent('bfl:chat', { detail: message }));
}

document.addEventListener('bfl:send', (event) => {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(event.detail));
});

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  socket = new WebSocket(`${scheme}//${location.host}/ws/events/${eventId}`, ['bigfootlive.v1']);
  socket.addEventListener('message', (frame) => {
    let messages;
    try { messages = JSON.parse(frame.data); } catch { return; }
    (Array.isArray(messages) ? messages : [messages]).forEach(handle);
  });
  socket.addEventListener('close', async (closed) => {
    form.hidden = true;
    if ([4403, 4404, 4405, 4406, 4411].includes(closed.code)) {
      // 4411: the event has ended (anonymous viewers); the page keeps its own ended state
      chatStatus.textContent = closed.code === 4405 || closed.code === 4406
        ? 'You are banned from this chat.'
        : closed.code === 4411 ? 'The chat is closed.' : 'The chat is not available.';
      return;
    }
    chatStatus.textContent = 'Reconnecting…';
    if (closed.code === 4401) await fetch('/session', { credentials: 'same-origin' }).catch(() => {});
    attempts += 1;
    setTimeout(connect, Math.min(30000, 500 * 2 ** Math.min(attempts, 6)));
  });
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const body = input.value.trim();
  if (!body || !socket || socket.readyState !== WebSocket.OPEN) return;
  refs += 1;
  const frame = { type: 'send', body, ref: `r${refs}` };
  if (form.dataset.replyTo) frame.reply_to = form.dataset.replyTo;
  socket.send(JSON.stringify(frame));
  input.value = '';
  document.dispatchEvent(new CustomEvent('bfl:sent'));
});

if (root.dataset.status !== 'cancelled') connect();
else chatStatus.textContent = 'The chat is closed.';
