/**
 * Rebuilds protocol messages through the client's public API, so tests can
 * check that the API produces exactly the frames the spec shows.
 */
import {
  and,
  collection,
  doc,
  endAt,
  endBefore,
  fieldPath,
  limit,
  limitToLast,
  or,
  orderBy,
  query,
  startAfter,
  startAt,
  where,
  type Blaze,
  type CollectionRef,
  type Query,
  type QueryConstraint,
  type QueryFilterConstraint,
  type WriteBatch,
  type WriteOptions,
} from "../../src/index.js";

type Json = any;

export function filterFromWire(filter: Json): QueryFilterConstraint {
  if (Array.isArray(filter.and)) return and(...filter.and.map(filterFromWire));
  if (Array.isArray(filter.or)) return or(...filter.or.map(filterFromWire));
  return where(filter.field, filter.op, filter.value);
}

/** The constraints equivalent to a wire Query (collection excluded). */
export function constraintsFromWire(q: Json): QueryConstraint[] {
  const constraints: QueryConstraint[] = [];
  if (q.where !== undefined) constraints.push(filterFromWire(q.where));
  for (const o of q.order_by ?? []) constraints.push(orderBy(o.field, o.direction ?? "asc"));
  if (q.limit !== undefined) constraints.push(limit(q.limit));
  if (q.limit_to_last !== undefined) constraints.push(limitToLast(q.limit_to_last));
  if (q.start_at !== undefined) constraints.push(startAt(...q.start_at));
  if (q.start_after !== undefined) constraints.push(startAfter(...q.start_after));
  if (q.end_at !== undefined) constraints.push(endAt(...q.end_at));
  if (q.end_before !== undefined) constraints.push(endBefore(...q.end_before));
  return constraints;
}

/** A Query built with the API from a wire Query, optionally on another collection path. */
export function queryFromWire(db: Blaze, q: Json, collectionPath: string = q.collection): Query {
  return query(collection(db, collectionPath), ...constraintsFromWire(q));
}

function options(precondition: Json): WriteOptions | undefined {
  if (precondition === undefined) return undefined;
  const out: WriteOptions = {};
  if (precondition.exists !== undefined) out.ifExists = precondition.exists;
  if (precondition.version !== undefined) out.ifVersion = precondition.version;
  return out;
}

/** Merge patch → `update()` fields: top-level keys quoted so they stay literal keys. */
export function fieldsFromMergePatch(patch: Json): Record<string, unknown> {
  // Not an object: passed as is, for the API to refuse.
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const fields: Record<string, unknown> = {};
  for (const key of Object.keys(patch)) fields[fieldPath(key)] = patch[key];
  return fields;
}

/** Adds wire writes to a batch on collection `coll`. */
export function addWritesFromWire(batch: WriteBatch, coll: CollectionRef, writes: Json[]): WriteBatch {
  for (const w of writes) {
    const ref = doc(coll, w.id);
    const opts = options(w.precondition);
    switch (w.op) {
      case "create":
        batch.create(ref, w.data, opts);
        break;
      case "set":
        batch.set(ref, w.data, opts);
        break;
      case "patch":
        batch.patch(ref, w.patch, opts);
        break;
      case "merge":
        batch.update(ref, fieldsFromMergePatch(w.patch), opts);
        break;
      case "delete":
        batch.delete(ref, opts);
        break;
      case "verify":
        batch.verify(ref, opts);
        break;
      default:
        throw new Error(`unknown op ${w.op}`);
    }
  }
  return batch;
}

function pick(object: Json, keys: string[]): Json {
  const out: Json = {};
  for (const key of keys) if (object[key] !== undefined) out[key] = object[key];
  return out;
}

function normalizeFilter(f: Json): Json {
  if (Array.isArray(f.and)) return { and: f.and.map(normalizeFilter) };
  if (Array.isArray(f.or)) return { or: f.or.map(normalizeFilter) };
  return pick(f, ["field", "op", "value"]);
}

export function normalizeQuery(q: Json): Json {
  const out = pick(q, ["collection", "limit", "limit_to_last", "start_at", "start_after", "end_at", "end_before"]);
  if (q.where !== undefined) out.where = normalizeFilter(q.where);
  if (q.order_by !== undefined) out.order_by = q.order_by.map((o: Json) => ({ field: o.field, direction: o.direction ?? "asc" }));
  return out;
}

function normalizeWrite(w: Json): Json {
  const fields: Record<string, string[]> = {
    create: ["op", "id", "data"],
    set: ["op", "id", "data"],
    patch: ["op", "id", "patch"],
    merge: ["op", "id", "patch"],
    delete: ["op", "id"],
    verify: ["op", "id"],
  };
  const out = pick(w, fields[w.op] ?? []);
  if (w.precondition !== undefined) {
    const pre = pick(w.precondition, ["exists", "version"]);
    // An empty precondition means no precondition.
    if (Object.keys(pre).length > 0) out.precondition = pre;
  }
  return out;
}

/**
 * A client message as a decoder keeps it: unknown fields dropped at every
 * level, defaults written out, `rid` (chosen by each client) removed.
 */
export function normalizeClientFrame(frame: Json): Json {
  switch (frame.type) {
    case "hello":
      return pick(frame, ["type", "protocol", "auth"]);
    case "get":
      return pick(frame, ["type", "path"]);
    case "commit":
      return { type: "commit", collection: frame.collection, writes: frame.writes.map(normalizeWrite) };
    case "query":
    case "count":
      return { type: frame.type, query: normalizeQuery(frame.query) };
    case "listen": {
      const out = pick(frame, ["type", "doc", "since"]);
      if (frame.query !== undefined) out.query = normalizeQuery(frame.query);
      return out;
    }
    case "unlisten":
      return pick(frame, ["type", "listener"]);
    case "ack":
      return pick(frame, ["type", "frames"]);
    case "auth":
      return pick(frame, ["type", "auth"]);
    default:
      throw new Error(`not a client message: ${frame.type}`);
  }
}
