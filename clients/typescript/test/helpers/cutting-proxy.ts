/**
 * A tiny TCP proxy on loopback, to lose a commit's answer on purpose (the
 * TypeScript twin of `tests/src/live/proxy.rs`): it forwards every accepted
 * connection to `127.0.0.1:upstream`, and once armed with
 * {@link CuttingProxy.dropNextAnswer} it drops the server's next bytes and
 * cuts that connection, so the client never reads them.
 *
 * It also reads the WebSocket frames the clients send (after the HTTP upgrade
 * request; masked, whole or fragmented, uncompressed) and records the
 * `commit_id` of every `commit` frame, per connection.
 */
import net from "node:net";

/** What the proxy saw of one client connection. */
export interface ProxiedConnection {
  /** The `commit_id`s of the commit frames the client sent, in order. */
  readonly commitIds: string[];
  /** The last commit id sent before the server's bytes were dropped and the connection cut (undefined if not cut so). */
  lostAnswerTo?: string | undefined;
}

/** A running proxy; see the module documentation. */
export class CuttingProxy {
  /** Every connection accepted so far, in order. */
  readonly connections: ProxiedConnection[] = [];
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #upstream: number;
  #armed = false;
  #dropped = 0;

  private constructor(server: net.Server, upstream: number) {
    this.#server = server;
    this.#upstream = upstream;
    server.on("connection", (client) => this.#forward(client));
  }

  /** Starts a proxy to `127.0.0.1:upstream` on a free loopback port. */
  static async start(upstream: number): Promise<CuttingProxy> {
    const server = net.createServer();
    const proxy = new CuttingProxy(server, upstream);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  /** The port it listens on, on 127.0.0.1. */
  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** `http://127.0.0.1:<port>`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Arms a loss: the next bytes any server sends through the proxy are dropped and their connection is cut. */
  dropNextAnswer(): void {
    this.#armed = true;
  }

  /** How many armed losses have happened (bytes dropped and cut). */
  get answersDropped(): number {
    return this.#dropped;
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #forward(client: net.Socket): void {
    const seen: ProxiedConnection = { commitIds: [] };
    this.connections.push(seen);
    const server = net.connect({ host: "127.0.0.1", port: this.#upstream });
    for (const socket of [client, server]) {
      this.#sockets.add(socket);
      socket.setNoDelay(true);
      socket.on("close", () => {
        this.#sockets.delete(socket);
        client.destroy();
        server.destroy();
      });
      socket.on("error", () => {
        /* a close event follows */
      });
    }
    const frames = new ClientFrames((text) => {
      const frame = JSON.parse(text) as { type?: unknown; commit_id?: unknown };
      if (frame.type === "commit" && typeof frame.commit_id === "string") seen.commitIds.push(frame.commit_id);
    });
    client.on("data", (chunk: Buffer) => {
      frames.push(chunk);
      server.write(chunk);
    });
    server.on("data", (chunk: Buffer) => {
      if (this.#armed) {
        this.#armed = false;
        this.#dropped++;
        seen.lostAnswerTo = seen.commitIds.at(-1);
        client.destroy();
        server.destroy();
        return;
      }
      client.write(chunk);
    });
  }
}

/**
 * Decodes the client-to-server half of a WebSocket connection: skips the
 * HTTP upgrade request, then unmasks each frame and hands every complete text
 * message to `onText`. Compressed frames (RSV1) are refused: the test's
 * clients turn `permessage-deflate` off.
 */
class ClientFrames {
  #buffer = Buffer.alloc(0);
  #upgraded = false;
  /** The fragments of the text message being received (undefined between messages and during binary ones). */
  #message: Buffer[] | undefined;
  readonly #onText: (text: string) => void;

  constructor(onText: (text: string) => void) {
    this.#onText = onText;
  }

  push(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    if (!this.#upgraded) {
      const end = this.#buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      this.#buffer = this.#buffer.subarray(end + 4);
      this.#upgraded = true;
    }
    while (this.#nextFrame()) {
      /* one frame consumed */
    }
  }

  /** Consumes one complete frame from the buffer; false when it holds none. */
  #nextFrame(): boolean {
    const b = this.#buffer;
    if (b.length < 2) return false;
    const fin = (b[0] as number) & 0x80;
    if (((b[0] as number) & 0x40) !== 0) throw new Error("a compressed WebSocket frame: the proxy reads uncompressed frames only");
    const opcode = (b[0] as number) & 0x0f;
    const masked = ((b[1] as number) & 0x80) !== 0;
    let length = (b[1] as number) & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (b.length < 4) return false;
      length = b.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (b.length < 10) return false;
      length = Number(b.readBigUInt64BE(2));
      offset = 10;
    }
    const mask = masked ? b.subarray(offset, offset + 4) : undefined;
    if (masked) offset += 4;
    if (b.length < offset + length) return false;
    const payload = Buffer.from(b.subarray(offset, offset + length));
    if (mask !== undefined) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i % 4] as number);
    this.#buffer = b.subarray(offset + length);
    if (opcode >= 0x8) return true; // a control frame, between fragments or not
    if (opcode === 0x1) this.#message = [];
    else if (opcode === 0x2) this.#message = undefined;
    this.#message?.push(payload);
    if (fin && this.#message !== undefined) {
      this.#onText(Buffer.concat(this.#message).toString("utf8"));
      this.#message = undefined;
    }
    return true;
  }
}
