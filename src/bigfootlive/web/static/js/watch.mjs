// The watch page: the hls.js player, the event's state, the chat over the WebSocket protocol
// (docs/realtime.md) and the player's QoE beacons. No inline script: the page's data-* say what.
const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content ?? '';

const root = document.getElementById('watch');
const eventId = root.dataset.eventId;
const video = document.getElementById('video');
const overlay = document.getElementById('overlay');
const badge = document.getElementById('state-badge');
const quality = document.getElementById('quality');
const navigationStart = performance.now();

const STATE_TEXT = {
  scheduled: 'Not started yet', ready: 'Not started yet', live: 'Live',
  reconnecting: 'Reconnecting', ended: 'Ended', cancelled: 'Cancelled',
};
let status = root.dataset.status;
let hls = null;
let retries = 0;

function showState(next, message) {
  status = next;
  root.dataset.status = next;
  badge.textContent = STATE_TEXT[next] ?? next;
  badge.className = `badge ${next}`;
  overlay.textContent = message ?? '';
}

// ------------------------------------------------------------------ QoE beacons

const viewerId = (() => {
  let id = sessionStorage.getItem('bfl-viewer');
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    sessionStorage.setItem('bfl-viewer', id);
  }
  return id;
})();
const qoe = { started: false, watchedMs: 0, rebufferMs: 0, rebuffers: 0, stallAt: null, lastTick: null };

function sendBeacons(beacons) {
  return fetch(`/watch/${eventId}/beacons`, {
    method: 'POST',
    keepalive: true,
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
    body: JSON.stringify({ viewer_id: viewerId, beacons }),
  }).catch(() => {});
}

function bitrateKbps() {
  if (!hls || hls.currentLevel < 0 || !hls.levels[hls.currentLevel]) return null;
  return Math.round(hls.levels[hls.currentLevel].bitrate / 1000);
}

function tick() {
  const now = performance.now();
  if (qoe.lastTick !== null && !video.paused && qoe.stallAt === null) qoe.watchedMs += now - qoe.lastTick;
  qoe.lastTick = now;
}

video.addEventListener('playing', () => {
  if (qoe.stallAt !== null) {
    qoe.rebufferMs += performance.now() - qoe.stallAt;
    qoe.stallAt = null;
  }
  if (!qoe.started) {
    qoe.started = true;
    const startup = Math.min(120000, Math.round(performance.now() - navigationStart));
    sendBeacons([{ type: 'start', startup_ms: startup }]);
  }
  qoe.lastTick = performance.now();
});
video.addEventListener('waiting', () => {
  tick();
  if (qoe.started && qoe.stallAt === null) {
    qoe.stallAt = performance.now();
    qoe.rebuffers += 1;
  }
});
video.addEventListener('pause', tick);

function heartbeat() {
  if (!qoe.started) return;
  tick();
  const beacon = {
    type: 'heartbeat',
    watched_ms: Math.min(120000, Math.round(qoe.watchedMs)),
    rebuffer_ms: Math.min(120000, Math.round(qoe.rebufferMs)),
    rebuffer_count: Math.min(1000, qoe.rebuffers),
  };
  const kbps = bitrateKbps();
  if (kbps !== null) beacon.bitrate_kbps = kbps;
  qoe.watchedMs = 0; qoe.rebufferMs = 0; qoe.rebuffers = 0;
  sendBeacons([beacon]);
}
setInterval(heartbeat, 15000);
window.addEventListener('pagehide', () => {
  if (!qoe.started) return;
  tick();
  sendBeacons([{ type: 'stop', watched_ms: Math.min(120000, Math.round(qoe.watchedMs)) }]);
});

// ------------------------------------------------------------------ player

async function play(url) {
  if (!url) return;
  const { default: Hls } = await import(root.dataset.hlsModule);
  if (hls) hls.destroy();
  if (!Hls.isSupported()) {
    if (video.canPlayType('application/vnd.apple.mpegurl')) {  // Safari plays HLS itself
      video.src = url;
      video.play().catch(() => {});
    } else {
      overlay.textContent = 'This browser cannot play the stream.';
    }
    return;
  }
  const low = root.dataset.latency !== 'normal';
  hls = new Hls({ enableWorker: false, lowLatencyMode: low, liveSyncDurationCount: low ? 2 : 3 });
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    quality.replaceChildren(new Option('Auto', '-1'));
    hls.levels.forEach((level, index) => {
      const label = level.height ? `${level.height}p` : `${Math.round(level.bitrate / 1000)} kb/s`;
      quality.append(new Option(label, String(index)));
    });
    quality.disabled = hls.levels.length < 2;
    video.play().catch(() => {});
  });
  hls.on(Hls.Events.ERROR, (_, data) => {
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR && ['live', 'reconnecting'].includes(status)) {
      // the playlist appears a moment after the encoder connects, and comes back after a drop
      overlay.textContent = 'Waiting for the stream…';
      retries += 1;
      setTimeout(() => play(url), Math.min(10000, 1000 * retries));
    } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      hls.recoverMediaError();
    } else {
      overlay.textContent = 'The video cannot be played.';
      root.dataset.playerError = data.details;
    }
  });
  hls.on(Hls.Events.FRAG_LOADED, () => {
    retries = 0;
    if (status === 'live') overlay.textContent = '';
  });
  hls.loadSource(url);
  hls.attachMedia(video);
}

quality.addEventListener('change', () => {
  if (hls) hls.currentLevel = Number(quality.value);
});

if (status === 'live' || status === 'reconnecting') play(root.dataset.hlsUrl);
else if (status === 'ended' && root.dataset.vodUrl) play(root.dataset.vodUrl);

// ------------------------------------------------------------------ chat

const list = document.getElementById('chat-messages');
const chatStatus = document.getElementById('chat-status');
const form = document.getElementById('chat-form');
const input = document.getElementById('chat-input');
const chatError = document.getElementById('chat-error');
const viewers = document.getElementById('viewer-count');
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
  item.append(author, body);
  list.append(item);
  list.scrollTop = list.scrollHeight;
  lastId = message.id;
}

function onSystem(message) {
  if (message.kind === 'stream_live' || message.kind === 'stream_resumed') {
    showState('live', '');
    if (!hls) play(root.dataset.hlsUrl);
  } else if (message.kind === 'stream_reconnecting') {
    showState('reconnecting', 'Reconnecting to the streamer…');
  } else if (message.kind === 'stream_ended') {
    showState('ended', 'This event has ended.');
  }
}

function handle(message) {
  switch (message.type) {
    case 'welcome':
      attempts = 0;
      chatStatus.textContent = message.read_only ? 'Read-only: sign in to chat.' : 'Connected.';
      form.hidden = message.read_only;
      if (message.event_status && message.event_status !== status && STATE_TEXT[message.event_status]) {
        if (message.event_status === 'live' && !hls) { showState('live', ''); play(root.dataset.hlsUrl); }
      }
      if (lastId) socket.send(JSON.stringify({ type: 'resume', last_id: lastId }));
      break;
    case 'message': addMessage(message.message); break;
    case 'history': message.messages.forEach(addMessage); break;
    case 'deleted': document.getElementById(`m-${message.message_id}`)?.remove(); break;
    case 'presence': viewers.textContent = String(message.viewers); break;
    case 'system': onSystem(message); break;
    case 'ping': socket.send(JSON.stringify({ type: 'pong' })); break;
    case 'error':
      chatError.textContent = message.message;
      chatError.hidden = false;
      break;
    case 'ack': chatError.hidden = true; break;
    default: break;
  }
}

async function connect() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  socket = new WebSocket(`${scheme}//${location.host}/ws/events/${eventId}`, ['bigfootlive.v1']);
  socket.addEventListener('message', (frame) => {
    let messages;
    try { messages = JSON.parse(frame.data); } catch { return; }
    (Array.isArray(messages) ? messages : [messages]).forEach(handle);
  });
  socket.addEventListener('close', async (closed) => {
    form.hidden = true;
    if ([4403, 4404, 4405, 4406].includes(closed.code)) {
      chatStatus.textContent = closed.code === 4405 || closed.code === 4406
        ? 'You are banned from this chat.' : 'The chat is not available.';
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
  socket.send(JSON.stringify({ type: 'send', body, ref: `r${refs}` }));
  input.value = '';
});

if (status !== 'cancelled') connect();
else chatStatus.textContent = 'The chat is closed.';
