/** Unit tests of result application (spec 10.4.3) and of the reset diff. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyChanges, diffResults, ResultMismatchError, resultDocToWire, type ResultChange, type ResultDoc } from "../src/results.js";
import type { WireChange } from "../src/wire.js";

function d(id: string, version = 1, data: Record<string, unknown> = { id }): ResultDoc {
  return { path: `c/${id}`, data: data as ResultDoc["data"], version, createTime: 1, updateTime: version };
}

const ids = (list: readonly ResultDoc[]) => list.map((x) => x.path.slice(2)).join(",");

/** The wire changes equivalent to diff output, so applyChanges can replay them. */
function toWire(changes: readonly ResultChange[]): WireChange[] {
  return changes.map((c): WireChange => {
    if (c.type === "removed") return { type: "removed", path: c.doc.path, old_index: c.oldIndex };
    if (c.type === "added") return { type: "added", doc: resultDocToWire(c.doc), new_index: c.newIndex };
    return {
      type: "modified",
      path: c.doc.path,
      patch: [{ op: "replace", path: "", value: c.doc.data }],
      version: c.doc.version,
      create_time: c.doc.createTime,
      update_time: c.doc.updateTime,
      old_index: c.oldIndex,
      new_index: c.newIndex,
    };
  });
}

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("applyChanges", () => {
  it("applies the resume example of spec vectors (removed, added, modified with sequential indexes)", () => {
    const before = [d("a", 1, { n: 1 }), d("b", 1, { n: 2 })];
    const out = applyChanges(before, [
      { type: "removed", path: "c/b", old_index: 1 },
      { type: "added", doc: resultDocToWire(d("d", 3, { n: 0 })), new_index: 0 },
      {
        type: "modified",
        path: "c/a",
        patch: [{ op: "add", path: "/m", value: 1 }, { op: "replace", path: "/n", value: 3 }],
        version: 4,
        create_time: 1,
        update_time: 5000,
        old_index: 1,
        new_index: 1,
      },
    ]);
    assert.equal(ids(out.docs), "d,a");
    assert.deepEqual(out.docs[1]?.data, { m: 1, n: 3 });
    assert.equal(out.docs[1]?.version, 4);
    assert.deepEqual(
      out.changes.map((c) => [c.type, c.doc.path, c.oldIndex, c.newIndex]),
      [
        ["removed", "c/b", 1, -1],
        ["added", "c/d", -1, 0],
        ["modified", "c/a", 1, 1],
      ],
    );
    assert.equal(ids(before), "a,b", "the input list is not modified");
    assert.deepEqual(before[0]?.data, { n: 1 }, "the input documents are not modified");
  });

  it("an empty patch moves a document without changing it", () => {
    const out = applyChanges([d("a"), d("b")], [
      { type: "modified", path: "c/b", patch: [], version: 1, create_time: 1, update_time: 1, old_index: 1, new_index: 0 },
    ]);
    assert.equal(ids(out.docs), "b,a");
  });

  const mismatches: Array<[string, WireChange]> = [
    ["removed at a wrong index", { type: "removed", path: "c/a", old_index: 1 }],
    ["removed out of range", { type: "removed", path: "c/a", old_index: 5 }],
    ["added twice", { type: "added", doc: resultDocToWire(d("a")), new_index: 0 }],
    ["added past the end", { type: "added", doc: resultDocToWire(d("z")), new_index: 3 }],
    ["modified with a failing patch", { type: "modified", path: "c/a", patch: [{ op: "remove", path: "/nope" }], version: 2, create_time: 1, update_time: 2, old_index: 0, new_index: 0 }],
    ["an unknown change type", { type: "renamed" } as unknown as WireChange],
    ["a negative index", { type: "removed", path: "c/a", old_index: -1 }],
  ];
  for (const [name, change] of mismatches) {
    it(`detects ${name}`, () => {
      assert.throws(() => applyChanges([d("a"), d("b")], [change]), ResultMismatchError);
    });
  }
});

describe("diffResults", () => {
  it("reports nothing for equal lists", () => {
    assert.deepEqual(diffResults([d("a"), d("b")], [d("a"), d("b")]), []);
  });

  it("mentions only changed documents when order is consistent", () => {
    // [a,b,c] -> [b,d,a]: c removed, d added, a modified and moved to the end, b untouched.
    const changes = diffResults([d("a"), d("b"), d("c")], [d("b"), d("d"), d("a", 2)]);
    assert.deepEqual(
      changes.map((c) => [c.type, c.doc.path, c.oldIndex, c.newIndex]),
      [
        ["removed", "c/c", 2, -1],
        ["added", "c/d", -1, 2],
        ["modified", "c/a", 0, 2],
      ],
    );
    assert.equal(ids(applyChanges([d("a"), d("b"), d("c")], toWire(changes)).docs), "b,d,a");
  });

  it("round-trips random lists (apply(old, diff(old, new)) = new)", () => {
    const random = prng(42);
    for (let round = 0; round < 2000; round++) {
      const universe = "abcdefghij".split("");
      const pick = () => universe.filter(() => random() < 0.5);
      const oldIds = pick();
      const newIds = pick();
      // Shuffle the new list; sometimes keep the relative order of survivors (the normal case).
      if (random() < 0.5) newIds.sort(() => random() - 0.5);
      const old = oldIds.map((id) => d(id, 1));
      const next = newIds.map((id) => d(id, random() < 0.3 ? 2 : 1));
      const changes = diffResults(old, next);
      const out = applyChanges(old, toWire(changes));
      assert.equal(ids(out.docs), ids(next), `round ${round}: ${ids(old)} -> ${ids(next)}`);
      out.docs.forEach((doc, i) => assert.equal(doc.version, next[i]?.version));
      for (const c of changes) {
        if (c.type === "modified") {
          const before = old.find((o) => o.path === c.doc.path);
          assert.ok(before !== undefined);
        }
      }
    }
  });
});
