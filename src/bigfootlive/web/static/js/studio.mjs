// The studio's event page: copy buttons for the encoder settings, the live preview and players
// for the recordings (HLS through hls.js; recordings load when their list arrives by htmx).
const copyStatus = document.getElementById('copy-status');

document.addEventListener('click', async (event) => {
  const button = event.target.closest?.('button[data-copy]');
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(source.value ?? source.textContent);
    copyStatus.textContent = 'Copied.';
  } catch {
    source.select?.();
    copyStatus.textContent = 'Select and copy it (the browser refused the clipboard).';
  }
});

const recordings = document.getElementById('recordings');

async function attach(video) {
  if (video.dataset.attached) return;
  video.dataset.attached = 'true';
  const url = video.dataset.src;
  const { default: Hls } = await import(recordings.dataset.hlsModule);
  if (Hls.isSupported()) {
    const hls = new Hls({ enableWorker: false });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = url;
  }
}

function attachAll() {
  document.querySelectorAll('video[data-src]').forEach(attach);  // the preview, the recordings
}

document.addEventListener('htmx:afterSwap', attachAll);
attachAll();
