/**
 * The public API without a server: references and paths (spec 2.1),
 * query encoding (spec 9.1), update() field paths (spec 7 and 8.6), batches,
 * and the path / field-path vectors of write.json and query.json that a
 * client checks before sending.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  and,
  Blaze,
  BlazeError,
  collection,
  CollectionRef,
  connect,
  doc,
  DocRef,
  DocumentSnapshot,
  documentId,
  endAt,
  endBefore,
  fieldPath,
  limit,
  limitToLast,
  or,
  orderBy,
  query,
  Query,
  startAfter,
  startAt,
  where,
  writeBatch,
} from "../src/index.js";
import { parseFieldPath } from "../src/field-path.js";
import { pathProblem } from "../src/paths.js";
import { mergePatchFromFields } from "../src/writes.js";
import { FakeServer } from "./helpers/fake-websocket.js";
import { loadVectors } from "./helpers/vectors.js";

function client(): { db: Blaze; server: FakeServer } {
  const server = new FakeServer();
  return { db: connect("https://blaze.test", { WebSocket: server.WebSocket }), server };
}

const code = (expected: string) => (e: unknown) => e instanceof BlazeError && e.code === expected;

describe("references", () => {
  const { db } = client();

  it("collection() and doc() in every form", () => {
    assert.equal(collection(db, "rooms").path, "rooms");
    assert.equal(collection(db, "rooms", "r1", "messages").path, "rooms/r1/messages");
    assert.equal(collection(db, "rooms/r1/messages").id, "messages");
    const room = doc(db, "rooms/r1");
    assert.equal(doc(db, "rooms", "r1").path, "rooms/r1");
    assert.equal(collection(room, "messages").path, "rooms/r1/messages");
    assert.equal(room.collection("messages").parent?.path, "rooms/r1");
    assert.equal(doc(collection(db, "rooms"), "r1").path, "rooms/r1");
    assert.equal(doc(room, "messages/m1").path, "rooms/r1/messages/m1");
    assert.equal(db.collection("rooms").doc("r1").id, "r1");
    assert.equal(db.doc("rooms/r1").parent.path, "rooms");
    assert.equal(db.collection("rooms").parent, null);
    assert.ok(room instanceof DocRef);
    assert.ok(collection(db, "rooms") instanceof CollectionRef);
    assert.ok(collection(db, "rooms") instanceof Query, "a collection is a query");
    assert.ok(room.isEqual(doc(db, "rooms", "r1")));
    assert.ok(!room.isEqual(doc(db, "rooms", "r2")));
  });

  it("doc(collection) makes a random 20-character id", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const ref = doc(collection(db, "rooms"));
      assert.match(ref.id, /^[A-Za-z0-9]{20}$/);
      ids.add(ref.id);
    }
    assert.equal(ids.size, 200);
  });

  it("refuses bad paths locally with invalid_path", () => {
    assert.throws(() => collection(db, "rooms/r1"), code("invalid_path"));
    assert.throws(() => doc(db, "rooms"), code("invalid_path"));
    assert.throws(() => doc(db, "rooms/a b"), code("invalid_path"));
    assert.throws(() => doc(db, "rooms//r1"), code("invalid_path"));
    assert.throws(() => doc(db, "rooms/__x__"), code("invalid_path"));
    assert.throws(() => doc(db, "rooms/.."), code("invalid_path"));
    assert.throws(() => doc(db, "rooms/" + "x".repeat(129)), code("invalid_path"));
    assert.throws(() => doc(db, "rooms/é"), code("invalid_path"));
    assert.throws(() => doc(db, Array(101).fill("a/b").join("/")), code("invalid_path"));
    assert.doesNotThrow(() => doc(db, "rooms/__"));
    assert.doesNotThrow(() => doc(db, "rooms/___"));
    assert.doesNotThrow(() => doc(db, "rooms/a-_.~:@+Z9"));
    assert.doesNotThrow(() => doc(db, "rooms/" + "x".repeat(128)));
  });

  it("connect() checks its arguments", () => {
    assert.throws(() => connect("blaze.test", { WebSocket: new FakeServer().WebSocket }), code("invalid_argument"));
    assert.throws(() => connect("http://blaze.test"), code("invalid_argument"), "Node 20 has no global WebSocket");
    assert.throws(() => connect("http://blaze.test", { WebSocket: new FakeServer().WebSocket, requestTimeoutMs: -1 }), code("invalid_argument"));
  });

  it("BlazeError carries code and writeIndex", () => {
    const e = BlazeError.fromWire({ code: "precondition_failed", message: "m", write_index: 2 });
    assert.ok(e instanceof Error);
    assert.deepEqual([e.name, e.code, e.message, e.writeIndex], ["BlazeError", "precondition_failed", "m", 2]);
    assert.equal(BlazeError.fromWire({ code: "x" }).writeIndex, undefined);
  });
});

describe("write.json and query.json paths, checked before sending", () => {
  const { db } = client();
  const writes = loadVectors("write.json").cases;
  for (const c of writes) {
    const expectsPathError = c.expect.error === "invalid_path";
    it(`write.json: ${c.name} (${expectsPathError ? "refused locally" : "paths accepted"})`, () => {
      const build = () => {
        const batch = db.batch();
        const coll = collection(db, c.collection);
        for (const w of c.writes) batch.delete(doc(coll, w.id));
        return batch;
      };
      if (expectsPathError) assert.throws(build, code("invalid_path"));
      else assert.doesNotThrow(build);
    });
  }
  for (const c of loadVectors("query.json").cases) {
    if (c.expect.error !== "invalid_path") continue;
    it(`query.json: ${c.name} (refused locally)`, () => {
      assert.throws(() => collection(db, c.query.collection), code("invalid_path"));
    });
  }
  it("pathProblem agrees on kinds", () => {
    assert.equal(pathProblem("a/b/c", "collection"), undefined);
    assert.notEqual(pathProblem("a/b", "collection"), undefined);
  });
});

describe("field paths", () => {
  it("parses the syntax of spec section 7", () => {
    assert.deepEqual(parseFieldPath("address.city"), ["address", "city"]);
    assert.deepEqual(parseFieldPath("a.`b.c`.d"), ["a", "b.c", "d"]);
    assert.deepEqual(parseFieldPath("`x\\`y`"), ["x`y"]);
    assert.deepEqual(parseFieldPath("`a\\\\b`"), ["a\\b"]);
    assert.deepEqual(parseFieldPath("é-1"), ["é-1"]);
    assert.deepEqual(parseFieldPath("__name__"), ["__name__"]);
    assert.equal(fieldPath("address", "zip.code"), "address.`zip.code`");
    assert.equal(fieldPath("a`b"), "`a\\`b`");
    assert.equal(documentId(), "__name__");
    for (const keys of [["a.b", "c"], ["x`y", "\\"], ["plain"], ["é"]]) assert.deepEqual(parseFieldPath(fieldPath(...keys)), keys);
  });

  // query.json field paths: invalid ones must be refused by the parser with
  // the server's code, valid ones accepted (the parser is used by update()).
  const fieldsOf = (q: any): string[] => {
    const out: string[] = [];
    const walk = (f: any) => {
      if (f === undefined) return;
      if (Array.isArray(f.and)) f.and.forEach(walk);
      else if (Array.isArray(f.or)) f.or.forEach(walk);
      else out.push(f.field);
    };
    walk(q.where);
    for (const o of q.order_by ?? []) out.push(o.field);
    return out;
  };
  for (const c of loadVectors("query.json").cases) {
    const fields = fieldsOf(c.query);
    if (fields.length === 0) continue;
    if (c.expect.error === "invalid_field_path") {
      it(`query.json: ${c.name} (field path refused)`, () => {
        assert.ok(fields.some((f) => {
          try {
            parseFieldPath(f);
            return false;
          } catch (e) {
            return e instanceof BlazeError && e.code === "invalid_field_path";
          }
        }));
      });
    } else if (c.expect.error === undefined) {
      it(`query.json: ${c.name} (field paths accepted)`, () => {
        for (const f of fields) assert.doesNotThrow(() => parseFieldPath(f), f);
      });
    }
  }
});

describe("update() fields", () => {
  it("expands field paths into a merge patch; null deletes; objects merge", () => {
    assert.deepEqual(mergePatchFromFields({ "a.b": 1, "a.c": null, d: { e: 2 }, "`x.y`": 3, "d.f": 4 }), {
      a: { b: 1, c: null },
      d: { e: 2, f: 4 },
      "x.y": 3,
    });
    assert.deepEqual(mergePatchFromFields({ skipped: undefined, kept: false }), { kept: false });
    assert.throws(() => mergePatchFromFields({ a: 1, "a.b": 2 }), code("invalid_argument"));
    assert.throws(() => mergePatchFromFields({ "a..b": 1 }), code("invalid_field_path"));
    assert.throws(() => mergePatchFromFields({ __name__: "x" }), code("invalid_argument"));
    const proto = mergePatchFromFields({ "`__proto__`.x": 1 });
    assert.ok(Object.prototype.hasOwnProperty.call(proto, "__proto__"));
    assert.equal(JSON.stringify(proto), '{"__proto__":{"x":1}}');
  });
});

describe("queries", () => {
  const { db } = client();
  const rooms = collection(db, "rooms");

  it("encodes every constraint as spec 9.1", () => {
    const q = query(
      rooms,
      where("open", "==", true),
      or(where("a", "in", [1, 2]), and(where("b", ">", 1), where("c", "array-contains", "x"))),
      orderBy("n", "desc"),
      orderBy("__name__"),
      limit(5),
      startAt(3, "a"),
      endBefore(1),
    );
    assert.deepEqual(q.toWire(), {
      collection: "rooms",
      where: {
        and: [
          { field: "open", op: "==", value: true },
          { or: [{ field: "a", op: "in", value: [1, 2] }, { and: [{ field: "b", op: ">", value: 1 }, { field: "c", op: "array-contains", value: "x" }] }] },
        ],
      },
      order_by: [
        { field: "n", direction: "desc" },
        { field: "__name__", direction: "asc" },
      ],
      limit: 5,
      start_at: [3, "a"],
      end_before: [1],
    });
  });

  it("method chaining gives the same query, and queries are immutable", () => {
    const chained = rooms.where("open", "==", true).orderBy("n").limitToLast(2).startAfter(1).endAt(9, "z");
    const modular = query(rooms, where("open", "==", true), orderBy("n"), limitToLast(2), startAfter(1), endAt(9, "z"));
    assert.deepEqual(chained.toWire(), modular.toWire());
    assert.deepEqual(rooms.toWire(), { collection: "rooms" });
    assert.deepEqual(rooms.where(or(where("a", "==", 1), where("b", "==", 2))).toWire().where, { or: [{ field: "a", op: "==", value: 1 }, { field: "b", op: "==", value: 2 }] });
  });

  it("limit and limitToLast replace each other; later cursors replace earlier ones of their kind", () => {
    assert.deepEqual(rooms.limit(3).limitToLast(2).toWire(), { collection: "rooms", limit_to_last: 2 });
    assert.deepEqual(rooms.limitToLast(2).limit(3).toWire(), { collection: "rooms", limit: 3 });
    assert.deepEqual(rooms.orderBy("n").startAt(1).startAfter(2).endAt(5).endBefore(4).toWire(), {
      collection: "rooms",
      order_by: [{ field: "n", direction: "asc" }],
      start_after: [2],
      end_before: [4],
    });
  });

  it("a DocumentSnapshot cursor becomes its order_by values and id", () => {
    const snap = new DocumentSnapshot(db, "rooms/r7", { path: "rooms/r7", data: { score: 10, a: { b: "x" } }, version: 1, createTime: 1, updateTime: 1 });
    assert.deepEqual(rooms.orderBy("score", "desc").orderBy("a.b").startAfter(snap).toWire().start_after, [10, "x", "r7"]);
    assert.deepEqual(rooms.startAfter(snap).toWire().start_after, ["r7"]);
    assert.throws(() => rooms.orderBy("missing").startAfter(snap).toWire(), code("invalid_argument"));
    assert.equal(snap.get("a.b"), "x");
    assert.equal(snap.get("__name__"), "r7");
    assert.equal(snap.get("nope.x"), undefined);
    assert.ok(snap.ref.isEqual(doc(db, "rooms/r7")));
  });

  it("shape errors are refused at once; rule errors are left to the server", () => {
    assert.throws(() => where("a", "~=" as "==", 1), code("invalid_argument"));
    assert.throws(() => limit(1.5), code("invalid_argument"));
    assert.throws(() => orderBy("a", "up" as "asc"), code("invalid_argument"));
    assert.throws(() => startAt(undefined), code("invalid_argument"));
    assert.throws(() => query(rooms, "x" as never), code("invalid_argument"));
    assert.throws(() => and(where("a", "==", 1), orderBy("a") as never), code("invalid_argument"));
    // Sent as is (the server answers invalid_query / invalid_field_path):
    assert.equal(rooms.limit(0).toWire().limit, 0);
    assert.deepEqual(query(rooms, and()).toWire().where, { and: [] });
    assert.equal(rooms.where("a..b", "==", 1).toWire().where && "ok", "ok");
  });
});

describe("batches", () => {
  it("builds one commit of ordered writes with preconditions", async () => {
    const { db, server } = client();
    const rooms = collection(db, "rooms");
    const batch = writeBatch(db)
      .create(doc(rooms, "a"), { n: 1 })
      .set(doc(rooms, "b"), { n: 2 }, { ifExists: false })
      .update(doc(rooms, "c"), { "x.y": 1, z: null }, { ifVersion: 7 })
      .patch(doc(rooms, "d"), [{ op: "add", path: "/n", value: 3 }])
      .delete(doc(rooms, "e"), { ifExists: true, ifVersion: 2 })
      .verify(doc(rooms, "f"), { ifVersion: 4 });
    assert.equal(batch.size, 6);
    assert.equal(batch.collection, "rooms");
    const pending = batch.commit();
    pending.catch(() => undefined);
    const frame = await (await server.socket(1)).nextRequest();
    assert.deepEqual(frame.writes, [
      { op: "create", id: "a", data: { n: 1 } },
      { op: "set", id: "b", data: { n: 2 }, precondition: { exists: false } },
      { op: "merge", id: "c", patch: { x: { y: 1 }, z: null }, precondition: { version: 7 } },
      { op: "patch", id: "d", patch: [{ op: "add", path: "/n", value: 3 }] },
      { op: "delete", id: "e", precondition: { exists: true, version: 2 } },
      { op: "verify", id: "f", precondition: { version: 4 } },
    ]);
    assert.equal(frame.collection, "rooms");
    db.close();
  });

  it("refuses writes to a second collection, empty batches and a second commit", async () => {
    const { db } = client();
    const batch = db.batch().set(doc(db, "rooms/a"), {});
    assert.throws(() => batch.set(doc(db, "users/a"), {}), code("invalid_argument"));
    assert.throws(() => batch.set(doc(db, "rooms/a/sub/b"), {}), code("invalid_argument"));
    await assert.rejects(db.batch().commit(), code("empty_batch"));
    const other = client().db;
    assert.throws(() => db.batch().set(doc(other, "rooms/a"), {}), code("invalid_argument"));
    other.close();
    const once = db.batch().delete(doc(db, "rooms/a"));
    once.commit().catch(() => undefined);
    await assert.rejects(once.commit(), code("invalid_argument"));
    assert.throws(() => once.delete(doc(db, "rooms/b")), code("invalid_argument"));
    assert.throws(() => db.batch().set(doc(db, "rooms/a"), {}, { ifVersion: -1 }), code("invalid_argument"));
    db.close();
  });
});
