/**
 * Access rules end to end (spec 14, README "Access rules"): the client
 * against the real worker under `wrangler dev`, started once for this file
 * with the repository's `blaze.rules` (the demo's rules: todos are private
 * by `owner`, and a query must filter on `owner == <uid>`). alice and bob
 * sign in with HS256 development tokens minted here; the admin key skips
 * the rules. Every test uses its own document ids.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import {
  collection,
  connect,
  deleteDoc,
  doc,
  getCount,
  getDoc,
  getDocs,
  onSnapshot,
  query,
  setDoc,
  updateDoc,
  where,
  writeBatch,
  type Blaze,
  type BlazeError,
  type DocumentSnapshot,
  type QuerySnapshot,
} from "../src/index.js";
import { repoRoot } from "./helpers/vectors.js";
import { WranglerDev } from "./helpers/wrangler.js";
import { eventually } from "./helpers/eventually.js";

const DEV_SECRET = "blaze-dev-secret-not-for-production";
const ADMIN_KEY = "blaze-dev-admin-key";
/** The fixed message of every `permission_denied` (it never quotes a document). */
const DENIED_MESSAGE = "the access rules do not allow this request";

const RUN = `r${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
let wrangler: WranglerDev | undefined;
const clients: Blaze[] = [];

/** An HS256 development token for `uid`, valid for an hour. */
function devToken(uid: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const iat = Math.floor(Date.now() / 1000);
  const signed = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: uid, iss: "blaze-dev", aud: "blaze", iat, exp: iat + 3600 })}`;
  return `${signed}.${createHmac("sha256", DEV_SECRET).update(signed).digest("base64url")}`;
}

/** A client signed in as `uid` (`"admin"`: the admin key). */
function as(uid: "alice" | "bob" | "admin"): Blaze {
  assert.ok(wrangler, "wrangler dev is not running (see the before hook's error)");
  const auth = uid === "admin" ? ADMIN_KEY : devToken(uid);
  const db = connect(wrangler.url, { WebSocket, auth, requestTimeoutMs: 15_000, reconnect: { initialMs: 50, maxMs: 400 } });
  clients.push(db);
  return db;
}

/** Asserts `e` is the rules' refusal (with `writeIndex` when given). */
function denied(writeIndex?: number) {
  return (e: unknown) => {
    const error = e as BlazeError;
    assert.equal(error.name, "BlazeError");
    assert.equal(error.code, "permission_denied", `expected permission_denied, got ${error.code}: ${error.message}`);
    assert.equal(error.message, DENIED_MESSAGE);
    assert.equal(error.writeIndex, writeIndex);
    return true;
  };
}

describe("access rules end to end (wrangler dev, blaze.rules)", () => {
  let alice: Blaze;
  let bob: Blaze;
  let admin: Blaze;

  before(async () => {
    const rules = readFileSync(join(repoRoot(), "blaze.rules"), "utf8");
    wrangler = await WranglerDev.create({ vars: [`BLAZE_RULES:${rules}`] });
    await wrangler.start();
    alice = as("alice");
    bob = as("bob");
    admin = as("admin");
  });

  after(async () => {
    for (const db of clients) db.close();
    await wrangler?.dispose();
  });

  it("alice's private todo: she creates, reads, queries and counts it; a write for another owner is denied and nothing is written", async () => {
    const mine = doc(alice, "todos", `${RUN}-alice-1`);
    await setDoc(mine, { owner: "alice", text: "alice's secret plan", done: false });
    assert.deepEqual((await getDoc(mine)).data(), { owner: "alice", text: "alice's secret plan", done: false });
    const hers = query(collection(alice, "todos"), where("owner", "==", "alice"), where("done", "==", false));
    assert.ok((await getDocs(hers)).docs.some((d) => d.id === mine.id));
    assert.ok((await getCount(hers)) >= 1);
    await updateDoc(mine, { done: true });

    // A batch whose second write gives a todo to bob: denied at index 1, the first not written either.
    const batch = writeBatch(alice);
    batch.set(doc(alice, "todos", `${RUN}-alice-2`), { owner: "alice", text: "fine" });
    batch.set(doc(alice, "todos", `${RUN}-alice-3`), { owner: "bob", text: "not mine to give" });
    await assert.rejects(batch.commit(), denied(1));
    assert.equal((await getDoc(doc(admin, "todos", `${RUN}-alice-2`))).exists(), false, "nothing of the batch was written");
    await assert.rejects(updateDoc(mine, { owner: "bob" }), denied(0), "an update may not hand the todo to someone else");
  });

  it("bob is denied alice's todo: get, queries, count, listen, update, delete and create over it", async () => {
    const id = `${RUN}-alice-secret`;
    await setDoc(doc(alice, "todos", id), { owner: "alice", text: "the surprise party" });
    const hers = doc(bob, "todos", id);
    await assert.rejects(getDoc(hers), denied());
    await assert.rejects(getDoc(doc(bob, "todos", `${RUN}-missing`)), denied(), "existence does not leak: a missing todo is denied alike");
    await assert.rejects(getDocs(collection(bob, "todos")), denied(), "rules are not filters: an unfiltered query is denied");
    await assert.rejects(getDocs(query(collection(bob, "todos"), where("owner", "==", "alice"))), denied());
    await assert.rejects(getCount(collection(bob, "todos")), denied());
    await assert.rejects(updateDoc(hers, { done: true }), denied(0));
    await assert.rejects(deleteDoc(hers), denied(0));
    await assert.rejects(setDoc(hers, { owner: "bob", text: "mine now" }), denied(0));
    // A create over an existing todo: permission_denied wins over already_exists.
    const batch = writeBatch(bob);
    batch.create(hers, { owner: "bob" });
    await assert.rejects(batch.commit(), denied(0));

    const errors: BlazeError[] = [];
    const snapshots: DocumentSnapshot[] = [];
    const stop = onSnapshot(hers, (s) => snapshots.push(s), (e) => errors.push(e));
    await eventually(() => errors.length > 0, "the refused listen's error");
    stop();
    assert.equal(snapshots.length, 0);
    errors.forEach((e) => denied()(e));
    assert.deepEqual((await getDoc(doc(admin, "todos", id))).data(), { owner: "alice", text: "the surprise party" }, "unchanged");
  });

  it("bob's owner-filtered query is allowed, and lists and counts only his own", async () => {
    const mine = `${RUN}-bob-1`;
    await setDoc(doc(bob, "todos", mine), { owner: "bob", text: "bob's errand" });
    const his = query(collection(bob, "todos"), where("owner", "==", "bob"));
    const docs = (await getDocs(his)).docs;
    assert.ok(docs.some((d) => d.id === mine));
    assert.ok(docs.every((d) => d.data().owner === "bob"));
    assert.equal(await getCount(his), docs.length);

    const seen: QuerySnapshot[] = [];
    const errors: BlazeError[] = [];
    const stop = onSnapshot(his, (s) => seen.push(s), (e) => errors.push(e));
    await eventually(() => seen.length > 0 || errors.length > 0, "bob's first snapshot");
    await setDoc(doc(bob, "todos", `${RUN}-bob-2`), { owner: "bob", text: "another errand" });
    await setDoc(doc(alice, "todos", `${RUN}-alice-4`), { owner: "alice", text: "alice's diary" });
    await eventually(() => seen.some((s) => s.docs.some((d) => d.id === `${RUN}-bob-2`)), "bob's second todo, live");
    stop();
    assert.deepEqual(errors, []);
    assert.ok(seen.every((s) => s.docs.every((d) => d.data().owner === "bob")), "only bob's todos reach his listener");
  });

  it("a listener ends with permission_denied when an admin gives the todo to someone else; her query sees it leave", async () => {
    const id = `${RUN}-alice-moving`;
    await setDoc(doc(alice, "todos", id), { owner: "alice", text: "before the move" });

    const docSnaps: DocumentSnapshot[] = [];
    const docErrors: BlazeError[] = [];
    const stopDoc = onSnapshot(doc(alice, "todos", id), (s) => docSnaps.push(s), (e) => docErrors.push(e));
    const querySnaps: QuerySnapshot[] = [];
    const queryErrors: BlazeError[] = [];
    const hers = query(collection(alice, "todos"), where("owner", "==", "alice"));
    const stopQuery = onSnapshot(hers, (s) => querySnaps.push(s), (e) => queryErrors.push(e));
    await eventually(() => docSnaps.length > 0 && querySnaps.some((s) => s.docs.some((d) => d.id === id)), "alice's first snapshots");

    await updateDoc(doc(admin, "todos", id), { owner: "bob", text: "after the move" });
    await eventually(() => docErrors.length > 0, "the document listener's end");
    await eventually(() => querySnaps.some((s) => s.docChanges().some((c) => c.type === "removed" && c.doc.id === id)), "the todo leaving her query");
    assert.equal(docErrors.length, 1);
    denied()(docErrors[0]);
    assert.deepEqual(queryErrors, [], "the query listener goes on");
    assert.ok(
      [...docSnaps, ...querySnaps.flatMap((s) => s.docs)].every((d) => !d.exists() || d.data()?.owner === "alice"),
      "no snapshot carries the todo as bob's",
    );

    // Nothing more reaches the ended listener, and alice's connection keeps working.
    const count = docSnaps.length;
    await updateDoc(doc(admin, "todos", id), { owner: "alice", text: "back again" });
    await eventually(() => querySnaps.some((s) => s.docChanges().some((c) => c.type === "added" && c.doc.data().text === "back again")), "the todo back in her query");
    assert.equal(docSnaps.length, count, "the ended listener stays ended");
    assert.equal(docErrors.length, 1);
    stopDoc();
    stopQuery();
  });
});
