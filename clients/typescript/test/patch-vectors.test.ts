/**
 * spec/vectors/patch.json against the client's JSON Patch engine, which
 * applies the patches of `modified` changes (spec 10.4.3).
 *
 * Skipped, with reasons:
 * - `kind: "merge"` cases: the client never applies merge patches; it sends
 *   them (update()) and the server applies them.
 * - Cases expecting a limit error (`too_many_patch_ops`, `document_too_large`,
 *   `document_too_deep`): those limits are the server's to enforce on writes;
 *   patches the client applies come from the server and were within them.
 *   Limit cases expecting a document still run (the engine must produce it).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyJsonPatch } from "../src/json-patch.js";
import { jsonEquals } from "../src/json.js";
import { loadVectors } from "./helpers/vectors.js";

interface PatchCase {
  name: string;
  doc: any;
  kind: "json" | "merge";
  patch: unknown;
  limits?: Record<string, number>;
  expect: { doc?: any; error?: string };
}

const LIMIT_ERRORS = new Set(["too_many_patch_ops", "document_too_large", "document_too_deep"]);
const vectors = loadVectors<PatchCase>("patch.json");

describe("patch.json", () => {
  it("has JSON Patch cases", () => assert.ok(vectors.cases.filter((c) => c.kind === "json").length > 50));

  for (const c of vectors.cases) {
    if (c.kind === "merge") {
      it(c.name, { skip: "merge patch: applied by the server only, never by the client" }, () => undefined);
      continue;
    }
    if (c.expect.error !== undefined && LIMIT_ERRORS.has(c.expect.error)) {
      it(c.name, { skip: `${c.expect.error}: a server limit on writes; the client does not re-check patches the server sends` }, () => undefined);
      continue;
    }
    it(c.name, () => {
      const before = JSON.stringify(c.doc);
      if (c.expect.error !== undefined) {
        assert.throws(
          () => applyJsonPatch(c.doc, c.patch),
          (e: any) => {
            assert.equal(e.code, c.expect.error);
            return true;
          },
        );
      } else {
        const after = applyJsonPatch(c.doc, c.patch);
        assert.ok(jsonEquals(after, c.expect.doc), `got ${JSON.stringify(after)}, expected ${JSON.stringify(c.expect.doc)}`);
        assert.deepEqual(after, c.expect.doc);
      }
      assert.equal(JSON.stringify(c.doc), before, "the input document is not modified");
    });
  }
});
