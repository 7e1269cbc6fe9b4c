/**
 * One WebSocket to one collection (spec 10.1): handshake, requests matched to
 * answers by `rid`, listeners, and reconnection with resume (spec 10.4.4).
 *
 * Guarantees: requests wait (up to `requestTimeoutMs`) while the socket is
 * being established; reads and commits in flight when it drops are re-sent
 * after the reconnect (a commit with the same `commit_id`, so the server
 * applies it at most once); a commit that cannot be re-sent (closed, timed
 * out, refused) fails with `outcome_unknown`; every listener is re-sent with
 * `since` after a reconnect.
 *
 * Held documents (spec 10.4.9): `hello` says `held_docs`, so a `snapshot`
 * may name a document another listener of this connection holds instead of
 * sending it again; each such entry is replaced by the copy held here before
 * the snapshot is used. To have those copies, a listener the application
 * stops is kept (silently, still applying its frames) until its `unlisten`
 * is answered, and a held entry that names nothing held drops the socket and
 * resumes, as the spec asks.
 *
 * Credentials (spec 13): a fixed `auth`, or `getToken`, asked before every
 * connection and shortly before the server says the token expires (then
 * sent in-band as `auth`). Close 4001 gets a fresh token and reconnects; a
 * credential refused (or a provider failing) a few times in a row fails
 * requests and listeners with `unauthenticated`, and the connection rests
 * until the application asks for something again.
 */
import { backoffDelay } from "./backoff.js";
import { AUTH_ATTEMPTS, CLOSE_UNAUTHENTICATED, fetchToken, refreshDelay, type TokenProvider } from "./credential.js";
import { BlazeError, LocalErrorCode, type WireError } from "./errors.js";
import { Listener } from "./listener.js";
import { frameLimitError } from "./frame-limits.js";
import { startTimer, stopTimer, type Timer, type WebSocketConstructor, type WebSocketLike } from "./platform.js";
import { ResultMismatchError, resultDocToWire, type ResultDoc } from "./results.js";
import { helloMessage, PROTOCOL_VERSION, type ClientRequest, type ServerFrame, type WireDoc, type WireLimits } from "./wire.js";

/** An `ack` is due once this many frames were read since the last one (spec 10.4.6)... */
const ACK_FRAMES = 64;
/** ... or frames of this many UTF-16 code units. */
const ACK_LENGTH = 64 * 1024;

/** Settings of one collection connection. */
export interface ConnectionSettings {
  /** The `ws://` or `wss://` URL of `/v1/ws/{collection}`. */
  url: string;
  /** A fixed credential sent in every `hello`. */
  auth?: string | undefined;
  /** Asked for the token of every `hello`, and for a fresh one before it expires. */
  getToken?: TokenProvider | undefined;
  /** The WebSocket constructor to use. */
  WebSocket: WebSocketConstructor;
  /** Bound on a request's total time (waiting for the socket, then for the answer). */
  requestTimeoutMs: number;
  /** Backoff base. */
  reconnectInitialMs: number;
  /** Backoff cap (the longest wait between two attempts). */
  reconnectMaxMs: number;
  /** Called whenever the connection's up/down status may have changed. */
  onStatusChange: () => void;
}

/**
 * The close code (private-use range, which browsers let a client send) and
 * reason when the client drops a socket whose server broke the protocol: a
 * held entry naming nothing held (spec 10.4.9). It then resumes as after any
 * lost connection.
 */
const CLOSE_PROTOCOL_ERROR = 4000;
/**
 * Protocol errors in a row after which the client stops reconnecting: it
 * fails everything pending with `protocol_error` and rests until the next
 * request or listener, so a server that breaks the protocol on every
 * connection is not asked again forever.
 */
export const PROTOCOL_ERROR_ATTEMPTS = 3;
/** A connection open this long before its protocol error starts the count again. */
export const PROTOCOL_ERROR_WINDOW_MS = 60_000;

/** A held entry of a `snapshot` (spec 10.4.9). */
function isHeld(doc: unknown): doc is WireDoc & { held: true } {
  return typeof doc === "object" && doc !== null && (doc as { held?: unknown }).held === true;
}

/** The key of a document state: a version names one state of a document (spec 10.4.9). */
function heldKey(path: string, version: number): string {
  return `${version} ${path}`;
}

/** How a request behaves when its connection drops before the answer. */
export type RequestKind = "read" | "commit";

type Phase = "idle" | "connecting" | "open" | "waiting" | "failed" | "closed";

interface Pending {
  readonly request: ClientRequest;
  /** `read` and `commit`: re-sent after a reconnect. `stream`: listen/unlisten, dropped (listeners are re-sent). */
  readonly kind: RequestKind | "stream";
  /** Sent at least once: a commit's first attempt may have been applied. */
  sent: boolean;
  /** Called synchronously with the answer frame (including `error` frames). */
  readonly answer: (frame: ServerFrame) => void;
  readonly fail: (error: BlazeError) => void;
  rid?: number | undefined;
  timer?: Timer;
  /** Settled (answered, failed or timed out); a later answer is dropped. */
  done: boolean;
}

function parseFrame(data: unknown): ServerFrame | undefined {
  if (typeof data !== "string") return undefined;
  try {
    const frame: unknown = JSON.parse(data);
    return typeof frame === "object" && frame !== null && typeof (frame as { type?: unknown }).type === "string"
      ? (frame as ServerFrame)
      : undefined;
  } catch {
    return undefined;
  }
}

/** A lazily opened, self-healing WebSocket to one collection. */
export class CollectionConnection {
  /** The collection this connection serves. */
  readonly collection: string;
  readonly #settings: ConnectionSettings;
  #phase: Phase = "idle";
  #everUp = false;
  #attempt = 0;
  /** Protocol errors in a row (see {@link PROTOCOL_ERROR_ATTEMPTS}), and when the current connection was welcomed. */
  #protocolErrors = 0;
  #welcomedAt = 0;
  #socket: WebSocketLike | null = null;
  #reconnectTimer: Timer | undefined;
  #nextRid = 1;
  /** Requests not yet sent, in order. */
  #queue: Pending[] = [];
  /** Requests sent on the current socket, by rid (insertion order = rid order). */
  #inflight = new Map<number, Pending>();
  #listeners = new Set<Listener>();
  /**
   * Listeners the application stopped whose `unlisten` is sent but not yet
   * answered, by the `rid` of their `listen`. Until then the server may name
   * their documents as held in another listener's `snapshot` (spec 10.4.9),
   * so they keep their results, their target (`change` frames keep those
   * results current) and their `listen`'s answer, reporting nothing.
   */
  #ending = new Map<number, Listener>();
  #byTarget = new Map<number, Set<Listener>>();
  #limits: WireLimits = {};
  #handshakeError: BlazeError | undefined;
  #fatal: BlazeError | undefined;
  /** Counts the openings, so a token that arrives late opens nothing. */
  #opening = 0;
  /** Credentials refused (or missing) in a row. */
  #authFailures = 0;
  /** Fires when the current credential is due for an in-band refresh. */
  #refreshTimer: Timer | undefined;
  /** Frames read on the current socket (`welcome` included), and since the last `ack`. */
  #read = { frames: 0, unackedFrames: 0, unackedLength: 0 };

  /** Creates the connection; nothing is opened until the first request or listener. */
  constructor(collection: string, settings: ConnectionSettings) {
    this.collection = collection;
    this.#settings = settings;
  }

  /** True when the socket is open and the handshake is done. */
  get isUp(): boolean {
    return this.#phase === "open";
  }

  /** True once the handshake has succeeded at least once. */
  get everUp(): boolean {
    return this.#everUp;
  }

  /** True when the connection is down and recovering (or failed for good), as opposed to opening for the first time. */
  get isDown(): boolean {
    if (this.#phase === "waiting" || this.#phase === "failed") return true;
    return this.#phase === "connecting" && (this.#everUp || this.#attempt > 0);
  }

  /** The limits from the last `welcome`. */
  get limits(): WireLimits {
    return this.#limits;
  }

  /**
   * Sends a request (once the connection is up) and resolves with its answer
   * frame; an `error` frame rejects with its {@link BlazeError}.
   */
  request(request: ClientRequest, kind: RequestKind): Promise<ServerFrame> {
    return new Promise<ServerFrame>((resolve, reject) => {
      const pending: Pending = {
        request,
        kind,
        sent: false,
        done: false,
        answer: (frame) => {
          if (pending.done) return;
          this.#settle(pending);
          if (frame.type === "error") reject(BlazeError.fromWire(frame.error));
          else resolve(frame);
        },
        fail: (error) => {
          if (pending.done) return;
          this.#settle(pending);
          reject(error);
        },
      };
      if (this.#fatal !== undefined) {
        pending.fail(this.#fatal);
        return;
      }
      if (this.#phase === "closed") {
        pending.fail(new BlazeError(LocalErrorCode.cancelled, "the client is closed"));
        return;
      }
      pending.timer = startTimer(() => {
        if (pending.rid === undefined) {
          this.#queue = this.#queue.filter((p) => p !== pending);
          this.#failUnsent(
            pending,
            new BlazeError(LocalErrorCode.unavailable, `no connection to ${this.collection} within ${this.#settings.requestTimeoutMs} ms; the request was not sent`),
          );
        } else {
          // Stays in #inflight so a late answer (or a rid-less error) is matched to it.
          pending.fail(
            new BlazeError(
              LocalErrorCode.deadlineExceeded,
              `no answer within ${this.#settings.requestTimeoutMs} ms` + (kind === "commit" ? "; the commit may or may not have been applied" : ""),
            ),
          );
        }
      }, this.#settings.requestTimeoutMs);
      this.#queue.push(pending);
      this.#ensureOpen();
      this.#flush();
    });
  }

  /** Starts a listener on this connection (sent now if up, else once up). */
  addListener(listener: Listener): void {
    if (this.#fatal !== undefined) {
      listener.fail(this.#fatal);
      return;
    }
    this.#listeners.add(listener);
    this.#ensureOpen();
    if (this.#phase === "open") this.#sendListen(listener);
  }

  /**
   * Stops a listener: no callback follows; `unlisten` is sent when the server
   * holds it, and the listener's results are kept until it is answered
   * (spec 10.4.9).
   */
  removeListener(listener: Listener): void {
    listener.active = false;
    const live = this.#listeners.delete(listener);
    const rid = listener.rid;
    if (live && rid !== undefined && this.#phase === "open") {
      this.#ending.set(rid, listener);
      this.#sendUnlisten(listener, () => this.#release(rid));
      return;
    }
    this.#detachFromTarget(listener);
    this.#sendUnlisten(listener);
  }

  /** Closes the socket for good; pending requests fail with `cancelled`. */
  close(): void {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    stopTimer(this.#reconnectTimer);
    stopTimer(this.#refreshTimer);
    this.#dropSocket(1000, "client closed");
    for (const listener of this.#listeners) listener.active = false;
    this.#listeners.clear();
    this.#releaseAll();
    const error = new BlazeError(LocalErrorCode.cancelled, "the client was closed (a commit already sent may or may not have been applied)");
    for (const pending of this.#inflight.values()) pending.fail(error);
    for (const pending of this.#queue) this.#failUnsent(pending, error);
    this.#inflight.clear();
    this.#queue = [];
    this.#byTarget.clear();
    this.#settings.onStatusChange();
  }

  /** Reconnects at once, and with a fresh backoff, if waiting to reconnect (the network is back, or the page is visible again). */
  reconnectNow(): void {
    if (this.#phase !== "waiting") return;
    stopTimer(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#attempt = 0;
    this.#open();
  }

  #settle(pending: Pending): void {
    pending.done = true;
    stopTimer(pending.timer);
  }

  /**
   * Fails a request that is not in flight with `error`; but a commit sent
   * before (waiting to be re-sent after its connection dropped) fails with
   * `outcome_unknown`, since that first attempt may have been applied.
   */
  #failUnsent(pending: Pending, error: BlazeError): void {
    if (pending.kind !== "commit" || !pending.sent) {
      pending.fail(error);
      return;
    }
    pending.fail(
      new BlazeError(
        LocalErrorCode.outcomeUnknown,
        `the connection dropped before the commit was answered and it could not be re-sent (${error.message}); it may or may not have been applied`,
      ),
    );
  }

  #ensureOpen(): void {
    if (this.#phase === "idle") this.#open();
  }

  /** Opens a socket, with a fresh token first when there is a provider. */
  #open(): void {
    this.#phase = "connecting";
    this.#handshakeError = undefined;
    const getToken = this.#settings.getToken;
    if (getToken === undefined) {
      this.#openSocket(this.#settings.auth);
      return;
    }
    const opening = ++this.#opening;
    this.#settings.onStatusChange();
    const current = () => this.#opening === opening && this.#phase === "connecting";
    fetchToken(getToken).then(
      (token) => {
        if (current()) this.#openSocket(token ?? undefined);
      },
      (error: unknown) => {
        if (!current()) return;
        this.#handshakeError = new BlazeError("unauthenticated", `the token provider failed: ${error instanceof Error ? error.message : String(error)}`);
        this.#lost(CLOSE_UNAUTHENTICATED, "unauthenticated");
      },
    );
  }

  #openSocket(auth: string | undefined): void {
    let socket: WebSocketLike;
    try {
      socket = new this.#settings.WebSocket(this.#settings.url) as WebSocketLike;
    } catch (error) {
      this.#settings.onStatusChange();
      this.#lost(1006, String(error));
      return;
    }
    this.#socket = socket;
    socket.onopen = () => {
      if (this.#socket === socket) this.#sendText(JSON.stringify(helloMessage(auth)));
    };
    this.#read = { frames: 0, unackedFrames: 0, unackedLength: 0 };
    socket.onmessage = (event) => {
      if (this.#socket !== socket) return;
      this.#onMessage(event.data);
      if (this.#socket === socket) this.#countRead(event.data);
    };
    socket.onerror = () => {
      /* a close event follows */
    };
    socket.onclose = (event) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#lost(event.code, event.reason);
    };
    this.#settings.onStatusChange();
  }

  #dropSocket(code: number, reason: string): void {
    const socket = this.#socket;
    this.#socket = null;
    if (socket === null) return;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    try {
      socket.close(code, reason);
    } catch {
      /* already closing */
    }
  }

  /** The socket is gone: settle what was in flight, then reconnect (or fail for good after a refused handshake). */
  #lost(code: number, reason: string): void {
    if (this.#phase === "closed") return;
    const wasOpen = this.#phase === "open";
    stopTimer(this.#refreshTimer);
    this.#refreshTimer = undefined;
    const inflight = [...this.#inflight.values()];
    this.#inflight.clear();
    this.#releaseAll();
    this.#byTarget.clear();
    for (const listener of this.#listeners) {
      listener.rid = undefined;
      listener.serverTarget = undefined;
    }
    const resend: Pending[] = [];
    for (const pending of inflight) {
      if (pending.done || pending.kind === "stream") continue;
      pending.rid = undefined;
      resend.push(pending);
    }
    this.#queue = [...resend, ...this.#queue];
    if (code === CLOSE_UNAUTHENTICATED && this.#givesUpOnCredential(reason, wasOpen)) return;
    if (code === CLOSE_PROTOCOL_ERROR && this.#protocolErrors >= PROTOCOL_ERROR_ATTEMPTS) {
      this.#protocolErrors = 0;
      this.#phase = "idle";
      this.#failAll(new BlazeError(LocalErrorCode.protocolError, `the server broke the protocol on ${PROTOCOL_ERROR_ATTEMPTS} connections in a row (last: ${reason})`));
      return;
    }
    if (code === 4002 || this.#fatal !== undefined) {
      this.#failForever(this.#fatal ?? this.#handshakeError ?? new BlazeError(reason || "handshake_required", `handshake refused (${reason})`));
      return;
    }
    this.#phase = "waiting";
    const delay = backoffDelay(this.#attempt, this.#settings.reconnectInitialMs, this.#settings.reconnectMaxMs);
    this.#attempt++;
    this.#reconnectTimer = startTimer(() => {
      this.#reconnectTimer = undefined;
      if (this.#phase === "waiting") this.#open();
    }, delay);
    this.#settings.onStatusChange();
  }

  /**
   * Close 4001 (spec 13.5), or a provider that failed. An expired token from
   * a provider is the normal case: reconnect with a fresh one. Otherwise it
   * counts as a refusal; a fixed credential, or a provider's after a few in
   * a row, fails everything pending with `unauthenticated`, and the
   * connection rests until the next request or listener (true).
   */
  #givesUpOnCredential(reason: string, wasOpen: boolean): boolean {
    const renewable = this.#settings.getToken !== undefined;
    if (reason === "token_expired" && wasOpen && renewable) return false;
    this.#authFailures++;
    if (renewable && this.#authFailures < AUTH_ATTEMPTS) return false;
    this.#authFailures = 0;
    const refused = this.#handshakeError;
    const error =
      refused?.code === "unauthenticated"
        ? refused
        : new BlazeError("unauthenticated", reason === "token_expired" ? "the credential expired" : `the server refused the credential (close 4001 ${reason})`);
    this.#phase = "idle";
    this.#failAll(error);
    return true;
  }

  #failForever(error: BlazeError): void {
    this.#fatal = error;
    this.#phase = "failed";
    this.#dropSocket(1000, error.code);
    this.#failAll(error);
  }

  /** Fails every request and listener with `error`. */
  #failAll(error: BlazeError): void {
    const inflight = [...this.#inflight.values()];
    const queued = this.#queue;
    this.#inflight.clear();
    this.#queue = [];
    this.#releaseAll();
    for (const p of inflight) p.fail(error);
    for (const p of queued) this.#failUnsent(p, error);
    const listeners = [...this.#listeners];
    this.#listeners.clear();
    for (const listener of listeners) listener.fail(error);
    this.#settings.onStatusChange();
  }

  #onMessage(data: unknown): void {
    const frame = parseFrame(data);
    if (frame === undefined) return; // not a frame this client understands; unknown content is ignored
    if (this.#phase === "connecting") {
      if (frame.type === "welcome") this.#onWelcome(frame);
      else if (frame.type === "error") this.#handshakeError = BlazeError.fromWire(frame.error);
      return;
    }
    if (this.#phase !== "open") return;
    switch (frame.type) {
      case "change": {
        const listeners = this.#byTarget.get(frame.target);
        if (listeners === undefined) return;
        for (const listener of [...listeners]) this.#guard(listener, () => listener.onChange(frame.changes, frame.seq));
        return;
      }
      case "welcome":
        return;
      default: {
        const rid = (frame as { rid?: unknown }).rid;
        let pending: Pending | undefined;
        if (typeof rid === "number") {
          pending = this.#inflight.get(rid);
          if (pending !== undefined) this.#inflight.delete(rid);
          else if (frame.type === "error") this.#onListenerEnded(rid, frame.error);
        } else if (frame.type === "error") {
          // Errors of frames the server could not read carry no rid (spec 10.1,
          // decoding steps 1-3); answers come in request order, so it is the
          // oldest outstanding request's.
          const oldest = this.#inflight.entries().next();
          if (!oldest.done) {
            this.#inflight.delete(oldest.value[0]);
            pending = oldest.value[1];
          }
        }
        pending?.answer(frame);
      }
    }
  }

  /**
   * Counts a frame read on the current socket and sends `ack` with the
   * count once 64 frames or 64 Ki UTF-16 code units (never more than the
   * UTF-8 bytes) were read since the last one (spec 10.4.6).
   */
  #countRead(data: unknown): void {
    const read = this.#read;
    read.frames++;
    read.unackedFrames++;
    read.unackedLength += typeof data === "string" ? data.length : 0;
    if (read.unackedFrames < ACK_FRAMES && read.unackedLength < ACK_LENGTH) return;
    read.unackedFrames = 0;
    read.unackedLength = 0;
    this.#sendText(JSON.stringify({ type: "ack", frames: read.frames }));
  }

  #onWelcome(frame: Extract<ServerFrame, { type: "welcome" }>): void {
    if (frame.protocol !== PROTOCOL_VERSION) {
      this.#failForever(new BlazeError(LocalErrorCode.protocolError, `the server speaks protocol ${String(frame.protocol)}, not ${PROTOCOL_VERSION}`));
      return;
    }
    this.#limits = typeof frame.limits === "object" && frame.limits !== null ? frame.limits : {};
    this.#phase = "open";
    this.#everUp = true;
    this.#attempt = 0;
    this.#welcomedAt = Date.now();
    this.#authFailures = 0;
    this.#scheduleRefresh(frame.auth?.expires);
    this.#settings.onStatusChange();
    for (const listener of [...this.#listeners]) if (this.#phase === "open") this.#sendListen(listener);
    this.#flush();
  }

  /** With a provider, asks it for a fresh token shortly before `expires` and sends it in-band (spec 13.4). */
  #scheduleRefresh(expires: unknown): void {
    stopTimer(this.#refreshTimer);
    this.#refreshTimer = undefined;
    const getToken = this.#settings.getToken;
    if (getToken === undefined || typeof expires !== "number") return;
    const socket = this.#socket;
    this.#refreshTimer = startTimer(() => {
      this.#refreshTimer = undefined;
      fetchToken(getToken).then(
        (token) => {
          if (token !== null && this.#socket === socket && this.#phase === "open") this.#sendAuth(token);
        },
        // Nothing to send: the server closes the connection when the token
        // expires (4001), and the reconnect asks the provider again.
        () => undefined,
      );
    }, refreshDelay(expires - Date.now()));
  }

  /** Sends `auth`; its `authenticated` answer schedules the next refresh. A refusal keeps the connection as it is (spec 13.4). */
  #sendAuth(token: string): void {
    const pending: Pending = {
      request: { type: "auth", auth: token },
      kind: "stream",
      sent: false,
      done: false,
      answer: (frame) => {
        pending.done = true;
        if (frame.type === "authenticated") this.#scheduleRefresh(frame.auth?.expires);
      },
      fail: () => {
        pending.done = true;
      },
    };
    this.#send(pending);
  }

  #flush(): void {
    while (this.#phase === "open" && this.#queue.length > 0) {
      const pending = this.#queue.shift() as Pending;
      if (!pending.done) this.#send(pending);
    }
  }

  /** Sends a request with a fresh rid; false when it was refused locally or the socket failed. */
  #send(pending: Pending): boolean {
    const rid = this.#nextRid++;
    const { type, ...rest } = pending.request;
    const text = JSON.stringify({ type, rid, ...rest });
    const tooBig = frameLimitError(text, this.#limits);
    if (tooBig !== undefined) {
      this.#failUnsent(pending, tooBig);
      return false;
    }
    pending.rid = rid;
    pending.sent = true;
    this.#inflight.set(rid, pending);
    return this.#sendText(text);
  }

  #sendText(text: string): boolean {
    const socket = this.#socket;
    if (socket === null) return false;
    try {
      socket.send(text);
      return true;
    } catch {
      // The socket is failing; its close event settles what was in flight.
      // 1006 is the local reason only: a browser refuses to close with it.
      this.#dropSocket(1000, "send failed");
      this.#lost(1006, "send failed");
      return false;
    }
  }

  #sendListen(listener: Listener): void {
    if (!listener.active) return;
    const pending: Pending = {
      request: listener.listenRequest(),
      kind: "stream",
      sent: false,
      done: false,
      answer: (frame) => {
        pending.done = true;
        this.#onListenAnswer(listener, pending.rid, frame);
      },
      fail: (error) => {
        pending.done = true;
        if (pending.rid !== undefined) this.#release(pending.rid);
        this.#listeners.delete(listener);
        listener.fail(error);
      },
    };
    if (this.#send(pending)) listener.rid = pending.rid;
  }

  /** Sends `unlisten` for the listener's `listen`, if sent on this socket; `ended` runs when it is answered (or fails). */
  #sendUnlisten(listener: Listener, ended?: () => void): void {
    const rid = listener.rid;
    listener.rid = undefined;
    if (rid === undefined || this.#phase !== "open") {
      ended?.();
      return;
    }
    const pending: Pending = {
      request: { type: "unlisten", listener: rid },
      kind: "stream",
      sent: false,
      done: false,
      answer: () => {
        pending.done = true;
        ended?.();
      },
      fail: () => {
        pending.done = true;
        ended?.();
      },
    };
    this.#send(pending);
  }

  /**
   * Forgets a stopped listener kept for its documents (see {@link #ending})
   * once its end is read: the answer to its `unlisten`, or an `error` ending
   * it. The server names none of its documents as held after that.
   */
  #release(listenRid: number): void {
    const listener = this.#ending.get(listenRid);
    if (listener === undefined) return;
    this.#ending.delete(listenRid);
    this.#detachFromTarget(listener);
    listener.results = null;
  }

  /** Forgets every stopped listener kept for its documents: the socket is gone, and a held entry names only what was answered on its socket. */
  #releaseAll(): void {
    for (const rid of [...this.#ending.keys()]) this.#release(rid);
  }

  #onListenAnswer(listener: Listener, rid: number | undefined, frame: ServerFrame): void {
    // A listener stopped before this answer keeps what it answers until its
    // `unlisten` is answered: the server may name those documents as held.
    const ending = rid !== undefined && this.#ending.get(rid) === listener;
    if (!ending && (!listener.active || !this.#listeners.has(listener))) return;
    if (frame.type === "error" || (frame.type !== "snapshot" && frame.type !== "resumed")) {
      if (ending) {
        this.#release(rid);
      } else if (frame.type === "error") {
        this.#listeners.delete(listener);
        listener.rid = undefined;
        listener.fail(BlazeError.fromWire(frame.error));
      } else {
        this.#listeners.delete(listener);
        listener.fail(new BlazeError(LocalErrorCode.protocolError, `unexpected answer ${frame.type} to listen`));
      }
      return;
    }
    let docs: WireDoc[] | undefined;
    if (frame.type === "snapshot") {
      docs = this.#resolveHeld(frame.docs);
      if (docs === undefined) return; // the socket was dropped: the listener resumes on the next one
    }
    listener.serverTarget = frame.target;
    let set = this.#byTarget.get(frame.target);
    if (set === undefined) this.#byTarget.set(frame.target, (set = new Set()));
    set.add(listener);
    this.#guard(listener, () => {
      if (frame.type === "snapshot") listener.onSnapshot(docs as WireDoc[], frame.seq);
      else listener.onResumed(frame.changes, frame.seq);
    });
  }

  /**
   * A `snapshot`'s `docs` with each held entry (spec 10.4.9) replaced by the
   * copy of that document at that version that another listener holds; the
   * same array when it has none. A held entry that names nothing held is a
   * protocol error: the socket is dropped (the connection resumes on a new
   * one) and the result is `undefined`.
   */
  #resolveHeld(docs: WireDoc[]): WireDoc[] | undefined {
    if (!Array.isArray(docs) || !docs.some(isHeld)) return docs;
    const held = this.#heldDocs();
    const resolved: WireDoc[] = [];
    for (const doc of docs) {
      if (!isHeld(doc)) {
        resolved.push(doc);
        continue;
      }
      const copy = typeof doc.path === "string" && typeof doc.version === "number" ? held.get(heldKey(doc.path, doc.version)) : undefined;
      if (copy === undefined) {
        this.#protocolError(`a snapshot names ${String(doc.path)} at version ${String(doc.version)} as held, but no listener holds it`);
        return undefined;
      }
      resolved.push(resultDocToWire(copy));
    }
    return resolved;
  }

  /**
   * Every document state the listeners of this connection hold, by
   * {@link heldKey}: the live listeners' results and those of stopped ones
   * kept until their `unlisten` is answered. Built only for a snapshot with
   * held entries, in one pass over those results. A listener re-listening
   * after a mismatch is left out: its results did not fit the server's.
   */
  #heldDocs(): Map<string, ResultDoc> {
    const held = new Map<string, ResultDoc>();
    const add = (listener: Listener) => {
      if (listener.resyncing || listener.results === null) return;
      for (const doc of listener.results) held.set(heldKey(doc.path, doc.version), doc);
    };
    for (const listener of this.#listeners) add(listener);
    for (const listener of this.#ending.values()) add(listener);
    return held;
  }

  /** The server broke the protocol on this socket: drop it and resume on a new one, as after any lost connection (up to {@link PROTOCOL_ERROR_ATTEMPTS} in a row). */
  #protocolError(message: string): void {
    if (Date.now() - this.#welcomedAt >= PROTOCOL_ERROR_WINDOW_MS) this.#protocolErrors = 0;
    this.#protocolErrors++;
    this.#dropSocket(CLOSE_PROTOCOL_ERROR, "protocol_error");
    this.#lost(CLOSE_PROTOCOL_ERROR, message);
  }

  /**
   * An `error` frame carrying the `rid` of a listener's answered `listen`:
   * the server ended that listener (spec 14: the access rules deny it now).
   * It fails with the server's error and is forgotten: no `unlisten` (the
   * server has dropped it already) and no resubscribe after a reconnect.
   */
  #onListenerEnded(rid: number, error: WireError | undefined): void {
    if (this.#ending.has(rid)) {
      this.#release(rid);
      return;
    }
    for (const listener of this.#listeners) {
      if (listener.rid !== rid) continue;
      this.#listeners.delete(listener);
      this.#detachFromTarget(listener);
      listener.rid = undefined;
      listener.fail(BlazeError.fromWire(error));
      return;
    }
  }

  /** Runs a listener update; if the server's changes do not fit its results, re-listens from scratch (the diff then reports the difference). */
  #guard(listener: Listener, update: () => void): void {
    try {
      update();
    } catch (error) {
      if (!(error instanceof ResultMismatchError)) throw error;
      if (!listener.active) {
        // A stopped listener kept for its documents: they no longer fit the
        // server's, so they are no longer a source of held entries.
        for (const [rid, ending] of this.#ending) if (ending === listener) this.#release(rid);
        this.#detachFromTarget(listener);
        return;
      }
      if (listener.resyncing) {
        this.#listeners.delete(listener);
        this.#detachFromTarget(listener);
        this.#sendUnlisten(listener);
        listener.fail(error);
        return;
      }
      this.#detachFromTarget(listener);
      this.#sendUnlisten(listener);
      listener.resyncing = true;
      this.#sendListen(listener);
    }
  }

  #detachFromTarget(listener: Listener): void {
    if (listener.serverTarget === undefined) return;
    const set = this.#byTarget.get(listener.serverTarget);
    set?.delete(listener);
    if (set !== undefined && set.size === 0) this.#byTarget.delete(listener.serverTarget);
    listener.serverTarget = undefined;
  }
}
