/**
 * Credentials end to end (spec 13, README "Identity"): the client against the
 * real worker under `wrangler dev`, started once for this file with the
 * development identity and a leeway of 0 s (so a token expires within
 * seconds). HS256 development tokens are minted here with node:crypto.
 *
 * The client has no public view of `welcome.auth`, so the tests pass it a
 * `WebSocket` (an option of `connect`) that records every frame each socket
 * sent and received, and how it closed.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { collection, connect, doc, getDoc, setDoc, type Blaze, type BlazeError, type ConnectOptions, type QuerySnapshot } from "../src/index.js";
import { WranglerDev } from "./helpers/wrangler.js";
import { eventually } from "./helpers/eventually.js";

const DEV_SECRET = "blaze-dev-secret-not-for-production";
const ADMIN_KEY = "blaze-dev-admin-key";
/** The development identity's checks, without leeway: a token is refused from `exp` on. */
const NO_LEEWAY = 'BLAZE_AUTH:{"leeway_secs":0,"hs256":{"issuer":"blaze-dev","audience":"blaze"}}';

const RUN = `r${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
let wrangler: WranglerDev | undefined;
const clients: Blaze[] = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An HS256 token for `uid` that expires `ttlSecs` after the current whole second (negative: already expired). */
function devToken(uid: string, ttlSecs: number, secret = DEV_SECRET): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const iat = Math.floor(Date.now() / 1000);
  const signed = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: uid, iss: "blaze-dev", aud: "blaze", iat, exp: iat + ttlSecs })}`;
  return `${signed}.${createHmac("sha256", secret).update(signed).digest("base64url")}`;
}

/** A frame as the server sent it (or the client), parsed. */
type Frame = Record<string, unknown> & { type: string };

/** What one socket of a client sent, received and how it closed. */
interface SocketLog {
  readonly sent: Frame[];
  readonly received: Array<{ at: number; frame: Frame }>;
  closed?: { code: number; reason: string; at: number };
}

/** A `ws` WebSocket that appends a {@link SocketLog} to `log` for every socket the client opens. */
function recordingWebSocket(log: SocketLog[]) {
  return class RecordingWebSocket extends WebSocket {
    constructor(url: string) {
      super(url);
      const entry: SocketLog = { sent: [], received: [] };
      log.push(entry);
      const send = this.send.bind(this) as (data: unknown, ...rest: unknown[]) => void;
      this.send = ((data: unknown, ...rest: unknown[]) => {
        entry.sent.push(JSON.parse(String(data)) as Frame);
        send(data, ...rest);
      }) as typeof this.send;
      this.addEventListener("message", (event) => entry.received.push({ at: Date.now(), frame: JSON.parse(String(event.data)) as Frame }));
      this.addEventListener("close", (event) => {
        entry.closed = { code: event.code, reason: event.reason, at: Date.now() };
      });
    }
  };
}

/** The `welcome` a socket received. */
function welcomeOf(socket: SocketLog | undefined): Frame {
  const welcome = socket?.received.find((r) => r.frame.type === "welcome")?.frame;
  assert.ok(welcome, "the socket received a welcome");
  return welcome;
}

/** A token provider that records every call, answering with `token(call)` (1-based; null: anonymous). */
function provider(token: (call: number) => string | null) {
  const p = { calls: 0, getToken: async () => token(++p.calls) };
  return p;
}

function open(options: ConnectOptions = {}): Blaze {
  assert.ok(wrangler, "wrangler dev is not running (see the before hook's error)");
  const db = connect(wrangler.url, { WebSocket, requestTimeoutMs: 15_000, reconnect: { initialMs: 50, maxMs: 400 }, ...options });
  clients.push(db);
  return db;
}

const unauthenticated = (e: unknown) => {
  const error = e as BlazeError;
  assert.equal(error.code, "unauthenticated", `expected unauthenticated, got ${error.code}: ${error.message}`);
  return true;
};

/**
 * A collection listener that records, in order, the id of every document
 * its snapshots report `added`, and every error.
 */
function listen(db: Blaze, path: readonly string[]) {
  const seen = { snapshots: 0, added: [] as string[], errors: [] as BlazeError[] };
  const stop = collection(db, ...(path as [string, ...string[]])).onSnapshot(
    (s: QuerySnapshot) => {
      seen.snapshots++;
      for (const c of s.docChanges()) if (c.type === "added") seen.added.push(c.doc.id);
    },
    (e) => seen.errors.push(e),
  );
  return { seen, stop };
}

/** Writes documents `w00`, `w01`, ... (`prefix` then a number) at `path` with `db`, one every `everyMs`, for `forMs`; returns their ids. */
async function writeEvery(db: Blaze, path: readonly string[], everyMs: number, forMs: number, prefix = "w"): Promise<string[]> {
  const ids: string[] = [];
  const end = Date.now() + forMs;
  for (let i = 0; Date.now() < end; i++) {
    const id = `${prefix}${String(i).padStart(2, "0")}`;
    await setDoc(doc(db, ...(path as [string, ...string[]]), id), { n: i });
    ids.push(id);
    await sleep(everyMs);
  }
  return ids;
}

describe("identity end to end (wrangler dev)", () => {
  before(async () => {
    wrangler = await WranglerDev.create({ vars: [NO_LEEWAY] });
    await wrangler.start();
  });

  after(async () => {
    for (const db of clients) db.close();
    await wrangler?.dispose();
  });

  it("getToken with a valid token: the connection is the user's, and reads, writes and listens work", async () => {
    const sockets: SocketLog[] = [];
    const alice = provider(() => devToken("alice", 3600));
    const db = open({ getToken: alice.getToken, WebSocket: recordingWebSocket(sockets) });
    const admin = open({ auth: ADMIN_KEY });
    const path = ["user", RUN, "rooms"] as const;

    const { seen, stop } = listen(db, path);
    await eventually(() => seen.snapshots === 1, "the first snapshot");
    const auth = welcomeOf(sockets[0]).auth as { kind: string; uid: string; expires: number };
    assert.deepEqual([auth.kind, auth.uid], ["user", "alice"]);
    const hello = sockets[0]?.sent[0];
    assert.equal(hello?.type, "hello");
    const claims = JSON.parse(Buffer.from(String(hello?.auth).split(".")[1] as string, "base64url").toString()) as { exp: number };
    assert.equal(auth.expires, claims.exp * 1000, "expires is the token's exp (leeway 0), in ms");

    await setDoc(doc(db, ...path, "mine"), { by: "alice" });
    assert.deepEqual((await getDoc(doc(admin, ...path, "mine"))).data(), { by: "alice" });
    await setDoc(doc(admin, ...path, "theirs"), { by: "admin" });
    assert.deepEqual((await getDoc(doc(db, ...path, "theirs"))).data(), { by: "admin" });
    await eventually(() => seen.added.length === 2, "both writes at the listener");
    assert.deepEqual(seen.added, ["mine", "theirs"]);
    assert.deepEqual(seen.errors, []);
    assert.equal(alice.calls, 1, "one connection, one token");
    assert.equal(sockets.length, 1);
    stop();
  });

  it("getToken resolving null connects anonymously (this worker serves anonymous requests: BLAZE_AUTH is set)", async () => {
    const sockets: SocketLog[] = [];
    const signedOut = provider(() => null);
    const db = open({ getToken: signedOut.getToken, WebSocket: recordingWebSocket(sockets) });
    const ref = doc(db, "anon", RUN, "rooms", "r1");
    await setDoc(ref, { by: "anonymous" });
    assert.deepEqual((await getDoc(ref)).data(), { by: "anonymous" });
    assert.deepEqual(sockets[0]?.sent[0], { type: "hello", protocol: 1, held_docs: true }, "a hello without auth");
    assert.equal(welcomeOf(sockets[0]).auth, undefined, "no auth in the welcome of an anonymous connection");
    assert.equal(signedOut.calls, 1);
  });

  it("an admin key works; a wrong key or a forged token is unauthenticated and writes nothing", async () => {
    const path = ["keys", RUN, "rooms"] as const;
    const sockets: SocketLog[] = [];
    const admin = open({ auth: ADMIN_KEY, WebSocket: recordingWebSocket(sockets) });
    await setDoc(doc(admin, ...path, "ok"), { n: 1 });
    assert.deepEqual((await getDoc(doc(admin, ...path, "ok"))).data(), { n: 1 });
    assert.equal((welcomeOf(sockets[0]).auth as { kind: string }).kind, "admin");

    const wrongSockets: SocketLog[] = [];
    const wrong = open({ auth: "wrong-key", WebSocket: recordingWebSocket(wrongSockets) });
    const started = Date.now();
    await assert.rejects(setDoc(doc(wrong, ...path, "bad"), { n: 2 }), (e: unknown) => {
      unauthenticated(e);
      assert.ok(!(e as Error).message.includes("wrong-key"), "the message does not echo the credential");
      return true;
    });
    assert.ok(Date.now() - started < 5_000, "a fixed credential fails at once");
    assert.equal(wrongSockets.length, 1, "a refused fixed credential is not retried");
    assert.deepEqual(
      [wrongSockets[0]?.received.map((r) => [r.frame.type, (r.frame.error as { code?: string } | undefined)?.code]), wrongSockets[0]?.closed?.code, wrongSockets[0]?.closed?.reason],
      [[["error", "unauthenticated"]], 4001, "unauthenticated"],
    );
    const { seen: refused } = listen(wrong, path);
    await eventually(() => refused.errors.length === 1, "the listener's error");
    unauthenticated(refused.errors[0]);

    const forged = provider(() => devToken("mallory", 3600, "not-the-development-secret-at-all"));
    const forger = open({ getToken: forged.getToken });
    await assert.rejects(setDoc(doc(forger, ...path, "forged"), { n: 3 }), unauthenticated);
    assert.equal(forged.calls, 3, "a provider's token is asked for three times, then the call fails");

    const stored = await collection(admin, ...path).get();
    assert.deepEqual(
      stored.docs.map((d) => d.id),
      ["ok"],
      "nothing was written by the refused clients",
    );
  });

  it("short-lived tokens are refreshed in-band: a 10 s listen on one socket receives every write in order", async () => {
    const sockets: SocketLog[] = [];
    const alice = provider(() => devToken("alice", 5)); // 4 to 5 s to live: refreshed after 80% of that
    const db = open({ getToken: alice.getToken, WebSocket: recordingWebSocket(sockets) });
    const admin = open({ auth: ADMIN_KEY });
    const path = ["refresh", RUN, "msgs"] as const;

    const { seen, stop } = listen(db, path);
    await eventually(() => seen.snapshots === 1, "the first snapshot");
    const written = await writeEvery(admin, path, 500, 10_000);
    await eventually(() => seen.added.length >= written.length, "every write at the listener");

    assert.deepEqual(seen.added, written, "every write, once, in order");
    assert.deepEqual(seen.errors, []);
    assert.ok(alice.calls >= 3, `the provider was asked before each expiry (${alice.calls} calls in 10 s of 4-5 s tokens)`);
    assert.equal(sockets.length, 1, "no reconnect: the token was refreshed in-band");
    const socket = sockets[0] as SocketLog;
    assert.equal(socket.closed, undefined);
    const refreshes = socket.sent.filter((f) => f.type === "auth");
    const answers = socket.received.filter((r) => r.frame.type === "authenticated").map((r) => r.frame.auth as { uid: string; expires: number });
    assert.equal(refreshes.length, alice.calls - 1, "every token after the first went in-band");
    assert.equal(answers.length, refreshes.length, "every refresh was accepted");
    assert.ok(answers.every((a) => a.uid === "alice"));
    stop();
  });

  it("a refresh the server refuses (an expired token) ends in unauthenticated, not in endless retries", async () => {
    const sockets: SocketLog[] = [];
    // The first token lives 4 to 5 s (its refresh is answered well before
    // it expires); every later one expired 10 s ago.
    const tokens = provider((call) => devToken("alice", call === 1 ? 5 : -10));
    const db = open({ getToken: tokens.getToken, WebSocket: recordingWebSocket(sockets) });
    const path = ["refused", RUN, "msgs"] as const;

    const { seen } = listen(db, path);
    await eventually(() => seen.errors.length > 0, "the listener's error", 20_000);
    assert.equal(seen.errors.length, 1);
    unauthenticated(seen.errors[0]);

    const first = sockets[0] as SocketLog;
    const refresh = first.sent.find((f) => f.type === "auth");
    assert.ok(refresh, "the refresh was sent in-band");
    const answer = first.received.find((r) => r.frame.rid === refresh.rid)?.frame;
    assert.deepEqual([answer?.type, (answer?.error as { code?: string } | undefined)?.code], ["error", "unauthenticated"]);
    assert.deepEqual([first.closed?.code, first.closed?.reason], [4001, "token_expired"]);
    const retries = sockets.slice(1);
    assert.deepEqual(
      retries.map((s) => [s.closed?.code, s.closed?.reason]),
      [
        [4001, "unauthenticated"],
        [4001, "unauthenticated"],
        [4001, "unauthenticated"],
      ],
      "three reconnects with a refused token, then the client gives up",
    );
    assert.equal(tokens.calls, 5, "the first token, the refresh, three reconnects");

    await sleep(1_000); // nothing more happens on its own
    assert.equal(sockets.length, 4);
    assert.equal(tokens.calls, 5);
    // The next call tries again (with fresh tokens from the provider), and fails the same way.
    await assert.rejects(getDoc(doc(db, ...path, "x")), unauthenticated);
    assert.equal(tokens.calls, 8);
  });

  it("a refresh for another user is refused in-band; the connection stays the first user's until it expires, then reconnects as the new one", async () => {
    // Spec 13.4: `auth` may not change the uid ("to change user, reconnect").
    // Both reference clients keep a refused refresh's connection until its
    // token expires, and the reconnect asks the provider again: the
    // application's provider now names bob, so the connection becomes bob's
    // (his rules apply to the resumed listeners) with no error and no loop.
    const sockets: SocketLog[] = [];
    const tokens = provider((call) => devToken(call === 1 ? "alice" : "bob", call === 1 ? 5 : 3600));
    const db = open({ getToken: tokens.getToken, WebSocket: recordingWebSocket(sockets) });
    const admin = open({ auth: ADMIN_KEY });
    const path = ["switch", RUN, "msgs"] as const;

    const { seen, stop } = listen(db, path);
    await eventually(() => seen.snapshots === 1, "the first snapshot");
    const expires = (welcomeOf(sockets[0]).auth as { expires: number }).expires;
    const written = await writeEvery(admin, path, 250, expires - Date.now() + 1_500);
    await eventually(() => seen.added.length >= written.length, "every write at the listener");

    assert.deepEqual(seen.added, written, "every write, once, in order, across the change of user");
    assert.deepEqual(seen.errors, []);
    const [first, second] = sockets as [SocketLog, SocketLog];
    const refreshes = first.sent.filter((f) => f.type === "auth");
    assert.equal(refreshes.length, 1, "one refresh, not retried on the same connection");
    const answer = first.received.find((r) => r.frame.rid === refreshes[0]?.rid)?.frame;
    assert.deepEqual([answer?.type, (answer?.error as { code?: string } | undefined)?.code], ["error", "unauthenticated"]);
    assert.ok(!JSON.stringify(answer).includes(String(refreshes[0]?.auth)), "the refusal does not echo the token");
    assert.deepEqual([first.closed?.code, first.closed?.reason], [4001, "token_expired"]);
    assert.equal(sockets.length, 2);
    assert.equal((welcomeOf(second).auth as { uid: string }).uid, "bob");
    assert.equal(tokens.calls, 3, "the first token, the refused refresh, the reconnect's");
    stop();
  });

  it("a token that expires without a refresh: close 4001 token_expired, a fresh token, resume missing nothing, own commits re-sent", async () => {
    const sockets: SocketLog[] = [];
    // The first token lives 2 to 3 s; the refresh fails (the provider is
    // offline), so the token expires; the reconnect gets a long-lived one.
    const tokens = provider((call) => {
      if (call === 2) throw new Error("the identity provider is offline");
      return devToken("alice", call === 1 ? 3 : 3600);
    });
    const db = open({ getToken: tokens.getToken, WebSocket: recordingWebSocket(sockets) });
    const admin = open({ auth: ADMIN_KEY });
    const path = ["expiry", RUN, "msgs"] as const;

    const { seen, stop } = listen(db, path);
    await eventually(() => seen.snapshots === 1, "the first snapshot");
    const expires = (welcomeOf(sockets[0]).auth as { expires: number }).expires;
    // The admin writes, and so does the user on the expiring connection: a
    // commit every 150 ms, and a burst just before the expiry that leaves
    // some in flight when the server stops answering.
    const window = expires - Date.now() + 2_000;
    const burstIds = Array.from({ length: 20 }, (_, i) => `b${String(i).padStart(2, "0")}`);
    const burst = sleep(expires - Date.now() - 5).then(() => Promise.all(burstIds.map((id) => setDoc(doc(db, ...path, id), { id }))));
    const [written, mine] = await Promise.all([writeEvery(admin, path, 200, window), writeEvery(db, path, 150, window, "u"), burst]);
    await eventually(() => seen.added.length >= written.length + mine.length + burstIds.length, "every write at the listener");

    const only = (prefix: string) => seen.added.filter((id) => id.startsWith(prefix));
    assert.deepEqual(only("w"), written, "every write of the admin, once, in order, across the expiry");
    assert.deepEqual(only("u"), mine, "every write of the user, once, in order, across the expiry");
    assert.deepEqual(only("b"), burstIds, "every commit of the burst, once, in order");
    assert.equal(seen.added.length, written.length + mine.length + burstIds.length);
    assert.deepEqual(seen.errors, []);
    assert.equal(tokens.calls, 3, "the first token, the failed refresh, the reconnect's");
    assert.equal(sockets.length, 2, "one reconnect");
    const [expired, fresh] = sockets as [SocketLog, SocketLog];
    assert.deepEqual([expired.closed?.code, expired.closed?.reason], [4001, "token_expired"]);
    assert.ok((expired.closed?.at ?? 0) >= expires, "not closed before the token expired");
    assert.equal(expired.sent.filter((f) => f.type === "auth").length, 0, "no refresh was sent");
    for (const { frame } of expired.received.filter((r) => r.frame.type === "change")) {
      for (const change of frame.changes as Array<{ doc?: { update_time: number } }>) {
        assert.ok((change.doc?.update_time ?? 0) < expires, `no change committed after the expiry was sent: ${JSON.stringify(frame)}`);
      }
    }
    const answered = new Set(expired.received.map((r) => r.frame.rid));
    const unanswered = expired.sent.filter((f) => f.type === "commit" && !answered.has(f.rid)).map((f) => f.commit_id);
    const resent = new Set(fresh.sent.filter((f) => f.type === "commit").map((f) => f.commit_id));
    assert.deepEqual(
      unanswered.filter((id) => !resent.has(id)),
      [],
      "every commit unanswered at the expiry was re-sent with its commit_id",
    );
    assert.equal((welcomeOf(fresh).auth as { uid: string }).uid, "alice");
    const resume = fresh.sent.find((f) => f.type === "listen");
    assert.equal(typeof resume?.since, "number", "the listener resumed with since");
    assert.ok(written.length > 10 && mine.length > 10);
    stop();
  });
});
