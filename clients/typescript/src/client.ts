/** The client object: configuration, one connection per collection, and the overall connection state. */
import { DEFAULT_RECONNECT, type ReconnectOptions } from "./backoff.js";
import { WriteBatch } from "./batch.js";
import { CollectionConnection } from "./connection.js";
import type { TokenProvider } from "./credential.js";
import { type BlazeError, invalidArgument } from "./errors.js";
import { HttpClient, httpBase } from "./http.js";
import { Listener, type ListenTarget } from "./listener.js";
import { toSafeObserver, type SnapshotObserver, type Unsubscribe } from "./observe.js";
import { globalWebSocket, onWakeUp, reportCallbackError, type FetchFunction, type WebSocketConstructor } from "./platform.js";
import { checkPath, joinPath } from "./paths.js";
import { CollectionRef, DocRef } from "./refs.js";
import type { ResultChange, ResultDoc } from "./results.js";
import { SnapshotCache } from "./snapshot.js";

/**
 * The client's connection state. `"connecting"` until a first connection is
 * up; then `"online"` while every open collection connection is up, and
 * `"offline"` while any is down and reconnecting.
 */
export type ConnectionState = "connecting" | "online" | "offline";

/** Options of {@link connect}. */
export interface ConnectOptions {
  /**
   * A fixed credential sent in every `hello`: an admin key (for servers and
   * scripts; skips access rules) or a token the application does not renew.
   * If the server refuses it, requests and listeners fail with `unauthenticated`.
   */
  auth?: string;
  /**
   * A user's token provider (spec 13), e.g. `() => firebaseUser.getIdToken()`:
   * asked before every connection and again shortly before the server says
   * the token expires (the fresh one is sent without reconnecting). Resolve
   * `null` to connect anonymously. A provider that keeps failing, or tokens
   * the server keeps refusing, fail requests and listeners with
   * `unauthenticated`. Not together with `auth`.
   */
  getToken?: TokenProvider;
  /**
   * WebSocket constructor to use (e.g. the npm package `ws` on Node 20). When
   * omitted, `globalThis.WebSocket` is used.
   */
  WebSocket?: WebSocketConstructor;
  /**
   * The `fetch` of the files API's HTTP requests (spec 15). When omitted,
   * `globalThis.fetch` is used (browsers, Node 18+); only the files
   * functions use HTTP, everything else goes over WebSockets.
   */
  fetch?: FetchFunction;
  /** Bound on a request's total time, waiting for a connection included (default 30000 ms). */
  requestTimeoutMs?: number;
  /**
   * Reconnect backoff: exponential from `initialMs` (default 250) up to `maxMs`
   * (default 1000), with full jitter. Where the host fires them (browsers), the
   * `online` event and the page becoming visible again skip the wait.
   */
  reconnect?: ReconnectOptions;
  /** Called on every change of {@link Blaze.state}. */
  onStateChange?: (state: ConnectionState) => void;
}

/** Default request timeout in milliseconds. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

function webSocketBase(url: string): string {
  if (typeof url !== "string") throw invalidArgument("connect() takes the server URL");
  const trimmed = url.replace(/\/+$/, "");
  const match = /^(https?|wss?):\/\//i.exec(trimmed);
  if (match === null) throw invalidArgument(`the server URL must start with http://, https://, ws:// or wss://, got ${JSON.stringify(url)}`);
  const scheme = (match[1] as string).toLowerCase();
  const wsScheme = scheme === "https" || scheme === "wss" ? "wss" : "ws";
  return wsScheme + trimmed.slice(scheme.length);
}

function positive(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) throw invalidArgument(`${what} must be a non-negative number`);
  return value;
}

/**
 * A Blaze client. It opens one WebSocket per collection it uses, lazily, and
 * keeps it open (reconnecting as needed) until {@link Blaze.close}.
 */
export class Blaze {
  /** The server URL given to {@link connect}. */
  readonly url: string;
  readonly #wsBase: string;
  readonly #auth: string | undefined;
  readonly #getToken: TokenProvider | undefined;
  readonly #WebSocket: WebSocketConstructor;
  readonly #requestTimeoutMs: number;
  readonly #reconnectInitialMs: number;
  readonly #reconnectMaxMs: number;
  readonly #connections = new Map<string, CollectionConnection>();
  readonly #stateListeners = new Set<(state: ConnectionState) => void>();
  readonly #stopWatchingWakeUps: () => void;
  #state: ConnectionState = "connecting";
  #closed = false;
  /** @internal */
  readonly _snapshots: SnapshotCache;
  /** @internal The HTTP side (the files API). */
  readonly _http: HttpClient;

  /** Prefer {@link connect}. */
  constructor(url: string, options: ConnectOptions = {}) {
    this.url = url;
    this.#wsBase = webSocketBase(url);
    const WebSocket = options.WebSocket ?? globalWebSocket();
    if (WebSocket === undefined) {
      throw invalidArgument("this runtime has no global WebSocket: pass one in options.WebSocket (e.g. the npm package ws)");
    }
    this.#WebSocket = WebSocket;
    if (options.auth !== undefined && typeof options.auth !== "string") throw invalidArgument("auth must be a string");
    this.#auth = options.auth;
    if (options.getToken !== undefined && typeof options.getToken !== "function") throw invalidArgument("getToken must be a function");
    if (options.getToken !== undefined && options.auth !== undefined) throw invalidArgument("give auth or getToken, not both");
    this.#getToken = options.getToken;
    this.#requestTimeoutMs = positive(options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, "requestTimeoutMs");
    this.#reconnectInitialMs = positive(options.reconnect?.initialMs, DEFAULT_RECONNECT.initialMs, "reconnect.initialMs");
    this.#reconnectMaxMs = positive(options.reconnect?.maxMs, DEFAULT_RECONNECT.maxMs, "reconnect.maxMs");
    if (options.onStateChange !== undefined) this.#stateListeners.add(options.onStateChange);
    if (options.fetch !== undefined && typeof options.fetch !== "function") throw invalidArgument("fetch must be a function");
    this._http = new HttpClient({
      base: httpBase(url),
      auth: this.#auth,
      getToken: this.#getToken,
      fetch: options.fetch,
      requestTimeoutMs: this.#requestTimeoutMs,
    });
    this._snapshots = new SnapshotCache(this);
    this.#stopWatchingWakeUps = onWakeUp(() => {
      for (const connection of this.#connections.values()) connection.reconnectNow();
    });
  }

  /** The connection state (see {@link ConnectionState}). */
  get state(): ConnectionState {
    return this.#state;
  }

  /** A collection: `db.collection("rooms")`, `db.collection("rooms", "r1", "messages")`. */
  collection(path: string, ...more: string[]): CollectionRef {
    return new CollectionRef(this, joinPath([path, ...more]));
  }

  /** A document: `db.doc("rooms/r1")`, `db.doc("rooms", "r1")`. */
  doc(path: string, ...more: string[]): DocRef {
    return new DocRef(this, joinPath([path, ...more]));
  }

  /** A new, empty {@link WriteBatch}. */
  batch(): WriteBatch {
    return new WriteBatch(this);
  }

  /** Calls `callback` on every change of {@link Blaze.state} (not with the current state); returns the unsubscribe function. */
  onStateChange(callback: (state: ConnectionState) => void): Unsubscribe {
    this.#stateListeners.add(callback);
    return () => {
      this.#stateListeners.delete(callback);
    };
  }

  /**
   * Closes every connection. Pending requests fail with `cancelled` (a commit
   * waiting to be re-sent after a dropped connection with `outcome_unknown`;
   * a files request in flight is aborted with `cancelled`),
   * listeners stop without a callback, and later calls fail with `cancelled`.
   * Stops watching the host's `online` and `visibilitychange` events.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatchingWakeUps();
    this._http.close();
    for (const connection of this.#connections.values()) connection.close();
    this.#setState("offline");
    this.#stateListeners.clear();
  }

  /** @internal The connection of a collection, created on first use. */
  _connection(collection: string): CollectionConnection {
    let connection = this.#connections.get(collection);
    if (connection === undefined) {
      checkPath(collection, "collection");
      connection = new CollectionConnection(collection, {
        url: `${this.#wsBase}/v1/ws/${collection}`,
        auth: this.#auth,
        getToken: this.#getToken,
        WebSocket: this.#WebSocket,
        requestTimeoutMs: this.#requestTimeoutMs,
        reconnectInitialMs: this.#reconnectInitialMs,
        reconnectMaxMs: this.#reconnectMaxMs,
        onStatusChange: () => this.#updateState(),
      });
      this.#connections.set(collection, connection);
      if (this.#closed) connection.close();
    }
    return connection;
  }

  /** @internal Starts a listener; `makeSnapshot` turns results into what `next` receives. */
  _listen<T>(
    collection: string,
    target: ListenTarget,
    nextOrObserver: SnapshotObserver<T> | ((snapshot: T) => void),
    error: ((error: BlazeError) => void) | undefined,
    makeSnapshot: (docs: readonly ResultDoc[], changes: readonly ResultChange[], seq: number, fromReset: boolean) => T,
  ): Unsubscribe {
    const observer = toSafeObserver(nextOrObserver, error);
    const connection = this._connection(collection);
    const listener = new Listener(target, {
      results: (docs, changes, seq, fromReset) => observer.next(makeSnapshot(docs, changes, seq, fromReset)),
      error: (failure) => observer.error(failure),
    });
    connection.addListener(listener);
    return () => connection.removeListener(listener);
  }

  #updateState(): void {
    if (this.#closed) return;
    const connections = [...this.#connections.values()];
    if (!connections.some((c) => c.everUp)) return this.#setState("connecting");
    this.#setState(connections.some((c) => c.isDown) ? "offline" : "online");
  }

  #setState(state: ConnectionState): void {
    if (state === this.#state) return;
    this.#state = state;
    for (const listener of [...this.#stateListeners]) {
      try {
        listener(state);
      } catch (thrown) {
        reportCallbackError(thrown);
      }
    }
  }
}

/** Creates a client for the Blaze server at `url` (`http(s)://` or `ws(s)://`). Nothing is opened until first use. */
export function connect(url: string, options?: ConnectOptions): Blaze {
  return new Blaze(url, options);
}
