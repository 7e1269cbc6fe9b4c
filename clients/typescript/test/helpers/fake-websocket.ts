/**
 * A scripted in-memory WebSocket server for unit tests: the client under test
 * gets `server.WebSocket` as its constructor; the test reads what the client
 * sent and answers frame by frame. No network, no sleeps.
 */

type Frame = Record<string, any>;

export const DEFAULT_LIMITS = {
  max_frame_bytes: 4194304,
  max_frame_depth: 64,
  max_document_bytes: 1048576,
  max_document_depth: 32,
  max_patch_ops: 500,
  max_batch_writes: 500,
  max_in_values: 30,
  max_not_in_values: 10,
  max_disjunctions: 30,
  max_listeners: 1000,
  max_unread_frames: 4096,
  max_unread_bytes: 16777216,
};

export class FakeSocket {
  readonly url: string;
  readonly server: FakeServer;
  readonly sent: Frame[] = [];
  readonly rawSent: string[] = [];
  closed = false;
  closedByClient: { code?: number | undefined; reason?: string | undefined } | undefined;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  #waiters: Array<() => void> = [];
  #read = 0;

  constructor(server: FakeServer, url: string) {
    this.server = server;
    this.url = url;
  }

  /** When set, the client's next `send` throws it (a failing socket). */
  failNextSend: Error | undefined;

  /** Client side: send a frame. */
  send(text: string): void {
    const failure = this.failNextSend;
    if (failure !== undefined) {
      this.failNextSend = undefined;
      throw failure;
    }
    if (this.closed) throw new Error("send on a closed socket");
    this.rawSent.push(text);
    const frame = JSON.parse(text) as Frame;
    this.sent.push(frame);
    if (frame.type === "hello" && this.server.autoWelcome) {
      this.serverSend({ type: "welcome", protocol: 1, limits: this.server.limits });
    }
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Client side: close. As a browser does, a code other than 1000 or 3000 to 4999 throws and closes nothing. */
  close(code?: number, reason?: string): void {
    if (code !== undefined && code !== 1000 && (code < 3000 || code > 4999)) {
      throw new DOMException(`close code ${code} is neither 1000 nor in 3000-4999`, "InvalidAccessError");
    }
    this.closedByClient = { code, reason };
    this.closed = true;
  }

  /** Server side: deliver a frame to the client (synchronously). */
  serverSend(frame: Frame | string): void {
    if (this.closed) return;
    this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }

  /** Server side: drop the connection. */
  serverClose(code = 1006, reason = ""): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.({ code, reason });
  }

  /** The next frame the client sends (after those already read), waiting for it. */
  async next(): Promise<Frame> {
    while (this.#read >= this.sent.length) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return this.sent[this.#read++] as Frame;
  }

  /** The next frame the client sends other than hello. */
  async nextRequest(): Promise<Frame> {
    for (;;) {
      const frame = await this.next();
      if (frame.type !== "hello") return frame;
    }
  }
}

export class FakeServer {
  readonly sockets: FakeSocket[] = [];
  autoWelcome = true;
  /** When true, new sockets fail to connect (close 1006 without opening). */
  refuse = false;
  limits: Record<string, number> = { ...DEFAULT_LIMITS };
  #waiters: Array<() => void> = [];
  readonly WebSocket: new (url: string) => FakeSocket;

  constructor() {
    const server = this;
    this.WebSocket = class extends FakeSocket {
      constructor(url: string) {
        super(server, url);
        server.sockets.push(this);
        const refuse = server.refuse;
        queueMicrotask(() => {
          if (this.closed) return;
          if (refuse) this.serverClose(1006, "");
          else this.onopen?.({});
        });
        for (const wake of server.#waiters.splice(0)) wake();
      }
    };
  }

  /** The most recent socket. */
  get last(): FakeSocket {
    const socket = this.sockets[this.sockets.length - 1];
    if (socket === undefined) throw new Error("no socket yet");
    return socket;
  }

  /** Waits until at least `count` sockets were created; returns the `count`-th. */
  async socket(count: number): Promise<FakeSocket> {
    while (this.sockets.length < count) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    return this.sockets[count - 1] as FakeSocket;
  }
}

/** Resolves after pending microtasks and one macrotask turn. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Waits (polling each turn) until `predicate` holds, failing after `ms`. */
export async function until(predicate: () => boolean, ms = 2000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
