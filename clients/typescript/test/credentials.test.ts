/**
 * Credentials against a scripted fake WebSocket (spec 13): a fixed `auth`,
 * a `getToken` provider asked before every connection and before expiry (the
 * fresh token goes in-band), close 4001, and `unauthenticated` surfaced to
 * the application instead of endless retries. No sleeps: short token
 * lifetimes and `until`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { connect, type BlazeError, type QuerySnapshot } from "../src/index.js";
import { refreshDelay } from "../src/credential.js";
import { DEFAULT_LIMITS, FakeServer, until, type FakeSocket } from "./helpers/fake-websocket.js";

const FAST = { initialMs: 2, maxMs: 5 };

function numberedTokens() {
  const provider = { calls: 0, getToken: async () => `t${++provider.calls}` };
  return provider;
}

function welcome(ws: FakeSocket, expires: number): void {
  ws.serverSend({ type: "welcome", protocol: 1, limits: DEFAULT_LIMITS, auth: { kind: "user", uid: "alice", expires } });
}

function refuse(ws: FakeSocket): void {
  ws.serverSend({ type: "error", error: { code: "unauthenticated", message: "invalid signature" } });
  ws.serverClose(4001, "unauthenticated");
}

function wdoc(path: string, version: number) {
  return { path, exists: true, data: { n: version }, version, create_time: 1, update_time: version };
}

describe("credentials", () => {
  it("refreshes a minute before expiry, or at 80% of a short lifetime", () => {
    assert.equal(refreshDelay(3_600_000), 3_540_000);
    assert.equal(refreshDelay(100_000), 80_000);
    assert.equal(refreshDelay(500), 400);
    assert.equal(refreshDelay(-5), 0);
    assert.equal(refreshDelay(1e12), 2 ** 31 - 1, "within setTimeout's range");
  });

  it("asks getToken before each connection, refreshes in-band before expiry, and resumes after close 4001", async () => {
    const server = new FakeServer();
    server.autoWelcome = false;
    const tokens = numberedTokens();
    const db = connect("http://blaze.test", { WebSocket: server.WebSocket, reconnect: FAST, getToken: tokens.getToken });
    const snapshots: QuerySnapshot[] = [];
    const errors: BlazeError[] = [];
    db.collection("rooms").onSnapshot(
      (s) => snapshots.push(s),
      (e) => errors.push(e),
    );
    const ws = await server.socket(1);
    assert.deepEqual(await ws.next(), { type: "hello", protocol: 1, auth: "t1", held_docs: true });
    welcome(ws, Date.now() + 100); // refreshed after 80 ms
    const listen = await ws.nextRequest();
    ws.serverSend({ type: "snapshot", rid: listen.rid, target: 1, seq: 3, docs: [wdoc("rooms/a", 3)] });
    const refresh = await ws.nextRequest();
    assert.deepEqual([refresh.type, refresh.auth, typeof refresh.rid], ["auth", "t2", "number"]);
    ws.serverSend({ type: "authenticated", rid: refresh.rid, auth: { kind: "user", uid: "alice", expires: Date.now() + 3_600_000 } });
    ws.serverSend({ type: "change", target: 1, seq: 4, changes: [{ type: "added", doc: wdoc("rooms/b", 4), new_index: 1 }] });
    await until(() => snapshots.length === 2, 2000, "the change after the refresh");
    assert.equal(tokens.calls, 2);

    ws.serverClose(4001, "token_expired");
    const ws2 = await server.socket(2);
    assert.deepEqual(await ws2.next(), { type: "hello", protocol: 1, auth: "t3", held_docs: true });
    welcome(ws2, Date.now() + 3_600_000);
    const resume = await ws2.nextRequest();
    assert.deepEqual([resume.type, resume.rid !== undefined, resume.since], ["listen", true, 4]);
    ws2.serverSend({ type: "resumed", rid: resume.rid, target: 2, seq: 5, changes: [{ type: "removed", path: "rooms/a", old_index: 0 }] });
    await until(() => snapshots.length === 3, 2000, "the resumed snapshot");
    assert.deepEqual(
      snapshots[2]?.docs.map((d) => d.id),
      ["b"],
    );
    assert.deepEqual(errors, []);
    db.close();
  });

  it("a refused refresh keeps the connection and its listeners", async () => {
    const server = new FakeServer();
    server.autoWelcome = false;
    const tokens = numberedTokens();
    const db = connect("http://blaze.test", { WebSocket: server.WebSocket, reconnect: FAST, getToken: tokens.getToken });
    const errors: BlazeError[] = [];
    db.doc("rooms/a").onSnapshot(
      () => undefined,
      (e) => errors.push(e),
    );
    const ws = await server.socket(1);
    welcome(ws, Date.now() + 50);
    await ws.nextRequest(); // listen
    const refresh = await ws.nextRequest();
    ws.serverSend({ type: "error", rid: refresh.rid, error: { code: "unauthenticated", message: "another user" } });
    const read = db.doc("rooms/b").get();
    const get = await ws.nextRequest();
    ws.serverSend({ type: "doc", rid: get.rid, doc: { path: "rooms/b", exists: false } });
    assert.equal((await read).exists(), false);
    assert.deepEqual([errors, server.sockets.length], [[], 1]);
    db.close();
  });

  it("tokens the server keeps refusing fail the listener and pending reads with unauthenticated; new work tries again", async () => {
    const server = new FakeServer();
    server.autoWelcome = false;
    const tokens = numberedTokens();
    const db = connect("http://blaze.test", { WebSocket: server.WebSocket, reconnect: FAST, getToken: tokens.getToken });
    const errors: BlazeError[] = [];
    db.doc("rooms/a").onSnapshot(
      () => undefined,
      (e) => errors.push(e),
    );
    const read = db.doc("rooms/b").get();
    read.catch(() => undefined);
    for (const n of [1, 2, 3]) {
      const ws = await server.socket(n);
      assert.equal((await ws.next()).auth, `t${n}`, "a fresh token for every attempt");
      refuse(ws);
    }
    await assert.rejects(read, (e: BlazeError) => e.code === "unauthenticated" && e.message === "invalid signature");
    await until(() => errors.length === 1, 2000, "the listener's error");
    assert.equal(errors[0]?.code, "unauthenticated");
    assert.equal(server.sockets.length, 3, "no fourth attempt on its own");

    const again = db.doc("rooms/c").get();
    const ws = await server.socket(4);
    assert.equal((await ws.next()).auth, "t4");
    welcome(ws, Date.now() + 3_600_000);
    const get = await ws.nextRequest();
    ws.serverSend({ type: "doc", rid: get.rid, doc: { path: "rooms/c", exists: false } });
    assert.equal((await again).exists(), false);
    db.close();
  });

  it("a provider that keeps failing surfaces unauthenticated without opening a socket", async () => {
    const server = new FakeServer();
    let calls = 0;
    const db = connect("http://blaze.test", {
      WebSocket: server.WebSocket,
      reconnect: FAST,
      getToken: async () => {
        calls++;
        throw new Error("signed out");
      },
    });
    await assert.rejects(db.doc("rooms/a").get(), (e: BlazeError) => e.code === "unauthenticated" && /signed out/.test(e.message));
    assert.deepEqual([calls, server.sockets.length], [3, 0]);
    db.close();
  });

  it("a refused fixed credential fails at once; auth and getToken together are refused", async () => {
    const server = new FakeServer();
    server.autoWelcome = false;
    const db = connect("http://blaze.test", { WebSocket: server.WebSocket, reconnect: FAST, auth: "wrong-key" });
    const read = db.doc("rooms/a").get();
    const ws = await server.socket(1);
    assert.deepEqual(await ws.next(), { type: "hello", protocol: 1, auth: "wrong-key", held_docs: true });
    refuse(ws);
    await assert.rejects(read, (e: BlazeError) => e.code === "unauthenticated");
    assert.equal(server.sockets.length, 1);
    db.close();
    assert.throws(
      () => connect("http://blaze.test", { WebSocket: server.WebSocket, auth: "k", getToken: async () => "t" }),
      (e: BlazeError) => e.code === "invalid_argument",
    );
  });
});
