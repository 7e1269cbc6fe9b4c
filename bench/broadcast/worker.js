// The floors for Blaze's load benchmark: minimal Durable Objects that only
// broadcast each received frame to every connected socket (the sender too),
// with the same Hibernation API. `Broadcast` (`/ws`) persists nothing;
// `DurableBroadcast` (`/durable`) first inserts each frame into its SQLite
// database, so the output gate holds the broadcast until that write is
// durable, as it holds Blaze's answers and changes until their commit is.
export class Broadcast {
  constructor(ctx) {
    this.ctx = ctx;
  }

  async fetch(request) {
    if (request.headers.get("Upgrade") !== "websocket") {
      return new Response(JSON.stringify({ ok: true }), { headers: { "Content-Type": "application/json" } });
    }
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  webSocketMessage(ws, message) {
    this.store(message);
    for (const socket of this.ctx.getWebSockets()) {
      socket.send(message);
    }
  }

  /** Persists nothing. */
  store() {}

  webSocketClose(ws, code) {
    ws.close(1000, "closed");
  }
}

export class DurableBroadcast extends Broadcast {
  constructor(ctx) {
    super(ctx);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS frames (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  }

  /** Appends the frame to the log (the broadcast waits until it is durable). */
  store(message) {
    this.ctx.storage.sql.exec("INSERT INTO frames (body) VALUES (?)", message);
  }
}

export default {
  async fetch(request, env) {
    const durable = new URL(request.url).pathname === "/durable";
    const ns = durable ? env.DURABLE_BROADCAST : env.BROADCAST;
    return ns.get(ns.idFromName("room")).fetch(request);
  },
};
