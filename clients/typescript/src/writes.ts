/** Building the writes of a commit (spec 8.2) and sending a commit. */
import type { Blaze } from "./client.js";
import { BlazeError, invalidArgument } from "./errors.js";
import { parseFieldPath, DOCUMENT_ID_FIELD } from "./field-path.js";
import { isJsonObject, setMember, hasMember, type JsonObject, type JsonValue } from "./json.js";
import type { JsonPatchOp } from "./json-patch.js";
import type { WirePrecondition, WireWrite, WireWriteResult } from "./wire.js";
import { randomCommitId } from "./commit-id.js";

/** Preconditions of a write (spec 8.2); both may be given, and both must hold. */
export interface WriteOptions {
  /** The document must exist with exactly this version (`precondition.version`). */
  ifVersion?: number;
  /** The document must exist (`true`) or must not exist (`false`). */
  ifExists?: boolean;
}

/** The answer to a successful commit (`committed`, spec 10.3). */
export interface CommitResult {
  /** The collection's new sequence number: the version of every document written. */
  seq: number;
  /** The commit time (ms since the Unix epoch): the update time of every document written. */
  time: number;
  /** Per write, in order: the document id and whether it exists after that write. */
  writes: WireWriteResult[];
}

/** @internal The protocol precondition for `options`, or `undefined` when there is none. */
export function precondition(options: WriteOptions | undefined): WirePrecondition | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== "object" || options === null) throw invalidArgument("write options must be an object");
  const result: WirePrecondition = {};
  if (options.ifExists !== undefined) {
    if (typeof options.ifExists !== "boolean") throw invalidArgument("ifExists must be a boolean");
    result.exists = options.ifExists;
  }
  if (options.ifVersion !== undefined) {
    if (!Number.isSafeInteger(options.ifVersion) || options.ifVersion < 0) throw invalidArgument("ifVersion must be a non-negative integer");
    result.version = options.ifVersion;
  }
  return result.exists === undefined && result.version === undefined ? undefined : result;
}

function withPrecondition<W extends WireWrite>(write: W, options: WriteOptions | undefined): W {
  const pre = precondition(options);
  return pre === undefined ? write : { ...write, precondition: pre };
}

function checkData(data: unknown, what: string): JsonObject {
  if (data === undefined || typeof data === "function") throw invalidArgument(`${what} must be given`);
  // Other non-objects are sent as they are: the server refuses them with
  // `invalid_document` and the write's index.
  return data as JsonObject;
}

/**
 * Expands `update()` fields into a merge patch (spec 8.6). Every key is a
 * field path (spec 7): `"address.city": "Oslo"` sets one nested member;
 * `` "`a.b`" `` names the key `a.b`. `null` deletes; a nested object is
 * merged into the existing member (merge patch semantics).
 */
export function mergePatchFromFields(fields: Record<string, unknown>): JsonObject {
  if (!isJsonObject(fields)) throw invalidArgument("update() takes an object of fields");
  const patch: JsonObject = {};
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    if (value === undefined) continue;
    const keys = parseFieldPath(key);
    if (keys.length === 1 && keys[0] === DOCUMENT_ID_FIELD) throw invalidArgument("update() cannot change __name__ (the document id)");
    let node = patch;
    for (let i = 0; i < keys.length - 1; i++) {
      const k = keys[i] as string;
      if (!hasMember(node, k)) setMember(node, k, {});
      const next = node[k];
      if (!isJsonObject(next)) throw invalidArgument(`update() field ${key} conflicts with another field`);
      node = next;
    }
    mergeInto(node, keys[keys.length - 1] as string, value as JsonValue, key);
  }
  return patch;
}

function mergeInto(node: JsonObject, key: string, value: JsonValue, field: string): void {
  if (!hasMember(node, key)) {
    setMember(node, key, value);
    return;
  }
  const existing = node[key] as JsonValue;
  if (!isJsonObject(existing) || !isJsonObject(value)) throw invalidArgument(`update() field ${field} is given twice`);
  const merged: JsonObject = { ...existing };
  for (const k of Object.keys(value)) mergeInto(merged, k, value[k] as JsonValue, field);
  setMember(node, key, merged);
}

/** @internal The write of each operation, for one document id. */
export const buildWrite = {
  set: (id: string, data: unknown, options?: WriteOptions): WireWrite =>
    withPrecondition({ op: "set", id, data: checkData(data, "set() data") }, options),
  create: (id: string, data: unknown, options?: WriteOptions): WireWrite =>
    withPrecondition({ op: "create", id, data: checkData(data, "create() data") }, options),
  update: (id: string, fields: Record<string, unknown>, options?: WriteOptions): WireWrite =>
    withPrecondition({ op: "merge", id, patch: mergePatchFromFields(fields) }, options),
  patch: (id: string, ops: JsonPatchOp[], options?: WriteOptions): WireWrite => {
    if (ops === undefined) throw invalidArgument("patch() takes a JSON Patch (an array of operations)");
    return withPrecondition({ op: "patch", id, patch: ops }, options);
  },
  delete: (id: string, options?: WriteOptions): WireWrite => withPrecondition({ op: "delete", id }, options),
  verify: (id: string, options?: WriteOptions): WireWrite => withPrecondition({ op: "verify", id }, options),
};

/** @internal Sends one commit on the collection's connection. */
export async function commitWrites(db: Blaze, collection: string, writes: WireWrite[]): Promise<CommitResult> {
  const request = { type: "commit" as const, collection, writes, commit_id: randomCommitId() };
  const frame = await db._connection(collection).request(request, "commit");
  if (frame.type !== "committed") throw new BlazeError("protocol_error", `expected committed, got ${frame.type}`);
  return { seq: frame.seq, time: frame.time, writes: frame.writes };
}
