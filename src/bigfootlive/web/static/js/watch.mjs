// The watch page: the hls.js player, the event's state (from the live channel chat.mjs runs)
// and the player's QoE beacons. No inline script: the page's data-* say what.
// Loaded async right after the player's bar (it runs while the rest of the page is parsed and
// laid out, not after DOMContentLoaded): the player starts before anything else, the chat (its
// modules and socket) after the first frame and the parse, so neither competes with the video's
// start. Everything it reads is above its script tag.
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
  // over: no one is watching it any more (the chat's presence still counts the open pages)
  document.getElementById('viewers').hidden = ['ended', 'cancelled'].includes(next);
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

let hlsModule = null;  // the page preloads it (modulepreload)

async function play(url) {
  if (!url) return;
  hlsModule ??= import(root.dataset.hlsModule);
  const { default: Hls } = await hlsModule;
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
  // the event's latency mode says how close to the live edge to sit (GET .../stream `player`)
  const options = JSON.parse(root.dataset.player || '{}');
  // fast start: the first fragment is fetched while the media source opens
  const player = new Hls({ enableWorker: false, startFragPrefetch: true, ...options });
  hls = player;
  player.on(Hls.Events.MANIFEST_PARSED, () => {
    quality.replaceChildren(new Option('Auto', '-1'));
    player.levels.forEach((level, index) => {
      // a single media playlist names neither: the stream as the encoder sends it
      const label = level.height ? `${level.height}p`
        : level.bitrate ? `${Math.round(level.bitrate / 1000)} kb/s` : 'Source';
      quality.append(new Option(label, String(index)));
    });
    quality.disabled = player.levels.length < 2;
    video.play().catch(afterStart);  // autoplay refused: the viewer needs the controls now
  });
  player.on(Hls.Events.ERROR, (_, data) => {
    if (!data.fatal || hls !== player) return;
    if (url !== root.dataset.vodUrl && ['ended', 'cancelled'].includes(status)) {
      hls = null;  // the live stream's files go when it ends: "ended" stays on the overlay
      setTimeout(() => player.destroy(), 0);
    } else if (data.type === Hls.ErrorTypes.NETWORK_ERROR && ['live', 'reconnecting'].includes(status)) {
      // a playlist gone (the encoder dropped) or refused: wait until it is there again
      hls = null;
      setTimeout(() => player.destroy(), 0);  // not from within its own event
      if (url === root.dataset.dvrUrl) root.dataset.dvrUrl = '';  // no DVR: the live edge only
      else if (url === root.dataset.abrUrl && retries >= 2) {
        retries = 0;  // no ladder: the stream as the encoder sends it
        root.dataset.abrUrl = '';
      } else retries += 1;
      overlay.textContent = 'Waiting for the stream…';
      startLive(Math.min(10000, 1000 * retries));
    } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      player.recoverMediaError();
    } else {
      overlay.textContent = 'The video cannot be played.';
      root.dataset.playerError = data.details;
      afterStart();
    }
  });
  player.on(Hls.Events.FRAG_LOADED, () => {
    retries = 0;
    if (status === 'live') overlay.textContent = '';
  });
  player.loadSource(url);
  player.attachMedia(video);
}

quality.addEventListener('change', () => {
  if (hls) hls.currentLevel = Number(quality.value);
});

// With a DVR window the player follows the DVR playlist: the viewer rewinds with the seek bar
// (hls.js keeps no maximum latency for it) and "Back to live" jumps to the live edge.
const goLive = document.getElementById('go-live');
goLive.addEventListener('click', () => {
  if (hls && hls.liveSyncPosition !== null) video.currentTime = hls.liveSyncPosition;
  video.play().catch(() => {});
});
video.addEventListener('timeupdate', () => {
  const edge = hls ? hls.liveSyncPosition : null;
  goLive.hidden = !(root.dataset.dvrUrl && edge !== null && video.currentTime < edge - 10);
});

// ------------------------------------------------------------------ what is there yet

// In the first seconds on air the playlists and the thumbnail are not there yet (the media
// server writes its playlist after the first fragment, the event's container its DVR copy and
// thumbnail after that). The player asks the origin for nothing that is not there (a 404 is a
// console error, and Chromium blocks one answered to the poster: ERR_BLOCKED_BY_ORB): the page
// says what was there when it was made (data-ready), GET /watch/{id}/playable what is there now
// (true, false, or null when the server cannot tell: then the player tries it).
const ready = new Set((root.dataset.ready || '').split(' ').filter(Boolean));
const PREFER_MS = 10000;  // how long the preferred playlist is waited for while a lesser one is there
const TRY_ANYWAY_MS = 30000;  // never said to be there: tried (and retried on errors) after this
let waitingSince = 0;
let waiting = false;

// the DVR playlist when there is one, else the ladder, else the stream as the encoder sends it
const playlists = () => [['dvr', root.dataset.dvrUrl], ['abr', root.dataset.abrUrl],
  ['hls', root.dataset.hlsUrl]].filter(([, url]) => url);

// the playlist to start with now, or null to wait
function startUrl() {
  const [first, ...rest] = playlists();
  if (!first) return null;
  const waited = performance.now() - waitingSince;
  if (ready.has(first[0]) || waited >= TRY_ANYWAY_MS) return first[1];
  if (waited < PREFER_MS) return null;
  return rest.find(([name]) => ready.has(name))?.[1] ?? null;
}

async function askWhatIsThere() {
  try {
    const answer = await fetch(`/watch/${eventId}/playable`, { credentials: 'same-origin' });
    if (!answer.ok) return;
    const found = await answer.json();
    for (const name of ['hls', 'abr', 'dvr', 'thumbnail']) {
      if (found[name] === false) ready.delete(name);
      else ready.add(name);
    }
  } catch { /* asked again in a moment */ }
  // the live thumbnail as the poster, until the first frame
  const thumbnail = root.dataset.thumbnailUrl;
  if (ready.has('thumbnail') && thumbnail && video.readyState < 2 && video.poster !== thumbnail) {
    video.poster = thumbnail;
  }
}

const pause = (ms) => new Promise((done) => setTimeout(done, ms));

// Plays the live stream once a playlist is there (after `delay` ms: a retry's back-off).
async function startLive(delay = 0) {
  if (waiting || hls) return;
  waiting = true;
  hlsModule ??= import(root.dataset.hlsModule);  // the page preloads it (modulepreload)
  waitingSince = performance.now();
  try {
    if (delay) {
      await pause(delay);
      await askWhatIsThere();
    }
    while (['live', 'reconnecting'].includes(status)) {
      const url = startUrl();
      if (url) {
        await play(url);
        return;
      }
      if (status === 'live') overlay.textContent = 'Waiting for the stream…';
      await pause(performance.now() - waitingSince < PREFER_MS ? 500 : 2000);
      await askWhatIsThere();
    }
  } finally {
    waiting = false;
  }
}

// ------------------------------------------------------------------ the live channel

// What waits for the first frame: the video's controls and the chat panel's modules
// (chat_tools.mjs, then chat.mjs, which opens the socket); at once when there is no video to
// wait for, after a fatal player error, and after AT_LATEST_MS in any case.
const AT_LATEST_MS = 3000;
let chatStarted = false;

function afterStart() {
  video.controls = true;
  if (chatStarted) return;
  chatStarted = true;
  const [tools, chat] = root.dataset.chatModules.split(' ');
  // this module runs mid-page: the chat's panel may not be parsed yet
  const parsed = document.readyState === 'loading'
    ? new Promise((done) => document.addEventListener('DOMContentLoaded', done, { once: true }))
    : Promise.resolve();
  parsed.then(() => import(tools)).then(() => import(chat)).catch(() => {});
}

if (status === 'live' || status === 'reconnecting') startLive();
else if (status === 'ended' && root.dataset.vodUrl) play(root.dataset.vodUrl);
if (hlsModule) {
  video.addEventListener('playing', afterStart, { once: true });
  setTimeout(afterStart, AT_LATEST_MS);
} else {
  afterStart();
}

// chat.mjs owns the event's socket and passes every server message on as `bfl:chat`: the
// stream's state follows its `system` messages, and the `welcome` after a reconnect
function onSystem(message) {
  if (message.kind === 'stream_live' || message.kind === 'stream_resumed') {
    showState('live', '');
    startLive();
  } else if (message.kind === 'stream_reconnecting') {
    showState('reconnecting', 'Reconnecting to the streamer…');
  } else if (message.kind === 'stream_ended') {
    showState('ended', 'This event has ended.');
  }
}

document.addEventListener('bfl:chat', (event) => {
  const message = event.detail;
  if (message.type === 'system') onSystem(message);
  else if (message.type === 'welcome' && message.event_status && message.event_status !== status
    && STATE_TEXT[message.event_status]) {
    // what changed while the socket was away (a reconnect, a page left open)
    if (message.event_status === 'live' && !hls) { showState('live', ''); startLive(); }
    else if (message.event_status === 'reconnecting') showState('reconnecting', 'Reconnecting to the streamer…');
    else if (message.event_status === 'ended') showState('ended', 'This event has ended.');
  }
});
