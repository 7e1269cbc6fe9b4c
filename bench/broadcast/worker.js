// The floor for Blaze's load benchmark: a minimal Durable Object that only
// broadcasts each received frame to every connected socket (the sender too),
// with the same Hibernation API, and persists nothing.
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
    for (const socket of this.ctx.getWebSockets()) {
      socket.send(message);
    }
  }

  webSocketClose(ws, code) {
    ws.close(1000, "closed");
  }
}

export default {
  async fetch(request, env) {
    const stub = env.BROADCAST.get(env.BROADCAST.idFromName("room"));
    return stub.fetch(request);
  },
};
