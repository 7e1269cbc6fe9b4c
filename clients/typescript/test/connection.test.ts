/**
 * The connection layer against a scripted fake WebSocket: handshake, rids,
 * listeners, reconnect with resume, in-flight commits and reads, timeouts,
 * handshake refusal, resync after a mismatch, connection state, commit ids,
 * held documents (spec 10.4.9), the backoff cap and the browser's wake-up
 * events. Reconnect delays are set to a few milliseconds, or driven by
 * Node's mock timers; no other sleeps.
 */
import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import { connect, type Blaze, type BlazeError, type ConnectionState, type DocumentSnapshot, type QuerySnapshot } from "../src/index.js";
import { backoffDelay, DEFAULT_RECONNECT } from "../src/backoff.js";
import { PROTOCOL_ERROR_ATTEMPTS, PROTOCOL_ERROR_WINDOW_MS } from "../src/connection.js";
import { FakeServer, tick, until, type FakeSocket } from "./helpers/fake-websocket.js";

const FAST = { initialMs: 2, maxMs: 5 };

function setup(options: { auth?: string; requestTimeoutMs?: number } = {}) {
  const server = new FakeServer();
  const states: ConnectionState[] = [];
  const db = connect("http://blaze.test/", {
    WebSocket: server.WebSocket,
    reconnect: FAST,
    onStateChange: (s) => states.push(s),
    ...options,
  });
  return { server, db, states };
}

function wdoc(path: string, version: number, data: Record<string, unknown>) {
  return { path, exists: true, data, version, create_time: 1, update_time: version };
}

function summary(s: QuerySnapshot): string {
  return `${s.docs.map((d) => d.id).join(",")} | ${s.docChanges().map((c) => `${c.type}:${c.doc.id}:${c.oldIndex}>${c.newIndex}`).join(" ")}`;
}

async function listenQuery(db: Blaze, socket: () => Promise<FakeSocket>) {
  const events: QuerySnapshot[] = [];
  const errors: BlazeError[] = [];
  const stop = db.collection("rooms").orderBy("n").onSnapshot(
    (s) => events.push(s),
    (e) => errors.push(e),
  );
  const ws = await socket();
  const listen = await ws.nextRequest();
  return { events, errors, stop, ws, listen };
}

describe("connection", () => {
  it("opens lazily, sends hello with auth first, uses /v1/ws/{collection}, matches answers by rid", async () => {
    const { server, db } = setup({ auth: "token-1" });
    assert.equal(server.sockets.length, 0, "nothing is opened before first use");
    const a = db.doc("rooms/a").get();
    const b = db.doc("rooms/b").get();
    const ws = await server.socket(1);
    assert.equal(ws.url, "ws://blaze.test/v1/ws/rooms");
    assert.deepEqual(await ws.next(), { type: "hello", protocol: 1, auth: "token-1", held_docs: true });
    const ra = await ws.nextRequest();
    const rb = await ws.nextRequest();
    assert.deepEqual([ra.type, ra.path, rb.path], ["get", "rooms/a", "rooms/b"]);
    assert.notEqual(ra.rid, rb.rid);
    // Answer out of order: rids, not order, match them.
    ws.serverSend({ type: "doc", rid: rb.rid, doc: { path: "rooms/b", exists: false } });
    ws.serverSend({ type: "doc", rid: ra.rid, doc: wdoc("rooms/a", 3, { x: 1 }), extra: "ignored" });
    const [sa, sb] = await Promise.all([a, b]);
    assert.deepEqual([sa.exists(), sa.data(), sa.version, sb.exists(), sb.data()], [true, { x: 1 }, 3, false, undefined]);
    // Another collection gets its own socket.
    void db.doc("users/u").get().catch(() => undefined);
    const ws2 = await server.socket(2);
    assert.equal(ws2.url, "ws://blaze.test/v1/ws/users");
    db.close();
  });

  it("keeps the server's error code and write_index", async () => {
    const { server, db } = setup();
    const commit = db.batch().set(db.doc("rooms/a"), { n: 1 }).patch(db.doc("rooms/b"), [{ op: "test", path: "/n", value: 9 }]).commit();
    const ws = await server.socket(1);
    const req = await ws.nextRequest();
    assert.deepEqual(req.writes, [
      { op: "set", id: "a", data: { n: 1 } },
      { op: "patch", id: "b", patch: [{ op: "test", path: "/n", value: 9 }] },
    ]);
    ws.serverSend({ type: "error", rid: req.rid, error: { code: "patch_test_failed", message: "no", write_index: 1 } });
    await assert.rejects(commit, (e: any) => e.name === "BlazeError" && e.code === "patch_test_failed" && e.writeIndex === 1);
    const unknown = db.doc("rooms/a").get();
    const r2 = await ws.nextRequest();
    ws.serverSend({ type: "error", rid: r2.rid, error: { code: "some_future_code", message: "new" } });
    await assert.rejects(unknown, (e: any) => e.code === "some_future_code" && e.writeIndex === undefined);
    db.close();
  });

  it("an error without rid answers the oldest outstanding request", async () => {
    const { server, db } = setup();
    const first = db.doc("rooms/a").get();
    const second = db.doc("rooms/b").get();
    const ws = await server.socket(1);
    await ws.nextRequest();
    const r2 = await ws.nextRequest();
    ws.serverSend({ type: "error", error: { code: "frame_too_deep", message: "deep" } });
    ws.serverSend({ type: "doc", rid: r2.rid, doc: { path: "rooms/b", exists: false } });
    await assert.rejects(first, (e: any) => e.code === "frame_too_deep");
    assert.equal((await second).exists(), false);
    db.close();
  });

  it("refuses a frame over the announced max_frame_bytes without sending it", async () => {
    const { server, db } = setup();
    server.limits = { ...server.limits, max_frame_bytes: 200 };
    const big = db.doc("rooms/a").set({ text: "x".repeat(300) });
    await assert.rejects(big, (e: any) => e.code === "frame_too_large");
    const ws = server.last;
    assert.deepEqual(ws.sent.map((f) => f.type), ["hello"]);
    db.close();
  });

  it("a query listener gets the snapshot, then changes with Firestore indexes; duplicates are ignored", async () => {
    const { server, db } = setup();
    const { events, ws, listen } = await listenQuery(db, () => server.socket(1));
    assert.deepEqual(listen, { type: "listen", rid: listen.rid, query: { collection: "rooms", order_by: [{ field: "n", direction: "asc" }] } });
    ws.serverSend({ type: "snapshot", rid: listen.rid, target: 7, seq: 3, docs: [wdoc("rooms/a", 1, { n: 1 }), wdoc("rooms/b", 2, { n: 2 })] });
    assert.equal(summary(events[0] as QuerySnapshot), "a,b | added:a:-1>0 added:b:-1>1");
    assert.equal(events[0]?.seq, 3);
    ws.serverSend({ type: "change", target: 7, seq: 4, changes: [{ type: "added", doc: wdoc("rooms/c", 4, { n: 0 }), new_index: 0 }] });
    ws.serverSend({
      type: "change",
      target: 7,
      seq: 5,
      changes: [
        { type: "removed", path: "rooms/b", old_index: 2 },
        { type: "modified", path: "rooms/a", patch: [{ op: "replace", path: "/n", value: -1 }], version: 5, create_time: 1, update_time: 5, old_index: 1, new_index: 0 },
      ],
    });
    ws.serverSend({ type: "change", target: 7, seq: 5, changes: [{ type: "removed", path: "rooms/a", old_index: 0 }] }); // duplicate seq
    ws.serverSend({ type: "change", target: 99, seq: 6, changes: [{ type: "removed", path: "rooms/a", old_index: 0 }] }); // another target
    assert.deepEqual(events.map(summary), [
      "a,b | added:a:-1>0 added:b:-1>1",
      "c,a,b | added:c:-1>0",
      "a,c | removed:b:2>-1 modified:a:1>0",
    ]);
    const last = events[2] as QuerySnapshot;
    assert.deepEqual([last.seq, last.size, last.empty, last.fromReset, last.docs[0]?.data(), last.docs[0]?.version], [5, 2, false, false, { n: -1 }, 5]);
    assert.equal(events[1]?.docs[0], last.docs[1], "unchanged documents keep their snapshot object");
    db.close();
  });

  it("a document listener reports exists() false, then added, modified and removed", async () => {
    const { server, db } = setup();
    const seen: DocumentSnapshot[] = [];
    db.doc("rooms/r1").onSnapshot((s) => seen.push(s));
    const ws = await server.socket(1);
    const listen = await ws.nextRequest();
    assert.deepEqual(listen, { type: "listen", rid: listen.rid, doc: "rooms/r1" });
    ws.serverSend({ type: "snapshot", rid: listen.rid, target: 1, seq: 0, docs: [] });
    ws.serverSend({ type: "change", target: 1, seq: 2, changes: [{ type: "added", doc: wdoc("rooms/r1", 2, { x: 1 }), new_index: 0 }] });
    ws.serverSend({
      type: "change",
      target: 1,
      seq: 3,
      changes: [{ type: "modified", path: "rooms/r1", patch: [{ op: "replace", path: "/x", value: 2 }], version: 3, create_time: 2, update_time: 3, old_index: 0, new_index: 0 }],
    });
    ws.serverSend({ type: "change", target: 1, seq: 4, changes: [{ type: "removed", path: "rooms/r1", old_index: 0 }] });
    assert.deepEqual(
      seen.map((s) => [s.id, s.exists(), s.data(), s.version, s.createTime]),
      [
        ["r1", false, undefined, undefined, undefined],
        ["r1", true, { x: 1 }, 2, 1],
        ["r1", true, { x: 2 }, 3, 2],
        ["r1", false, undefined, undefined, undefined],
      ],
    );
    db.close();
  });

  it("listeners sharing a target each apply a change frame once", async () => {
    const { server, db } = setup();
    const a: QuerySnapshot[] = [];
    const b: QuerySnapshot[] = [];
    db.collection("rooms").onSnapshot((s) => a.push(s));
    db.collection("rooms").onSnapshot((s) => b.push(s));
    const ws = await server.socket(1);
    const l1 = await ws.nextRequest();
    const l2 = await ws.nextRequest();
    ws.serverSend({ type: "snapshot", rid: l1.rid, target: 1, seq: 0, docs: [] });
    ws.serverSend({ type: "snapshot", rid: l2.rid, target: 1, seq: 0, docs: [] });
    ws.serverSend({ type: "change", target: 1, seq: 1, changes: [{ type: "added", doc: wdoc("rooms/x", 1, {}), new_index: 0 }] });
    assert.deepEqual([a.map(summary), b.map(summary)], [[" | ", "x | added:x:-1>0"], [" | ", "x | added:x:-1>0"]]);
    db.close();
  });

  it("unsubscribe sends unlisten for the listen's rid and stops callbacks", async () => {
    const { server, db } = setup();
    const { events, stop, ws, listen } = await listenQuery(db, () => server.socket(1));
    ws.serverSend({ type: "snapshot", rid: listen.rid, target: 2, seq: 0, docs: [] });
    stop();
    stop();
    const unlisten = await ws.nextRequest();
    assert.deepEqual(unlisten, { type: "unlisten", rid: unlisten.rid, listener: listen.rid });
    ws.serverSend({ type: "change", target: 2, seq: 1, changes: [{ type: "added", doc: wdoc("rooms/x", 1, { n: 1 }), new_index: 0 }] });
    ws.serverSend({ type: "unlistened", rid: unlisten.rid });
    assert.equal(events.length, 1);
    assert.equal(ws.sent.length, 3, "hello, listen, one unlisten");
    db.close();
  });

  it("acknowledges what it reads every 64 frames or 64 Ki code units, counting welcome, from 0 on each socket", async () => {
    const { server, db } = setup();
    const got = db.doc("rooms/a").get();
    const ws = await server.socket(1);
    await ws.nextRequest();
    for (let i = 0; i < 62; i++) ws.serverSend({ type: "unlistened", rid: 0 });
    assert.deepEqual(ws.sent.map((f) => f.type), ["hello", "get"], "63 frames read: no ack yet");
    ws.serverSend({ type: "unlistened", rid: 0 });
    assert.deepEqual(await ws.next(), { type: "ack", frames: 64 });
    ws.serverSend({ type: "unlistened", rid: 0, pad: "x".repeat(64 * 1024) });
    assert.deepEqual(await ws.next(), { type: "ack", frames: 65 });
    ws.serverClose(1006, "");
    const ws2 = await server.socket(2);
    await ws2.nextRequest();
    for (let i = 0; i < 63; i++) ws2.serverSend({ type: "unlistened", rid: 0 });
    assert.deepEqual(await ws2.next(), { type: "ack", frames: 64 });
    ws2.serverSend({ type: "doc", rid: (ws2.sent[1] as { rid: number }).rid, doc: { path: "rooms/a", exists: false } });
    assert.equal((await got).exists(), false);
    db.close();
  });

  it("a refused listen calls the error callback once", async () => {
    const { server, db } = setup();
    const errors: BlazeError[] = [];
    db.collection("rooms").limit(0).onSnapshot(() => assert.fail("no snapshot"), (e) => errors.push(e));
    const ws = await server.socket(1);
    const listen = await ws.nextRequest();
    assert.equal(listen.query.limit, 0);
    ws.serverSend({ type: "error", rid: listen.rid, error: { code: "invalid_query", message: "limit 0" } });
    assert.deepEqual(errors.map((e) => e.code), ["invalid_query"]);
    db.close();
  });

  it("a listen refused at once with permission_denied calls the error callback once and is not listened to again", async () => {
    const { server, db } = setup();
    const errors: BlazeError[] = [];
    db.doc("rooms/a").onSnapshot(() => assert.fail("no snapshot"), (e) => errors.push(e));
    const ws = await server.socket(1);
    const listen = await ws.nextRequest();
    const message = "the access rules do not allow this request";
    ws.serverSend({ type: "error", rid: listen.rid, error: { code: "permission_denied", message } });
    assert.deepEqual(
      errors.map((e) => [e.name, e.code, e.message]),
      [["BlazeError", "permission_denied", message]],
    );
    const read = db.doc("rooms/b").get();
    ws.serverClose(1006);
    const ws2 = await server.socket(2);
    const next = await ws2.nextRequest();
    assert.equal(next.type, "get", "only the read is sent again, no listen");
    ws2.serverSend({ type: "doc", rid: next.rid, doc: { path: "rooms/b", exists: false } });
    assert.equal((await read).exists(), false);
    assert.equal(errors.length, 1);
    db.close();
  });

  it("a live listener the server ends with permission_denied (the listen's rid) fails once, is forgotten, and is not resubscribed", async () => {
    const { server, db } = setup();
    const { events, errors, stop, ws, listen } = await listenQuery(db, () => server.socket(1));
    const docs: DocumentSnapshot[] = [];
    const kept: BlazeError[] = [];
    db.doc("rooms/a").onSnapshot((s) => docs.push(s), (e) => kept.push(e));
    const docListen = await ws.nextRequest();
    ws.serverSend({ type: "snapshot", rid: listen.rid, target: 1, seq: 3, docs: [wdoc("rooms/a", 3, { n: 1 })] });
    ws.serverSend({ type: "snapshot", rid: docListen.rid, target: 2, seq: 3, docs: [wdoc("rooms/a", 3, { n: 1 })] });
    assert.equal(events.length, 1);

    // The rules deny the query listener now: an error with its listen's rid, then that commit's changes.
    ws.serverSend({ type: "error", rid: listen.rid, error: { code: "permission_denied", message: "the access rules do not allow this request" } });
    assert.deepEqual(errors.map((e) => [e.name, e.code]), [["BlazeError", "permission_denied"]]);
    ws.serverSend({ type: "change", target: 1, seq: 4, changes: [{ type: "modified", path: "rooms/a", patch: [{ op: "replace", path: "/n", value: 2 }], version: 4, create_time: 1, update_time: 4, old_index: 0, new_index: 0 }] });
    ws.serverSend({ type: "change", target: 2, seq: 4, changes: [{ type: "modified", path: "rooms/a", patch: [{ op: "replace", path: "/n", value: 2 }], version: 4, create_time: 1, update_time: 4, old_index: 0, new_index: 0 }] });
    assert.equal(events.length, 1, "nothing more reaches the ended listener");
    assert.deepEqual(docs.map((d) => d.data()), [{ n: 1 }, { n: 2 }], "the other listener goes on");
    // An error for a rid nobody holds changes nothing.
    ws.serverSend({ type: "error", rid: 999, error: { code: "permission_denied", message: "?" } });
    assert.deepEqual([errors.length, kept.length], [1, 0]);

    stop(); // after the end: nothing to unlisten
    ws.serverClose(1006);
    const ws2 = await server.socket(2);
    const relisten = await ws2.nextRequest();
    assert.deepEqual(relisten, { type: "listen", rid: relisten.rid, doc: "rooms/a", since: 4 }, "only the live listener resumes");
    ws2.serverSend({ type: "resumed", rid: relisten.rid, target: 1, seq: 4, changes: [] });
    assert.deepEqual(ws.sent.map((f) => f.type), ["hello", "listen", "listen"], "no unlisten for the ended listener");
    db.close();
    assert.deepEqual(ws2.sent.map((f) => f.type), ["hello", "listen"]);
  });

  it("denied get, query, count and commit reject with permission_denied (a batch with its write_index)", async () => {
    const { server, db } = setup();
    const todos = db.collection("todos");
    const get = db.doc("todos/a").get();
    const list = todos.get();
    const count = todos.count();
    const commit = db.batch().set(db.doc("todos/b"), { owner: "bob" }).delete(db.doc("todos/a")).commit();
    const ws = await server.socket(1);
    const sent = [await ws.nextRequest(), await ws.nextRequest(), await ws.nextRequest(), await ws.nextRequest()];
    assert.deepEqual(sent.map((f) => f.type), ["get", "query", "count", "commit"]);
    const message = "the access rules do not allow this request";
    for (const f of sent.slice(0, 3)) ws.serverSend({ type: "error", rid: f.rid, error: { code: "permission_denied", message } });
    ws.serverSend({ type: "error", rid: sent[3]?.rid, error: { code: "permission_denied", message, write_index: 1 } });
    for (const p of [get, list, count]) {
      await assert.rejects(p, (e: any) => e.name === "BlazeError" && e.code === "permission_denied" && e.writeIndex === undefined && e.message === message);
    }
    await assert.rejects(commit, (e: any) => e.code === "permission_denied" && e.writeIndex === 1);
    db.close();
  });

  it("reconnects with backoff, re-sends hello and resumes every listener with since", async () => {
    const { server, db, states } = setup({ auth: "t" });
    const { events, ws, listen } = await listenQuery(db, () => server.socket(1));
    const docs: DocumentSnapshot[] = [];
    db.doc("rooms/a").onSnapshot((s) => docs.push(s));
    const docListen = await ws.nextRequest();
    ws.serverSend({ type: "snapshot", rid: listen.rid, target: 1, seq: 5, docs: [wdoc("rooms/a", 5, { n: 1 })] });
    ws.serverSend({ type: "snapshot", rid: docListen.rid, target: 2, seq: 5, docs: [wdoc("rooms/a", 5, { n: 1 })] });
    ws.serverSend({ type: "change", target: 1, seq: 6, changes: [{ type: "added", doc: wdoc("rooms/b", 6, { n: 2 }), new_index: 1 }] });
    assert.deepEqual(states, ["online"]);

    ws.serverClose(1006);
    assert.equal(db.state, "offline");
    const ws2 = await server.socket(2);
    assert.deepEqual(await ws2.next(), { type: "hello", protocol: 1, auth: "t", held_docs: true });
    const relisten = [await ws2.nextRequest(), await ws2.nextRequest()];
    const q = relisten.find((f) => f.query !== undefined);
    const d = relisten.find((f) => f.doc !== undefined);
    assert.equal(q?.since, 6, "the query listener resumes from the last seq it saw");
    assert.equal(d?.since, 5, "the doc listener resumes from its own last seq");
    assert.deepEqual(states, ["online", "offline", "online"]);
    ws2.serverSend({
      type: "resumed",
      rid: q?.rid,
      target: 11,
      seq: 9,
      changes: [{ type: "modified", path: "rooms/a", patch: [{ op: "replace", path: "/n", value: 3 }], version: 8, create_time: 1, update_time: 8, old_index: 0, new_index: 1 }],
    });
    ws2.serverSend({ type: "resumed", rid: d?.rid, target: 12, seq: 5, changes: [] });
    ws2.serverSend({ type: "change", target: 11, seq: 10, changes: [{ type: "removed", path: "rooms/b", old_index: 0 }] });
    assert.deepEqual(events.map(summary), [
      "a | added:a:-1>0",
      "a,b | added:b:-1>1",
      "b,a | modified:a:0>1",
      "a | removed:b:0>-1",
    ]);
    assert.equal(docs.length, 1, "an empty resume reports nothing");
    db.close();
  });

  it("a send that throws closes the socket with a code a browser accepts, then reconnects and resumes", async () => {
    const { server, db } = setup();
    const { ws, listen } = await listenQuery(db, () => server.socket(1));
    ws.serverSend({ type: "snapshot", rid: listen.rid, target: 1, seq: 5, docs: [wdoc("rooms/a", 5, { n: 1 })] });
    ws.failNextSend = new Error("the socket is failing");
    const write = db.doc("rooms/b").set({ n: 2 });
    assert.deepEqual(ws.closedByClient, { code: 1000, reason: "send failed" }, "the failing socket is closed, not left open");
    assert.equal(ws.closed, true);
    const ws2 = await server.socket(2);
    assert.equal((await ws2.next()).type, "hello");
    const again = [await ws2.nextRequest(), await ws2.nextRequest()];
    const relisten = again.find((f) => f.type === "listen");
    const commit = again.find((f) => f.type === "commit");
    assert.equal(relisten?.since, 5, "the listener resumes on the new socket");
    assert.deepEqual(commit?.writes, [{ op: "set", id: "b", data: { n: 2 } }], "the write is sent on the new socket");
    ws2.serverSend({ type: "committed", rid: commit?.rid, seq: 6, time: 6, writes: [{ id: "b", exists: true }] });
    await write;
    db.close();
  });

  it("a reset snapshot replaces the results and reports the difference", async () => {
    const { server, db } = setup();
    const { events, ws, listen } = await listenQuery(db, () => server.socket(1));
    ws.serverSend({ type: "snapshot", rid: listen.rid, target: 1, seq: 5, docs: [wdoc("rooms/a", 1, { n: 1 }), wdoc("rooms/b", 2, { n: 2 }), wdoc("rooms/c", 3, { n: 3 })] });
    ws.serverClose(4008, "slow_consumer");
    const ws2 = await server.socket(2);
    const relisten = await ws2.nextRequest();
    assert.equal(relisten.since, 5);
    ws2.serverSend({ type: "snapshot", rid: relisten.rid, target: 1, seq: 40, reset: true, docs: [wdoc("rooms/b", 2, { n: 2 }), wdoc("rooms/d", 30, { n: 4 }), wdoc("rooms/a", 31, { n: 5 })] });
    const last = events[events.length - 1] as QuerySnapshot;
    assert.equal(summary(last), "b,d,a | removed:c:2>-1 added:d:-1>2 modified:a:0>2");
    assert.equal(last.fromReset, true);
    assert.equal(last.seq, 40);
    // A later resume uses the reset's seq.
    ws2.serverClose(1011, "internal");
    const ws3 = await server.socket(3);
    assert.equal((await ws3.nextRequest()).since, 40);
    db.close();
  });

  it("changes that do not fit trigger a fresh listen and a diff, not a wrong result", async () => {
    const { server, db } = setup();
    const { events, ws, listen } = await listenQuery(db, () => server.socket(1));
    ws.serverSend({ type: "snapshot", rid: listen.rid, target: 1, seq: 1, docs: [wdoc("rooms/a", 1, { n: 1 })] });
    ws.serverSend({ type: "change", target: 1, seq: 2, changes: [{ type: "removed", path: "rooms/zz", old_index: 0 }] });
    const unlisten = await ws.nextRequest();
    assert.deepEqual(unlisten, { type: "unlisten", rid: unlisten.rid, listener: listen.rid });
    const fresh = await ws.nextRequest();
    assert.equal(fresh.type, "listen");
    assert.equal(fresh.since, undefined, "resync asks for a full snapshot");
    ws.serverSend({ type: "unlistened", rid: unlisten.rid });
    ws.serverSend({ type: "snapshot", rid: fresh.rid, target: 1, seq: 2, docs: [wdoc("rooms/b", 2, { n: 0 }), wdoc("rooms/a", 1, { n: 1 })] });
    assert.deepEqual(events.map(summary), ["a | added:a:-1>0", "b,a | added:b:-1>0"]);
    assert.equal(events[1]?.fromReset, true);
    db.close();
  });

  it("every commit carries a fresh commit_id of 22+ characters of [A-Za-z0-9_-]", async () => {
    const { server, db } = setup();
    void db.doc("rooms/a").set({ n: 1 }).catch(() => undefined);
    void db.batch().create(db.doc("rooms/b"), {}).delete(db.doc("rooms/c")).commit().catch(() => undefined);
    const ws = await server.socket(1);
    const first = await ws.nextRequest();
    const second = await ws.nextRequest();
    for (const frame of [first, second]) {
      assert.equal(frame.type, "commit");
      assert.match(frame.commit_id, /^[A-Za-z0-9_-]{22,64}$/);
    }
    assert.notEqual(first.commit_id, second.commit_id);
    const raw = ws.rawSent.find((text) => text.includes(first.commit_id)) as string;
    assert.ok(raw.startsWith(`{"type":"commit","rid":${first.rid},"collection":"rooms","commit_id":"${first.commit_id}","writes":[`), raw);
    db.close();
  });

  it("a commit in flight when the connection drops is re-sent with the same commit_id after the reconnect; so are reads", async () => {
    const { server, db } = setup();
    const commit = db.doc("rooms/a").set({ n: 1 });
    const read = db.doc("rooms/b").get();
    const ws = await server.socket(1);
    const c = await ws.nextRequest();
    const r = await ws.nextRequest();
    assert.deepEqual([c.type, r.type], ["commit", "get"]);
    ws.serverClose(1006);
    const ws2 = await server.socket(2);
    const resentCommit = await ws2.nextRequest();
    const resentRead = await ws2.nextRequest();
    assert.deepEqual({ ...resentCommit, rid: 0 }, { ...c, rid: 0 }, "the same commit with the same commit_id");
    assert.deepEqual({ ...resentRead, rid: 0 }, { type: "get", rid: 0, path: "rooms/b" });
    ws2.serverSend({ type: "committed", rid: resentCommit.rid, seq: 7, time: 1234, writes: [{ id: "a", exists: true }] });
    assert.deepEqual(await commit, { seq: 7, time: 1234, writes: [{ id: "a", exists: true }] });
    ws2.serverSend({ type: "doc", rid: resentRead.rid, doc: wdoc("rooms/b", 1, { ok: true }) });
    assert.deepEqual((await read).data(), { ok: true });
    await tick();
    assert.equal(ws2.sent.filter((f) => f.type === "commit").length, 1, "re-sent once");
    db.close();
  });

  it("a commit that cannot be re-sent fails with outcome_unknown: requestTimeoutMs passed, or the client was closed", async () => {
    // Not back within requestTimeoutMs.
    {
      const { server, db } = setup({ requestTimeoutMs: 100 });
      const sent = db.doc("rooms/a").set({ n: 1 });
      const ws = await server.socket(1);
      assert.equal((await ws.nextRequest()).type, "commit");
      server.refuse = true;
      ws.serverClose(1006);
      const neverSent = db.doc("rooms/b").set({ n: 2 });
      await assert.rejects(sent, (e: any) => e.code === "outcome_unknown");
      await assert.rejects(neverSent, (e: any) => e.code === "unavailable", "a commit never sent was not applied");
      db.close();
    }
    // Closed while waiting for the connection.
    {
      const { server, db } = setup();
      const sent = db.doc("rooms/a").set({ n: 1 });
      const ws = await server.socket(1);
      assert.equal((await ws.nextRequest()).type, "commit");
      server.refuse = true;
      ws.serverClose(1006);
      const neverSent = db.doc("rooms/b").set({ n: 2 });
      await until(() => server.sockets.length >= 3, 2000, "a refused reconnect attempt");
      db.close();
      await assert.rejects(sent, (e: any) => e.code === "outcome_unknown");
      await assert.rejects(neverSent, (e: any) => e.code === "cancelled");
    }
  });

  it("requests wait for a connection, bounded by requestTimeoutMs (unavailable / deadline_exceeded)", async () => {
    const { server, db, states } = setup({ requestTimeoutMs: 40 });
    server.refuse = true;
    const waiting = db.doc("rooms/a").get();
    await assert.rejects(waiting, (e: any) => e.code === "unavailable");
    assert.ok(server.sockets.length >= 2, "it kept retrying");
    assert.deepEqual(states, [], "never up: still connecting");
    assert.equal(db.state, "connecting");
    server.refuse = false;
    const late = db.doc("rooms/a").get();
    await until(() => server.sockets.some((s) => s.sent.some((f) => f.type === "get")), 2000, "the get to be sent");
    await assert.rejects(late, (e: any) => e.code === "deadline_exceeded");
    assert.equal(db.state, "online");
    db.close();
  });

  it("a request queued while reconnecting is sent once the connection is back", async () => {
    const { server, db, states } = setup();
    const first = db.doc("rooms/a").get();
    const ws = await server.socket(1);
    const r1 = await ws.nextRequest();
    ws.serverSend({ type: "doc", rid: r1.rid, doc: { path: "rooms/a", exists: false } });
    await first;
    server.refuse = true;
    ws.serverClose(1006);
    const queued = db.doc("rooms/b").get();
    await until(() => server.sockets.length >= 4, 2000, "several refused attempts");
    assert.equal(db.state, "offline");
    server.refuse = false;
    await until(() => server.last.sent.some((f) => f.type === "get"), 2000, "the queued get");
    const sent = server.last.sent.find((f) => f.type === "get");
    assert.equal(sent?.path, "rooms/b");
    server.last.serverSend({ type: "doc", rid: sent?.rid, doc: { path: "rooms/b", exists: false } });
    assert.equal((await queued).exists(), false);
    assert.deepEqual(states, ["online", "offline", "online"]);
    db.close();
  });

  it("a refused handshake (unsupported_protocol, close 4002) fails requests and listeners and does not reconnect", async () => {
    const { server, db } = setup();
    server.autoWelcome = false;
    const errors: BlazeError[] = [];
    db.collection("rooms").onSnapshot(() => assert.fail("no snapshot"), (e) => errors.push(e));
    const read = db.doc("rooms/a").get();
    const ws = await server.socket(1);
    await ws.next();
    ws.serverSend({ type: "error", error: { code: "unsupported_protocol", message: "v1 only" } });
    ws.serverClose(4002, "unsupported_protocol");
    await assert.rejects(read, (e: any) => e.code === "unsupported_protocol");
    assert.deepEqual(errors.map((e) => e.code), ["unsupported_protocol"]);
    await assert.rejects(db.doc("rooms/b").get(), (e: any) => e.code === "unsupported_protocol");
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(server.sockets.length, 1, "no reconnect after 4002");
    db.close();
  });

  it("a welcome of another protocol version fails with protocol_error", async () => {
    const { server, db } = setup();
    server.autoWelcome = false;
    const read = db.doc("rooms/a").get();
    const ws = await server.socket(1);
    await ws.next();
    ws.serverSend({ type: "welcome", protocol: 2, limits: {} });
    await assert.rejects(read, (e: any) => e.code === "protocol_error");
    db.close();
  });

  it("state: online only when every open connection is up", async () => {
    const { server, db, states } = setup();
    void db.doc("rooms/a").get().catch(() => undefined);
    const rooms = await server.socket(1);
    await until(() => db.state === "online", 2000, "online");
    void db.doc("users/u").get().catch(() => undefined);
    const users = await server.socket(2);
    await until(() => users.sent.length >= 2, 2000, "users request");
    users.serverClose(1006);
    assert.equal(db.state, "offline");
    await until(() => db.state === "online", 2000, "online again");
    assert.ok(!rooms.closed);
    assert.deepEqual(states, ["online", "offline", "online"]);
    db.close();
    assert.equal(db.state, "offline");
  });

  it("close() cancels pending requests, silences listeners and leaves no timer running", async () => {
    const { server, db } = setup();
    const errors: BlazeError[] = [];
    db.collection("rooms").onSnapshot(() => undefined, (e) => errors.push(e));
    const read = db.doc("rooms/a").get();
    const ws = await server.socket(1);
    await ws.nextRequest();
    db.close();
    await assert.rejects(read, (e: any) => e.code === "cancelled");
    await assert.rejects(db.doc("rooms/a").get(), (e: any) => e.code === "cancelled");
    assert.deepEqual(errors, []);
    assert.equal(ws.closedByClient?.code, 1000);
  });

  it("a callback that throws does not break the client", async () => {
    const { server, db } = setup();
    const original = console.error;
    const reported: unknown[] = [];
    console.error = (...args: unknown[]) => reported.push(args);
    try {
      let calls = 0;
      db.collection("rooms").onSnapshot(() => {
        calls++;
        throw new Error("app bug");
      });
      const ws = await server.socket(1);
      const listen = await ws.nextRequest();
      ws.serverSend({ type: "snapshot", rid: listen.rid, target: 1, seq: 0, docs: [] });
      ws.serverSend({ type: "change", target: 1, seq: 1, changes: [{ type: "added", doc: wdoc("rooms/x", 1, {}), new_index: 0 }] });
      assert.equal(calls, 2);
      assert.equal(reported.length, 2);
    } finally {
      console.error = original;
      db.close();
    }
  });
});

function held(path: string, version: number) {
  return { path, exists: true, version, held: true };
}

/** Data, version and times of a document snapshot, to compare with what the server holds. */
function state(s: DocumentSnapshot) {
  return s.exists() ? { data: s.data(), version: s.version, createTime: s.createTime, updateTime: s.updateTime } : undefined;
}

/** A listener on `rooms` ordered by `n` and one on each document of `docs`, recording what they report. */
function listeners(db: Blaze, docs: string[]) {
  const query: QuerySnapshot[] = [];
  const queryErrors: BlazeError[] = [];
  const stopQuery = db.collection("rooms").orderBy("n").onSnapshot(
    (s) => query.push(s),
    (e) => queryErrors.push(e),
  );
  const seen = new Map<string, DocumentSnapshot[]>();
  const errors: BlazeError[] = [];
  for (const path of docs) {
    seen.set(path, []);
    db.doc(path).onSnapshot(
      (s) => seen.get(path)?.push(s),
      (e) => errors.push(e),
    );
  }
  return { query, queryErrors, stopQuery, seen, errors };
}

describe("held documents (spec 10.4.9)", () => {
  it("hello says held_docs, with or without a credential", async () => {
    const { server, db } = setup();
    void db.doc("rooms/a").get().catch(() => undefined);
    const ws = await server.socket(1);
    assert.deepEqual(await ws.next(), { type: "hello", protocol: 1, held_docs: true });
    db.close();
  });

  it("a held entry is replaced by another listener's copy at that version, also after changes", async () => {
    const { server, db } = setup();
    const { query, seen, errors } = listeners(db, ["rooms/a", "rooms/b"]);
    const ws = await server.socket(1);
    const [lq, la, lb] = [await ws.nextRequest(), await ws.nextRequest(), await ws.nextRequest()];
    assert.deepEqual([lq.query?.collection, la.doc, lb.doc], ["rooms", "rooms/a", "rooms/b"]);
    ws.serverSend({ type: "snapshot", rid: lq.rid, target: 1, seq: 3, docs: [wdoc("rooms/a", 1, { n: 1, deep: { x: [1] } }), wdoc("rooms/b", 2, { n: 2 })] });
    ws.serverSend({ type: "snapshot", rid: la.rid, target: 2, seq: 3, docs: [held("rooms/a", 1)] });
    // b changes before its document listener is answered: the held entry names the new version.
    ws.serverSend({
      type: "change",
      target: 1,
      seq: 4,
      changes: [{ type: "modified", path: "rooms/b", patch: [{ op: "add", path: "/t", value: "x" }], version: 4, create_time: 2, update_time: 4, old_index: 1, new_index: 1 }],
    });
    ws.serverSend({ type: "snapshot", rid: lb.rid, target: 3, seq: 4, docs: [held("rooms/b", 4)] });
    assert.deepEqual(errors, []);
    assert.deepEqual(seen.get("rooms/a")?.map(state), [{ data: { n: 1, deep: { x: [1] } }, version: 1, createTime: 1, updateTime: 1 }]);
    assert.deepEqual(seen.get("rooms/b")?.map(state), [{ data: { n: 2, t: "x" }, version: 4, createTime: 2, updateTime: 4 }]);
    assert.deepEqual(query.map(summary), ["a,b | added:a:-1>0 added:b:-1>1", "a,b | modified:b:1>1"]);
    // The copies are the listeners' own: a later change to one does not leak into the other.
    ws.serverSend({
      type: "change",
      target: 2,
      seq: 5,
      changes: [{ type: "modified", path: "rooms/a", patch: [{ op: "add", path: "/deep/x/-", value: 2 }], version: 5, create_time: 1, update_time: 5, old_index: 0, new_index: 0 }],
    });
    assert.deepEqual(seen.get("rooms/a")?.[1]?.data(), { n: 1, deep: { x: [1, 2] } });
    assert.deepEqual(query[1]?.docs[0]?.data(), { n: 1, deep: { x: [1] } });
    // A held entry in a query listener's snapshot, mixed with whole documents, keeps the server's order.
    const second: QuerySnapshot[] = [];
    db.collection("rooms").orderBy("n", "desc").onSnapshot((s) => second.push(s));
    const l2 = await ws.nextRequest();
    ws.serverSend({ type: "snapshot", rid: l2.rid, target: 4, seq: 5, docs: [wdoc("rooms/c", 5, { n: 9 }), held("rooms/b", 4), held("rooms/a", 5)] });
    assert.equal(summary(second[0] as QuerySnapshot), "c,b,a | added:c:-1>0 added:b:-1>1 added:a:-1>2");
    assert.deepEqual(second[0]?.docs.map((d) => [d.version, d.data()]), [
      [5, { n: 9 }],
      [4, { n: 2, t: "x" }],
      [5, { n: 1, deep: { x: [1, 2] } }],
    ]);
    assert.equal(server.sockets.length, 1, "no reconnect");
    db.close();
  });

  it("a listener stopped before its unlisten is answered is still a source, kept current by its target's changes", async () => {
    const { server, db } = setup();
    const { query, stopQuery, seen, errors } = listeners(db, ["rooms/a"]);
    const ws = await server.socket(1);
    const [lq, la] = [await ws.nextRequest(), await ws.nextRequest()];
    ws.serverSend({ type: "snapshot", rid: lq.rid, target: 1, seq: 2, docs: [wdoc("rooms/a", 1, { n: 1 }), wdoc("rooms/b", 2, { n: 2 })] });
    // The application stops the query listener while the server has not yet read that:
    // it answers the document listener naming the query listener's copy.
    stopQuery();
    const unlisten = await ws.nextRequest();
    assert.deepEqual(unlisten, { type: "unlisten", rid: unlisten.rid, listener: lq.rid });
    ws.serverSend({
      type: "change",
      target: 1,
      seq: 3,
      changes: [{ type: "modified", path: "rooms/a", patch: [{ op: "replace", path: "/n", value: 7 }], version: 3, create_time: 1, update_time: 3, old_index: 0, new_index: 1 }],
    });
    ws.serverSend({ type: "snapshot", rid: la.rid, target: 2, seq: 3, docs: [held("rooms/a", 3)] });
    assert.deepEqual(seen.get("rooms/a")?.map(state), [{ data: { n: 7 }, version: 3, createTime: 1, updateTime: 3 }]);
    assert.equal(query.length, 1, "nothing is reported to the stopped listener");
    ws.serverSend({ type: "unlistened", rid: unlisten.rid });
    assert.deepEqual(errors, []);
    assert.equal(server.sockets.length, 1, "no reconnect");

    // After `unlistened` its documents are gone: a held entry naming b (held by no one now) is a protocol error.
    const b: DocumentSnapshot[] = [];
    const bErrors: BlazeError[] = [];
    db.doc("rooms/b").onSnapshot((s) => b.push(s), (e) => bErrors.push(e));
    const lb = await ws.nextRequest();
    ws.serverSend({ type: "snapshot", rid: lb.rid, target: 3, seq: 3, docs: [held("rooms/b", 2)] });
    assert.deepEqual(ws.closedByClient, { code: 4000, reason: "protocol_error" }, "the client drops the socket");
    assert.deepEqual([b.length, bErrors.length], [0, 0], "nothing wrong is reported, and no error");
    assert.equal(db.state, "offline");
    // ... and resumes: the document listener with since, b's from scratch.
    const ws2 = await server.socket(2);
    const resent = [await ws2.nextRequest(), await ws2.nextRequest()];
    const ra = resent.find((f) => f.doc === "rooms/a");
    const rb = resent.find((f) => f.doc === "rooms/b");
    assert.deepEqual([ra?.since, rb?.since, resent.length], [3, undefined, 2], "the stopped listener is not resumed");
    ws2.serverSend({ type: "resumed", rid: ra?.rid, target: 1, seq: 3, changes: [] });
    ws2.serverSend({ type: "snapshot", rid: rb?.rid, target: 2, seq: 3, docs: [wdoc("rooms/b", 2, { n: 2 })] });
    assert.deepEqual(b.map(state), [{ data: { n: 2 }, version: 2, createTime: 1, updateTime: 2 }]);
    assert.deepEqual([errors.length, bErrors.length], [0, 0]);
    assert.equal(db.state, "online");
    db.close();
  });

  it("the snapshot of a listener stopped before its answer is kept until the unlisten is answered", async () => {
    const { server, db } = setup();
    const { query, stopQuery, seen, errors } = listeners(db, ["rooms/b"]);
    const ws = await server.socket(1);
    const [lq, lb] = [await ws.nextRequest(), await ws.nextRequest()];
    stopQuery();
    const unlisten = await ws.nextRequest();
    assert.equal(unlisten.listener, lq.rid);
    ws.serverSend({ type: "snapshot", rid: lq.rid, target: 1, seq: 2, docs: [wdoc("rooms/a", 1, { n: 1 }), wdoc("rooms/b", 2, { n: 2 })] });
    ws.serverSend({ type: "snapshot", rid: lb.rid, target: 2, seq: 2, docs: [held("rooms/b", 2)] });
    ws.serverSend({ type: "unlistened", rid: unlisten.rid });
    assert.deepEqual(query, [], "the stopped listener reports nothing");
    assert.deepEqual(seen.get("rooms/b")?.map(state), [{ data: { n: 2 }, version: 2, createTime: 1, updateTime: 2 }]);
    assert.deepEqual(errors, []);
    assert.equal(server.sockets.length, 1);
    db.close();
  });

  it("a stopped listener's documents are released by an error ending it, and by a lost connection", async () => {
    // An error frame with the listen's rid ends it.
    {
      const { server, db } = setup();
      const { stopQuery, errors } = listeners(db, ["rooms/a"]);
      const ws = await server.socket(1);
      const [lq, la] = [await ws.nextRequest(), await ws.nextRequest()];
      ws.serverSend({ type: "snapshot", rid: lq.rid, target: 1, seq: 2, docs: [wdoc("rooms/a", 1, { n: 1 })] });
      stopQuery();
      await ws.nextRequest();
      ws.serverSend({ type: "error", rid: lq.rid, error: { code: "permission_denied", message: "no" } });
      ws.serverSend({ type: "snapshot", rid: la.rid, target: 2, seq: 2, docs: [held("rooms/a", 1)] });
      assert.equal(ws.closedByClient?.code, 4000);
      assert.deepEqual(errors, []);
      db.close();
    }
    // A new socket: nothing answered on the old one is named held.
    {
      const { server, db } = setup();
      const { stopQuery, seen } = listeners(db, []);
      const ws = await server.socket(1);
      const lq = await ws.nextRequest();
      ws.serverSend({ type: "snapshot", rid: lq.rid, target: 1, seq: 2, docs: [wdoc("rooms/a", 1, { n: 1 })] });
      stopQuery();
      await ws.nextRequest();
      ws.serverClose(1006);
      const a: DocumentSnapshot[] = [];
      db.doc("rooms/a").onSnapshot((s) => a.push(s));
      const ws2 = await server.socket(2);
      const la = await ws2.nextRequest();
      assert.deepEqual(la, { type: "listen", rid: la.rid, doc: "rooms/a" });
      ws2.serverSend({ type: "snapshot", rid: la.rid, target: 1, seq: 2, docs: [held("rooms/a", 1)] });
      assert.equal(ws2.closedByClient?.code, 4000);
      assert.deepEqual([a.length, seen.size], [0, 0]);
      db.close();
    }
  });

  it("a held entry at another version than the copy, or naming a listener whose changes did not fit, is a protocol error", async () => {
    {
      const { server, db } = setup();
      const { seen, errors } = listeners(db, ["rooms/a"]);
      const ws = await server.socket(1);
      const [lq, la] = [await ws.nextRequest(), await ws.nextRequest()];
      ws.serverSend({ type: "snapshot", rid: lq.rid, target: 1, seq: 2, docs: [wdoc("rooms/a", 1, { n: 1 })] });
      ws.serverSend({ type: "snapshot", rid: la.rid, target: 2, seq: 2, docs: [held("rooms/a", 2)] });
      assert.equal(ws.closedByClient?.code, 4000);
      assert.deepEqual([seen.get("rooms/a")?.length, errors.length], [0, 0]);
      db.close();
    }
    {
      const { server, db } = setup();
      const { query, seen, errors } = listeners(db, ["rooms/a"]);
      const ws = await server.socket(1);
      const [lq, la] = [await ws.nextRequest(), await ws.nextRequest()];
      ws.serverSend({ type: "snapshot", rid: lq.rid, target: 1, seq: 2, docs: [wdoc("rooms/a", 1, { n: 1 })] });
      ws.serverSend({ type: "change", target: 1, seq: 3, changes: [{ type: "removed", path: "rooms/zz", old_index: 0 }] });
      assert.deepEqual([(await ws.nextRequest()).type, (await ws.nextRequest()).type], ["unlisten", "listen"], "the query listener resyncs");
      ws.serverSend({ type: "snapshot", rid: la.rid, target: 2, seq: 3, docs: [held("rooms/a", 1)] });
      assert.equal(ws.closedByClient?.code, 4000, "results that did not fit are no source");
      assert.deepEqual([query.length, seen.get("rooms/a")?.length, errors.length], [1, 0, 0]);
      db.close();
    }
  });

  it("after 3 protocol errors in a row it stops reconnecting, fails what is pending with protocol_error, and rests until the next request", async () => {
    const { server, db } = setup();
    const errors: BlazeError[] = [];
    db.doc("rooms/a").onSnapshot(() => undefined, (e) => errors.push(e));
    const read = db.doc("rooms/z").get();
    read.catch(() => undefined);
    for (let k = 1; k <= PROTOCOL_ERROR_ATTEMPTS; k++) {
      const ws = await server.socket(k);
      const sent = [await ws.nextRequest(), await ws.nextRequest()];
      const listen = sent.find((f) => f.type === "listen");
      ws.serverSend({ type: "snapshot", rid: listen?.rid, target: 1, seq: 2, docs: [held("rooms/a", 1)] });
      assert.deepEqual(ws.closedByClient, { code: 4000, reason: "protocol_error" }, `connection ${k} dropped`);
      assert.equal(errors.length, k < PROTOCOL_ERROR_ATTEMPTS ? 0 : 1, `after ${k}: ${k < PROTOCOL_ERROR_ATTEMPTS ? "reconnects" : "gives up"}`);
    }
    assert.equal(errors[0]?.code, "protocol_error");
    await assert.rejects(read, (e: BlazeError) => e.code === "protocol_error");
    await new Promise((resolve) => setTimeout(resolve, 10 * FAST.maxMs));
    assert.equal(server.sockets.length, PROTOCOL_ERROR_ATTEMPTS, "no further connection by itself");
    // The next request connects again, and is answered.
    const again = db.doc("rooms/y").get();
    const ws = await server.socket(PROTOCOL_ERROR_ATTEMPTS + 1);
    const get = await ws.nextRequest();
    ws.serverSend({ type: "doc", rid: get.rid, doc: wdoc("rooms/y", 1, { n: 1 }) });
    assert.deepEqual((await again).data(), { n: 1 });
    db.close();
  });

  it("a protocol error on a connection open for a minute starts the count again", async () => {
    mock.timers.enable({ apis: ["Date"] });
    try {
      const { server, db } = setup();
      const errors: BlazeError[] = [];
      db.doc("rooms/a").onSnapshot(() => undefined, (e) => errors.push(e));
      for (let k = 1; k <= PROTOCOL_ERROR_ATTEMPTS + 2; k++) {
        const ws = await server.socket(k);
        const listen = await ws.nextRequest();
        mock.timers.tick(PROTOCOL_ERROR_WINDOW_MS);
        ws.serverSend({ type: "snapshot", rid: listen.rid, target: 1, seq: 2, docs: [held("rooms/a", 1)] });
        assert.equal(ws.closedByClient?.code, 4000);
        await tick();
        assert.deepEqual(errors, [], `still reconnecting after error ${k}`);
      }
      await server.socket(PROTOCOL_ERROR_ATTEMPTS + 3);
      db.close();
    } finally {
      mock.timers.reset();
    }
  });

  it("a snapshot with an unresolvable held entry leads to a reconnect and the right data, not a crash or a wrong result", async () => {
    const { server, db } = setup();
    const { query, queryErrors } = listeners(db, []);
    const ws = await server.socket(1);
    const lq = await ws.nextRequest();
    const read = db.doc("rooms/z").get();
    const get = await ws.nextRequest();
    ws.serverSend({ type: "snapshot", rid: lq.rid, target: 1, seq: 2, docs: [wdoc("rooms/a", 1, { n: 1 }), held("rooms/b", 2)] });
    ws.serverSend({ type: "snapshot", rid: lq.rid, target: 1, seq: 2, docs: [held("rooms/a", 1)] }); // after the drop: ignored
    assert.deepEqual(ws.closedByClient, { code: 4000, reason: "protocol_error" });
    const ws2 = await server.socket(2);
    const resent = [await ws2.nextRequest(), await ws2.nextRequest()];
    const relisten = resent.find((f) => f.type === "listen");
    const reread = resent.find((f) => f.type === "get");
    assert.deepEqual(relisten, { type: "listen", rid: relisten?.rid, query: lq.query }, "no results yet: listens from scratch");
    assert.equal(reread?.path, get.path, "the read in flight is sent again");
    ws2.serverSend({ type: "doc", rid: reread?.rid, doc: { path: "rooms/z", exists: false } });
    ws2.serverSend({ type: "snapshot", rid: relisten?.rid, target: 1, seq: 2, docs: [wdoc("rooms/a", 1, { n: 1 }), wdoc("rooms/b", 2, { n: 2 })] });
    assert.equal((await read).exists(), false);
    assert.deepEqual(query.map(summary), ["a,b | added:a:-1>0 added:b:-1>1"]);
    assert.deepEqual(queryErrors, []);
    db.close();
  });
});

/** A stand-in for the browser's `window` / `document` event targets, counting listeners. */
class FakeEvents {
  readonly listeners = new Map<string, Set<() => void>>();
  visibilityState = "visible";
  addEventListener(type: string, listener: () => void): void {
    let set = this.listeners.get(type);
    if (set === undefined) this.listeners.set(type, (set = new Set()));
    set.add(listener);
  }
  removeEventListener(type: string, listener: () => void): void {
    this.listeners.get(type)?.delete(listener);
  }
  count(type: string): number {
    return this.listeners.get(type)?.size ?? 0;
  }
  fire(type: string): void {
    for (const listener of [...(this.listeners.get(type) ?? [])]) listener();
  }
}

describe("backoff", () => {
  it("is exponential with full jitter, capped", () => {
    assert.equal(backoffDelay(0, 250, 10000, () => 0.999999), 249);
    assert.equal(backoffDelay(3, 250, 10000, () => 0.5), 1000);
    assert.equal(backoffDelay(10, 250, 10000, () => 0.5), 5000);
    assert.equal(backoffDelay(100, 250, 10000, () => 0.999999), 9999);
    assert.equal(backoffDelay(5, 250, 10000, () => 0), 0);
  });

  it("waits at most 1 s between attempts by default, so a restarted server is reached within a second", async () => {
    assert.deepEqual(DEFAULT_RECONNECT, { initialMs: 250, maxMs: 1000 });
    mock.timers.enable({ apis: ["setTimeout"] });
    const random = mock.method(Math, "random", () => 0.999999); // the longest wait of each range
    try {
      const server = new FakeServer();
      server.refuse = true;
      const db = connect("http://blaze.test", { WebSocket: server.WebSocket });
      db.collection("rooms").onSnapshot(() => undefined);
      await tick();
      assert.equal(server.sockets.length, 1);
      for (const wait of [249, 499, 999, 999, 999, 999, 999, 999, 999, 999]) {
        const attempts: number = server.sockets.length;
        mock.timers.tick(wait - 1);
        await tick();
        assert.equal(server.sockets.length, attempts, `still waiting after ${wait - 1} ms`);
        mock.timers.tick(1);
        await tick();
        assert.equal(server.sockets.length, attempts + 1, `the next attempt after ${wait} ms`);
      }
      server.refuse = false;
      mock.timers.tick(999);
      await tick();
      assert.equal(db.state, "online");
      db.close();
    } finally {
      random.mock.restore();
      mock.timers.reset();
    }
  });

  it("the online event, and the page becoming visible again, reconnect at once; close() removes the listeners", async () => {
    mock.timers.enable({ apis: ["setTimeout"] }); // the backoff wait never ends by itself here
    const host = globalThis as Record<string, unknown>;
    const win = new FakeEvents();
    const doc = new FakeEvents();
    host.addEventListener = win.addEventListener.bind(win);
    host.removeEventListener = win.removeEventListener.bind(win);
    host.document = doc;
    try {
      const server = new FakeServer();
      const db = connect("http://blaze.test", { WebSocket: server.WebSocket });
      assert.deepEqual([win.count("online"), doc.count("visibilitychange")], [1, 1]);
      db.collection("rooms").onSnapshot(() => undefined);
      const ws = await server.socket(1);
      assert.equal((await ws.nextRequest()).type, "listen");
      win.fire("online");
      await tick();
      assert.equal(server.sockets.length, 1, "no effect while connected");

      ws.serverClose(1006);
      await tick();
      assert.equal(db.state, "offline");
      assert.equal(server.sockets.length, 1, "waiting for the backoff timer");
      win.fire("online");
      const ws2 = await server.socket(2);
      assert.equal((await ws2.nextRequest()).type, "listen");
      assert.equal(db.state, "online");

      ws2.serverClose(1006);
      doc.visibilityState = "hidden";
      doc.fire("visibilitychange");
      await tick();
      assert.equal(server.sockets.length, 2, "hidden: still waiting");
      doc.visibilityState = "visible";
      doc.fire("visibilitychange");
      const ws3 = await server.socket(3);
      assert.equal((await ws3.nextRequest()).type, "listen");
      assert.equal(db.state, "online");

      db.close();
      assert.deepEqual([win.count("online"), doc.count("visibilitychange")], [0, 0]);
    } finally {
      delete host.addEventListener;
      delete host.removeEventListener;
      delete host.document;
      mock.timers.reset();
    }
  });
});
