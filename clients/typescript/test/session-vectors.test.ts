/**
 * spec/vectors/session/*.json, client side.
 *
 * 1. Change application. Every listener in the transcripts is replayed
 *    through the client's own listener state machine (`Listener`, the code
 *    the connection uses): its `snapshot`, `resumed` and `change` frames are
 *    fed in transcript order, a `listen` with `since` continues the listener
 *    the transcript closed (or, when the transcript never had it, starts from
 *    the results at `since`). After every step, each live listener's results
 *    must equal the truth computed by a small reference model of the
 *    collection (the transcript's committed writes, evaluated with the
 *    listener's query), including versions and times; and every event's
 *    docChanges() must turn the previous event's results into the new ones.
 *    Every `modified` patch must be the canonical diff of spec 10.4.3 from
 *    the listener's previous data to its new data.
 * 2. Frame shapes. Every client frame of the transcripts that a client can
 *    send (hello, get, commit, query, count, and listen without `since`) is
 *    rebuilt through the public API and must be sent identically (rid aside).
 *
 * Not applicable to a client (skipped, with reasons in SKIPPED_FRAMES and in
 * the per-file notes): the server's own reactions in handshake.json
 * (refusing bad first frames, 4002), bad frames after the handshake, the
 * flow control (`ack`, held requests, 4008), listener limits and ownership
 * errors: these are server behaviours. The client's handling of the
 * resulting error frames and close codes is tested in connection.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { connect, doc, type Blaze } from "../src/index.js";
import { applyJsonPatch } from "../src/json-patch.js";
import { cloneJson, isJsonObject, jsonEquals, type JsonObject } from "../src/json.js";
import { Listener, type ListenTarget } from "../src/listener.js";
import { pathProblem, parentPath, lastSegment } from "../src/paths.js";
import { resultDocToWire, type ResultChange, type ResultDoc } from "../src/results.js";
import { FakeServer } from "./helpers/fake-websocket.js";
import { loadVectors } from "./helpers/vectors.js";
import { addWritesFromWire, normalizeClientFrame, queryFromWire } from "./helpers/wire-to-api.js";

type Json = any;
// commit_ids.json is not replayed: it is server behaviour (remembering commit ids);
// the client's side (re-sending a commit with its id) is in connection.test.ts.
const FILES = ["handshake.json", "requests.json", "listen.json", "lifecycle.json", "resume.json"];

// ---------------------------------------------------------------- reference model

interface ModelDoc {
  data: JsonObject;
  version: number;
  createTime: number;
  updateTime: number;
}

function mergePatch(target: Json, patch: Json): Json {
  if (!isJsonObject(patch)) return cloneJson(patch);
  const out: Json = isJsonObject(target) ? { ...target } : {};
  for (const key of Object.keys(patch)) {
    if (patch[key] === null) delete out[key];
    else out[key] = mergePatch(out[key], patch[key]);
  }
  return out;
}

class Model {
  readonly collections = new Map<string, Map<string, ModelDoc>>();
  readonly history = new Map<string, Array<{ seq: number; docs: Map<string, ModelDoc> }>>();

  docs(collection: string): Map<string, ModelDoc> {
    let docs = this.collections.get(collection);
    if (docs === undefined) this.collections.set(collection, (docs = new Map()));
    return docs;
  }

  commit(collection: string, writes: Json[], seq: number, time: number): void {
    const docs = this.docs(collection);
    for (const w of writes) {
      const existing = docs.get(w.id);
      const put = (data: JsonObject) =>
        docs.set(w.id, { data, version: seq, createTime: existing?.createTime ?? time, updateTime: time });
      switch (w.op) {
        case "set":
        case "create":
          put(cloneJson(w.data));
          break;
        case "merge":
          put(mergePatch((existing as ModelDoc).data, w.patch));
          break;
        case "patch":
          put(applyJsonPatch((existing as ModelDoc).data, w.patch));
          break;
        case "delete":
          docs.delete(w.id);
          break;
        case "verify":
          break;
        default:
          throw new Error(`model: unknown op ${w.op}`);
      }
    }
    const list = this.history.get(collection) ?? [];
    list.push({ seq, docs: new Map(docs) });
    this.history.set(collection, list);
  }

  /** The collection's documents as they were at `seq`. */
  at(collection: string, seq: number): Map<string, ModelDoc> {
    let state = new Map<string, ModelDoc>();
    for (const entry of this.history.get(collection) ?? []) if (entry.seq <= seq) state = entry.docs;
    return state;
  }
}

function field(data: Json, path: string): Json {
  let node = data;
  for (const key of path.split(".")) {
    if (!isJsonObject(node) || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}

function compareScalars(a: Json, b: Json): number {
  const rank = (v: Json) => (v === null ? 0 : typeof v === "boolean" ? 1 : typeof v === "number" ? 2 : typeof v === "string" ? 3 : -1);
  if (rank(a) < 0 || rank(b) < 0) throw new Error("model: only scalars are ordered");
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  return a < b ? -1 : a > b ? 1 : 0;
}

function matches(filter: Json, data: Json): boolean {
  if (filter.and) return filter.and.every((f: Json) => matches(f, data));
  if (filter.or) return filter.or.some((f: Json) => matches(f, data));
  const value = field(data, filter.field);
  if (value === undefined) return false;
  switch (filter.op) {
    case "==":
      return jsonEquals(value, filter.value);
    case "!=":
      return value !== null && !jsonEquals(value, filter.value);
    default:
      throw new Error(`model: operator ${filter.op} not modelled`);
  }
}

/** The results of a listen target over `docs` (the subset of queries the transcripts use). */
function evaluate(target: ListenTarget, collection: string, docs: Map<string, ModelDoc>): ResultDoc[] {
  const toResult = (id: string, d: ModelDoc): ResultDoc => ({
    path: `${collection}/${id}`,
    data: d.data,
    version: d.version,
    createTime: d.createTime,
    updateTime: d.updateTime,
  });
  if ("doc" in target) {
    const d = docs.get(lastSegment(target.doc));
    return d === undefined ? [] : [toResult(lastSegment(target.doc), d)];
  }
  const q: Json = target.query;
  for (const key of Object.keys(q)) {
    if (!["collection", "where", "order_by", "limit", "limit_to_last"].includes(key)) throw new Error(`model: ${key} not modelled`);
  }
  const order: Json[] = q.order_by ?? [];
  let rows = [...docs.entries()].filter(([, d]) => (q.where === undefined || matches(q.where, d.data)) && order.every((o) => field(d.data, o.field) !== undefined));
  const idDesc = order.length > 0 && order[order.length - 1].direction === "desc";
  rows.sort(([ia, a], [ib, b]) => {
    for (const o of order) {
      const c = compareScalars(field(a.data, o.field), field(b.data, o.field));
      if (c !== 0) return o.direction === "desc" ? -c : c;
    }
    const c = ia < ib ? -1 : ia > ib ? 1 : 0;
    return idDesc ? -c : c;
  });
  if (q.limit !== undefined) rows = rows.slice(0, q.limit);
  if (q.limit_to_last !== undefined) rows = rows.slice(Math.max(0, rows.length - q.limit_to_last));
  return rows.map(([id, d]) => toResult(id, d));
}

function assertSameResults(actual: readonly ResultDoc[], expected: readonly ResultDoc[], where: string): void {
  const show = (list: readonly ResultDoc[]) => list.map((d) => `${d.path}@${d.version}(${d.createTime},${d.updateTime})${JSON.stringify(d.data)}`);
  const same =
    actual.length === expected.length &&
    actual.every((a, i) => {
      const e = expected[i] as ResultDoc;
      return a.path === e.path && a.version === e.version && a.createTime === e.createTime && a.updateTime === e.updateTime && jsonEquals(a.data, e.data);
    });
  assert.ok(same, `${where}: results ${JSON.stringify(show(actual))}, expected ${JSON.stringify(show(expected))}`);
}

/** Applies reported changes (Firestore index semantics) to a list of paths. */
function replay(paths: string[], changes: readonly ResultChange[]): string[] {
  const list = paths.slice();
  for (const c of changes) {
    if (c.type === "removed" || c.type === "modified") {
      assert.equal(list[c.oldIndex], c.doc.path, `oldIndex ${c.oldIndex} of ${c.type} ${c.doc.path}`);
      list.splice(c.oldIndex, 1);
    }
    if (c.type === "added" || c.type === "modified") list.splice(c.newIndex, 0, c.doc.path);
  }
  return list;
}

/**
 * The canonical patch of spec 10.4.3 from `old` to `next`. (JavaScript numbers
 * cannot tell `1` from `1.0`, so "identical" is jsonEquals here; the
 * transcripts do not depend on the difference.)
 */
function canonicalDiff(old: JsonObject, next: JsonObject, prefix = ""): Json[] {
  const byUtf8 = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  const at = (k: string) => `${prefix}/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`;
  const ops: Json[] = Object.keys(old)
    .filter((k) => !(k in next))
    .sort(byUtf8)
    .map((k) => ({ op: "remove", path: at(k) }));
  for (const k of Object.keys(next).sort(byUtf8)) {
    const [a, b]: Json[] = [old[k], next[k]];
    if (!(k in old)) ops.push({ op: "add", path: at(k), value: b });
    else if (isJsonObject(a) && isJsonObject(b)) ops.push(...canonicalDiff(a, b, at(k)));
    else if (!jsonEquals(a, b)) ops.push({ op: "replace", path: at(k), value: b });
  }
  return ops;
}

/** Applies `apply` to a listener and checks each `modified` patch of `changes` is the canonical diff. */
function applyChecked(listener: Listener, changes: Json[], apply: () => void): void {
  const dataOf = (docs: readonly ResultDoc[] | null, path: string) => cloneJson((docs ?? []).find((d) => d.path === path)?.data ?? {});
  const before = new Map<string, JsonObject>(changes.filter((c) => c.type === "modified").map((c) => [c.path, dataOf(listener.results, c.path)]));
  apply();
  for (const [path, old] of before) {
    const patch = changes.find((c) => c.path === path).patch;
    assert.deepEqual(patch, canonicalDiff(old, dataOf(listener.results, path)), `the patch of ${path} is the canonical diff`);
  }
}

// ---------------------------------------------------------------- transcript replay

interface LiveListener {
  listener: Listener;
  target: ListenTarget;
  collection: string;
  events: Array<{ docs: string[]; changes: readonly ResultChange[] }>;
}

interface Conn {
  open: boolean;
  pendingListens: Map<number, { target: ListenTarget; since?: number }>;
  pendingCommits: Map<number, Json>;
  pendingUnlistens: Map<number, number>;
  listeners: Map<number, LiveListener>;
}

function collectionOf(target: ListenTarget): string {
  return "doc" in target ? parentPath(target.doc) : target.query.collection;
}

function makeListener(target: ListenTarget): LiveListener {
  const live: LiveListener = {
    target,
    collection: collectionOf(target),
    events: [],
    listener: undefined as unknown as Listener,
  };
  live.listener = new Listener(target, {
    results: (docs, changes) => {
      const previous = live.events.length === 0 ? [] : (live.events[live.events.length - 1]?.docs ?? []);
      assert.deepEqual(replay(previous, changes), docs.map((d) => d.path), "docChanges lead from the previous results to the new ones");
      live.events.push({ docs: docs.map((d) => d.path), changes });
    },
    error: (e) => assert.fail(`listener error ${e.code}`),
  });
  return live;
}

/**
 * A `snapshot`'s docs with each held entry (spec 10.4.9) replaced by the copy
 * a listener of the same connection holds, as `connection.ts` does; a held
 * entry that names nothing held fails the replay.
 */
function resolveHeld(conn: Conn, docs: Json[]): Json[] {
  return docs.map((doc) => {
    if (doc.held !== true) return doc;
    for (const live of conn.listeners.values()) {
      const copy = (live.listener.results ?? []).find((d) => d.path === doc.path && d.version === doc.version);
      if (copy) return resultDocToWire(copy);
    }
    return assert.fail(`a held entry names ${doc.path} at version ${doc.version}, which no listener of the connection holds`);
  });
}

function replayTranscript(c: Json): { listeners: number; checks: number } {
  const model = new Model();
  const conns = new Map<number, Conn>();
  const closed: LiveListener[] = [];
  let listenersSeen = 0;
  let checks = 0;
  const closeConn = (id: number) => {
    const conn = conns.get(id) as Conn;
    conn.open = false;
    closed.push(...conn.listeners.values());
    conn.listeners.clear();
  };

  c.steps.forEach((step: Json, index: number) => {
    if (step.open !== undefined) {
      conns.set(step.open, { open: true, pendingListens: new Map(), pendingCommits: new Map(), pendingUnlistens: new Map(), listeners: new Map() });
    }
    if (step.close !== undefined) closeConn(step.close);
    if (step.recv !== undefined && typeof step.frame === "object") {
      const conn = conns.get(step.recv) as Conn;
      const f = step.frame;
      if (f.type === "listen" && (f.doc === undefined) !== (f.query === undefined)) {
        conn.pendingListens.set(f.rid, { target: f.doc !== undefined ? { doc: f.doc } : { query: f.query }, since: f.since });
      }
      if (f.type === "commit") conn.pendingCommits.set(f.rid, f);
      if (f.type === "unlisten") conn.pendingUnlistens.set(f.rid, f.listener);
    }
    if (step.recv !== undefined && typeof step.frame === "string") {
      // A commit sent as raw text (to spell its numbers exactly, e.g. `-0`): the model still needs its writes.
      let parsed: Json;
      try {
        parsed = JSON.parse(step.frame);
      } catch {
        parsed = undefined;
      }
      if (parsed?.type === "commit") (conns.get(step.recv) as Conn).pendingCommits.set(parsed.rid, parsed);
    }
    if (step.http_commit !== undefined && step.result?.seq !== undefined) {
      model.commit(step.http_commit.collection, step.http_commit.writes, step.result.seq, step.now ?? 1000);
    }
    for (const out of step.out) {
      if (out.close !== undefined) {
        closeConn(out.close);
        continue;
      }
      const conn = conns.get(out.send) as Conn;
      const f = out.frame;
      switch (f.type) {
        case "committed": {
          const commit = conn.pendingCommits.get(f.rid);
          model.commit(commit.collection, commit.writes, f.seq, f.time);
          break;
        }
        case "snapshot":
        case "resumed": {
          const pending = conn.pendingListens.get(f.rid);
          assert.ok(pending, `answer to an unknown listen ${f.rid}`);
          let live: LiveListener;
          if (pending.since === undefined) {
            live = makeListener(pending.target);
          } else {
            // Resume: continue the closed listener of the same target at `since`,
            // or (when the transcript never had it) one holding the results at `since`.
            const i = closed.findIndex((l) => jsonEquals(l.target as Json, pending.target as Json) && l.listener.seq === pending.since);
            if (i >= 0) {
              live = closed.splice(i, 1)[0] as LiveListener;
            } else {
              live = makeListener(pending.target);
              live.listener.results = evaluate(pending.target, live.collection, model.at(live.collection, pending.since));
              live.listener.seq = pending.since;
              live.events.push({ docs: live.listener.results.map((d) => d.path), changes: [] });
            }
            assert.deepEqual(live.listener.listenRequest(), { type: "listen", ...pending.target, since: pending.since }, "the client would resume with this since");
          }
          live.listener.serverTarget = f.target;
          if (f.type === "snapshot") live.listener.onSnapshot(resolveHeld(conn, f.docs), f.seq);
          else applyChecked(live.listener, f.changes, () => live.listener.onResumed(f.changes, f.seq));
          assert.equal(live.listener.seq, f.seq);
          conn.listeners.set(f.rid, live);
          listenersSeen++;
          break;
        }
        case "change":
          for (const live of conn.listeners.values()) {
            if (live.listener.serverTarget === f.target) {
              applyChecked(live.listener, f.changes, () => live.listener.onChange(f.changes, f.seq));
              assert.equal(live.listener.seq, f.seq);
            }
          }
          break;
        case "unlistened":
          conn.listeners.delete(conn.pendingUnlistens.get(f.rid) as number);
          break;
        default:
          break;
      }
    }
    for (const conn of conns.values()) {
      for (const live of conn.listeners.values()) {
        const truth = evaluate(live.target, live.collection, model.docs(live.collection));
        assertSameResults(live.listener.results ?? [], truth, `${c.name}, step ${index}, listener on ${JSON.stringify(live.target)}`);
        checks++;
      }
    }
  });
  return { listeners: listenersSeen, checks };
}

describe("session transcripts: change application", () => {
  for (const file of FILES) {
    const vectors = loadVectors(`session/${file}`);
    for (const c of vectors.cases) {
      it(`${file}: ${c.name}`, () => {
        const { listeners } = replayTranscript(c);
        if (file === "listen.json" || file === "resume.json") assert.ok(listeners > 0, "the transcript has listeners");
      });
    }
  }
});

// ---------------------------------------------------------------- frame shapes

/** Why a client frame of a transcript is not rebuilt through the API. */
function skipReason(frame: Json): string | undefined {
  if (typeof frame === "string") return "not JSON: a server-side test of bad frames";
  if (!["hello", "get", "commit", "query", "count", "listen"].includes(frame.type)) {
    if (frame.type === "ack") return "the transcripts ack at chosen points to test the server; the client's ack cadence is covered in connection.test.ts";
    return frame.type === "unlisten" ? "unlisten names a rid the server assigned to an earlier listen; covered in connection.test.ts" : "not a client message type";
  }
  if (frame.type === "hello") return frame.protocol === 1 ? undefined : "the client always speaks protocol 1";
  if (!Number.isSafeInteger(frame.rid)) return "malformed rid: a server-side test of bad frames";
  if (frame.type === "listen") {
    if ((frame.doc === undefined) === (frame.query === undefined)) return "listen with both or neither of doc and query: a server-side test";
    if (frame.since !== undefined) return "since is sent only on resume (the replay above checks the client's since)";
  }
  return undefined;
}

async function sendThroughApi(frame: Json): Promise<Json> {
  const server = new FakeServer();
  const db: Blaze = connect("ws://blaze.test", { WebSocket: server.WebSocket });
  try {
    let call: Promise<unknown> | undefined;
    switch (frame.type) {
      case "hello":
        call = doc(db, "c/d").get();
        break;
      case "get":
        call = doc(db, frame.path).get();
        break;
      case "commit":
        call = addWritesFromWire(db.batch(), db.collection(frame.collection), frame.writes).commit();
        break;
      case "query":
        call = queryFromWire(db, frame.query).get();
        break;
      case "count":
        call = queryFromWire(db, frame.query).count();
        break;
      case "listen":
        if (frame.doc !== undefined) doc(db, frame.doc).onSnapshot(() => undefined);
        else queryFromWire(db, frame.query).onSnapshot(() => undefined);
        break;
    }
    const refused = (call ?? new Promise(() => undefined)).then(() => Promise.reject(new Error("answered without a server")));
    refused.catch(() => undefined);
    const socket = await Promise.race([refused, server.socket(1)]);
    return await Promise.race([refused, frame.type === "hello" ? socket.next() : socket.nextRequest()]);
  } finally {
    db.close();
  }
}

describe("session transcripts: client frame shapes", () => {
  const seen = new Set<string>();
  for (const file of FILES) {
    for (const c of loadVectors(`session/${file}`).cases) {
      for (const step of c.steps) {
        if (step.recv === undefined) continue;
        const frame = step.frame;
        const key = JSON.stringify(typeof frame === "string" ? frame : { ...frame, rid: 0 });
        if (seen.has(key)) continue;
        seen.add(key);
        const label = `${file}: ${typeof frame === "string" ? JSON.stringify(frame) : `${frame.type} ${JSON.stringify(frame).slice(0, 90)}`}`;
        const reason = skipReason(frame);
        if (reason !== undefined) {
          it(label, { skip: reason }, () => undefined);
          continue;
        }
        const badPath = frame.type === "get" ? pathProblem(frame.path, "document") : frame.type === "listen" && frame.doc ? pathProblem(frame.doc, "document") : undefined;
        const empty = frame.type === "commit" && frame.writes.length === 0;
        it(label, async () => {
          if (badPath !== undefined) {
            await assert.rejects(sendThroughApi(frame), (e: any) => e.code === "invalid_path");
          } else if (empty) {
            await assert.rejects(sendThroughApi(frame), (e: any) => e.code === "empty_batch");
          } else {
            const sent = await sendThroughApi(frame);
            assert.deepEqual(normalizeClientFrame(sent), normalizeClientFrame(frame));
          }
        });
      }
    }
  }
});
