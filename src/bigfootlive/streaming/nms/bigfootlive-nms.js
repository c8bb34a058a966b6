#!/usr/bin/env node
// Node Media Server (npm `node-media-server` 4.x, pinned in package.json) with BigfootLive's
// publish and play decisions. NMS has no HTTP callback that can refuse a session before media
// flows (its `notify.url` POSTs after the fact and would carry our credential in its URL), so
// this script listens to its events and asks BigfootLive's callback API
// (POST /api/streaming/hooks/node-media-server, credential in the X-API-Key header):
//
// - prePublish: the publisher's socket is paused until BigfootLive answers; refused -> closed.
// - prePlay: what NMS sends the player (GOP cache, live packets) is held until BigfootLive
//   answers; refused -> closed before a byte of media reaches it.
// - the publisher's connection closing (and NMS's donePublish, which v4 delays by its 30 s
//   resume grace) -> one `donePublish` callback; donePlay -> `donePlay`.
//
// Settings (environment; secrets never on the command line, never logged):
//   BFL_NMS_CALLBACK_URL  BigfootLive's hook URL (required)
//   BFL_NMS_API_KEY       BigfootLive API key sent as X-API-Key (required)
//   BFL_NMS_BIND          listen address (default 127.0.0.1)
//   BFL_NMS_RTMP_PORT     RTMP port (default 1935)
//   BFL_NMS_HTTP_PORT     HTTP-FLV / WS-FLV and NMS REST API port (default 8000)
//   BFL_NMS_API_SECRET    HS256 secret of NMS's REST API (/api/v1, used to kick publishers);
//                         empty: the REST API is off
//   BFL_NMS_DATA_DIR      NMS's own store (default ./var/nms)
//   BFL_NMS_TIMEOUT_MS    callback timeout (default 5000; no answer = refused)
// node-media-server is resolved through NODE_PATH (scripts/bootstrap installs it in
// .tools/nms/node_modules).
"use strict";

const NodeMediaServer = require("node-media-server");
const nmsLogger = require("node-media-server/src/core/logger.js");

const env = process.env;
const callbackUrl = env.BFL_NMS_CALLBACK_URL || "";
const apiKey = env.BFL_NMS_API_KEY || "";
const timeoutMs = Number(env.BFL_NMS_TIMEOUT_MS || 5000);
if (!callbackUrl || !apiKey) {
  console.error("bigfootlive-nms: BFL_NMS_CALLBACK_URL and BFL_NMS_API_KEY are required");
  process.exit(2);
}

function log(event, fields) {
  console.log(JSON.stringify({ event, ...fields, at: new Date().toISOString() }));
}

// What BigfootLive's node-media-server adapter reads: NMS's own notify payload.
function payload(action, session) {
  return {
    action,
    id: session.id,
    ip: session.ip,
    app: session.streamApp,
    name: session.streamName,
    query: session.streamQuery || {},
    protocol: session.protocol,
  };
}

async function ask(action, session) {
  try {
    const response = await fetch(callbackUrl, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": apiKey },
      body: JSON.stringify(payload(action, session)),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.arrayBuffer();
    return response.status >= 200 && response.status < 300 ? "allowed" : `refused ${response.status}`;
  } catch (error) {
    return `unreachable ${error.name}`; // fail closed
  }
}

function drop(session) {
  if (session.socket) {
    session.socket.destroy(); // RTMP: a paused socket would never see the client's FIN
    return;
  }
  const res = session.res;
  if (res && typeof res.setHeader === "function" && !res.headersSent) {
    res.statusCode = 403; // HTTP-FLV: refused before any media, say so
  }
  session.close();
}

// Publisher side: stop reading its input until the answer.
function pauseInput(session) {
  const streams = [session.socket, session.req, session.res];
  const paused = streams.filter((s) => s && typeof s.pause === "function");
  paused.forEach((s) => s.pause());
  return () => paused.forEach((s) => s.resume());
}

// Player side: queue what NMS sends until the answer.
function holdOutput(session) {
  const send = session.sendBuffer;
  const queued = [];
  session.sendBuffer = (buffer) => queued.push(buffer);
  return (allowed) => {
    session.sendBuffer = send;
    if (allowed && !session.socket?.destroyed) {
      queued.forEach((buffer) => send(buffer));
    }
  };
}

const publishers = new Set(); // sessions we allowed to publish, until reported gone

function donePublish(session) {
  if (publishers.delete(session.id)) {
    ask("donePublish", session).then((answer) => log("done_publish", { id: session.id, answer }));
  }
}

async function gatePublish(session) {
  const release = pauseInput(session);
  const answer = await ask("prePublish", session);
  log("publish", { id: session.id, path: session.streamPath, answer });
  if (answer !== "allowed") {
    drop(session);
    return;
  }
  publishers.add(session.id);
  const gone = () => donePublish(session);
  if (session.socket?.destroyed) {
    gone(); // it left while we were asking
    return;
  }
  // RTMP: its socket; HTTP-FLV push: the request's socket; WS-FLV push: the WebSocket
  for (const closing of [session.socket, session.req?.socket, session.res]) {
    if (closing && typeof closing.once === "function") {
      closing.once("close", gone);
    }
  }
  release();
}

async function gatePlay(session) {
  const release = holdOutput(session);
  const answer = await ask("prePlay", session);
  log("play", { id: session.id, path: session.streamPath, answer });
  release(answer === "allowed");
  if (answer !== "allowed") {
    drop(session);
  }
}

const secret = env.BFL_NMS_API_SECRET || "";
const config = {
  bind: env.BFL_NMS_BIND || "127.0.0.1",
  notify: { url: "" },
  store: { path: env.BFL_NMS_DATA_DIR || "./var/nms" },
  auth: {
    play: false,
    publish: false,
    secret: "",
    jwt: secret ? { secret, algorithm: "HS256", expiresIn: "1h", users: [] } : undefined,
  },
  rtmp: { port: Number(env.BFL_NMS_RTMP_PORT || 1935) },
  http: { port: Number(env.BFL_NMS_HTTP_PORT || 8000) },
  webadmin: { enable: false },
  record: { auto: false, path: `${env.BFL_NMS_DATA_DIR || "./var/nms"}/record` },
};

const nms = new NodeMediaServer(config, "");
nmsLogger.level = env.BFL_NMS_LOG_LEVEL || "info";
nms.on("prePublish", (session) => {
  gatePublish(session);
});
nms.on("donePublish", donePublish);
nms.on("prePlay", (session) => {
  gatePlay(session);
});
nms.on("donePlay", (session) => {
  ask("donePlay", session).then(() => undefined);
});

let stopping = false;
async function stop(signal) {
  if (stopping) {
    return;
  }
  stopping = true;
  log("stopping", { signal });
  await nms.stop();
  process.exit(0);
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

nms.run().then(() => log("ready", { rtmp_port: config.rtmp.port, http_port: config.http.port }));
