// Reference peer for bench/bench_fanout.py: the same broadcast as BigfootLive's hub, done the
// usual Node.js way. One process per port; processes share one Redis through the adapter.
// Clients join the event's room; a "send" is broadcast to the room on every process.
const http = require("http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const port = parseInt(process.env.PORT || "3100", 10);
const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6379/0";
const prefix = process.env.REDIS_PREFIX || "bench-sio";

async function main() {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok");
  });
  const io = new Server(httpServer, {
    transports: ["websocket"],
    adapter: createAdapter(pub, sub, { key: prefix }),
    pingInterval: 25000,
    pingTimeout: 20000,
  });
  io.on("connection", (socket) => {
    const room = socket.handshake.query.event || "event";
    socket.join(room);
    socket.on("send", (body, ack) => {
      const message = { type: "message", message: { body, at: Date.now() } };
      io.to(room).emit("message", message);
      if (typeof ack === "function") ack({ ok: true });
    });
  });
  httpServer.listen(port, "127.0.0.1", () => console.log(`listening ${port}`));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
