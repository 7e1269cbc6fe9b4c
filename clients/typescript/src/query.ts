/**
 * Queries (spec section 9): immutable {@link Query} objects built from
 * constraints (`where`, `orderBy`, `limit`, cursors...) either modular-style
 * with `query(base, ...constraints)` or by method chaining.
 *
 * The client checks only the shape of what it sends (an operator it knows, a
 * non-negative integer limit...); the query rules (spec 9.2-9.6) are the
 * server's to enforce, and its errors (`invalid_query`,
 * `invalid_field_path`, ...) come back unchanged.
 */
import type { Blaze } from "./client.js";
import { BlazeError, invalidArgument } from "./errors.js";
import type { JsonValue } from "./json.js";
import { type ResultDoc, resultDocFromWire } from "./results.js";
import { DocumentSnapshot, type QuerySnapshot } from "./snapshot.js";
import { type Direction, WHERE_OPS, type WhereOp, type WireFilter, type WireOrder, type WireQuery, type ServerFrame } from "./wire.js";
import type { SnapshotObserver, Unsubscribe } from "./observe.js";

/** Re-exported protocol types used in query signatures. */
export type { Direction, WhereOp } from "./wire.js";

/** The kinds of query constraints. */
export type QueryConstraintType =
  | "where"
  | "and"
  | "or"
  | "orderBy"
  | "limit"
  | "limitToLast"
  | "startAt"
  | "startAfter"
  | "endAt"
  | "endBefore";

type CursorKind = "start_at" | "start_after" | "end_at" | "end_before";

interface Cursor {
  readonly kind: CursorKind;
  readonly values: readonly unknown[];
}

/** @internal The parts of a query, before encoding. */
export interface QueryState {
  readonly collection: string;
  readonly filters: readonly WireFilter[];
  readonly orderBy: readonly WireOrder[];
  readonly limit?: number | undefined;
  readonly limitToLast?: number | undefined;
  readonly start?: Cursor | undefined;
  readonly end?: Cursor | undefined;
}

/** One part of a query, made by {@link where}, {@link orderBy}, {@link limit}, the cursor functions... */
export class QueryConstraint {
  /** What kind of constraint this is. */
  readonly type: QueryConstraintType;
  /** @internal */
  readonly _apply: (state: QueryState) => QueryState;

  /** @internal Use the constraint functions. */
  constructor(type: QueryConstraintType, apply: (state: QueryState) => QueryState) {
    this.type = type;
    this._apply = apply;
  }
}

/** A filter constraint ({@link where}, {@link and}, {@link or}); filters of one query are and-ed together. */
export class QueryFilterConstraint extends QueryConstraint {
  /** The protocol filter (spec 9.2). */
  readonly filter: WireFilter;

  /** @internal Use {@link where}, {@link and} or {@link or}. */
  constructor(type: "where" | "and" | "or", filter: WireFilter) {
    super(type, (state) => ({ ...state, filters: [...state.filters, filter] }));
    this.filter = filter;
  }
}

function checkJson(value: unknown, what: string): JsonValue {
  if (value === undefined || typeof value === "function" || typeof value === "symbol" || typeof value === "bigint") {
    throw invalidArgument(`${what} must be a JSON value, got ${typeof value}`);
  }
  if (typeof value === "number" && !Number.isFinite(value)) throw invalidArgument(`${what} must be a finite number`);
  return value as JsonValue;
}

function checkField(field: unknown, what: string): string {
  if (typeof field !== "string") throw invalidArgument(`${what} must be a field path string`);
  return field;
}

function checkCount(n: unknown, what: string): number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw invalidArgument(`${what} must be a non-negative integer`);
  return n;
}

/**
 * A field filter (spec 9.2): `where("age", ">=", 18)`,
 * `where("tags", "array-contains", "x")`, `where("__name__", "in", ["a", "b"])`.
 */
export function where(field: string, op: WhereOp, value: unknown): QueryFilterConstraint {
  checkField(field, "where field");
  if (!WHERE_OPS.includes(op)) throw invalidArgument(`unknown where operator ${JSON.stringify(op)}; use one of ${WHERE_OPS.join(" ")}`);
  return new QueryFilterConstraint("where", { field, op, value: checkJson(value, "where value") });
}

function filtersOf(kind: string, filters: readonly QueryFilterConstraint[]): WireFilter[] {
  return filters.map((f) => {
    if (!(f instanceof QueryFilterConstraint)) throw invalidArgument(`${kind}() takes filter constraints (where, and, or)`);
    return f.filter;
  });
}

/** All of the filters must match (spec 9.2). An empty list is sent as is and refused by the server (`invalid_query`). */
export function and(...filters: QueryFilterConstraint[]): QueryFilterConstraint {
  return new QueryFilterConstraint("and", { and: filtersOf("and", filters) });
}

/** At least one of the filters must match (spec 9.2). */
export function or(...filters: QueryFilterConstraint[]): QueryFilterConstraint {
  return new QueryFilterConstraint("or", { or: filtersOf("or", filters) });
}

/** Sorts by a field (spec 9.4), ascending by default; later `orderBy`s break ties of earlier ones. */
export function orderBy(field: string, direction: Direction = "asc"): QueryConstraint {
  checkField(field, "orderBy field");
  if (direction !== "asc" && direction !== "desc") throw invalidArgument(`orderBy direction must be "asc" or "desc"`);
  return new QueryConstraint("orderBy", (state) => ({ ...state, orderBy: [...state.orderBy, { field, direction }] }));
}

/** Keeps the first `n` results (replaces an earlier `limit` or `limitToLast`). */
export function limit(n: number): QueryConstraint {
  checkCount(n, "limit");
  return new QueryConstraint("limit", (state) => ({ ...state, limit: n, limitToLast: undefined }));
}

/** Keeps the last `n` results, still in query order (replaces an earlier `limit` or `limitToLast`). */
export function limitToLast(n: number): QueryConstraint {
  checkCount(n, "limitToLast");
  return new QueryConstraint("limitToLast", (state) => ({ ...state, limitToLast: n, limit: undefined }));
}

function cursor(type: QueryConstraintType, kind: CursorKind, values: unknown[]): QueryConstraint {
  const isSnapshot = values.length === 1 && values[0] instanceof DocumentSnapshot;
  if (!isSnapshot) values.forEach((v, i) => checkJson(v, `cursor value ${i}`));
  const frozen = values.slice();
  const start = kind === "start_at" || kind === "start_after";
  return new QueryConstraint(type, (state) => (start ? { ...state, start: { kind, values: frozen } } : { ...state, end: { kind, values: frozen } }));
}

/**
 * Starts at a position (spec 9.6): values for a prefix of the `orderBy` keys,
 * optionally followed by a document id; or one {@link DocumentSnapshot}, whose
 * `orderBy` field values and id are used.
 */
export function startAt(...values: unknown[]): QueryConstraint {
  return cursor("startAt", "start_at", values);
}

/** Starts after a position (see {@link startAt}); pass the last result's values and id to page. */
export function startAfter(...values: unknown[]): QueryConstraint {
  return cursor("startAfter", "start_after", values);
}

/** Ends at a position, inclusive (see {@link startAt}). */
export function endAt(...values: unknown[]): QueryConstraint {
  return cursor("endAt", "end_at", values);
}

/** Ends before a position (see {@link startAt}). */
export function endBefore(...values: unknown[]): QueryConstraint {
  return cursor("endBefore", "end_before", values);
}

function cursorValues(cursorDef: Cursor, order: readonly WireOrder[]): JsonValue[] {
  const first = cursorDef.values[0];
  if (cursorDef.values.length === 1 && first instanceof DocumentSnapshot) {
    if (!first.exists()) throw invalidArgument("a cursor snapshot must be of an existing document");
    const values = order.map((o) => {
      const value: unknown = first.get(o.field);
      if (value === undefined) throw invalidArgument(`the cursor snapshot has no field ${o.field}`);
      return value as JsonValue;
    });
    return [...values, first.id];
  }
  return cursorDef.values as JsonValue[];
}

/** Encodes query parts as the protocol's Query object (spec 9.1). */
export function encodeQuery(state: QueryState): WireQuery {
  const wire: WireQuery = { collection: state.collection };
  if (state.filters.length === 1) wire.where = state.filters[0] as WireFilter;
  else if (state.filters.length > 1) wire.where = { and: [...state.filters] };
  if (state.orderBy.length > 0) wire.order_by = state.orderBy.map((o) => ({ field: o.field, direction: o.direction }));
  if (state.limit !== undefined) wire.limit = state.limit;
  if (state.limitToLast !== undefined) wire.limit_to_last = state.limitToLast;
  if (state.start !== undefined) wire[state.start.kind] = cursorValues(state.start, state.orderBy);
  if (state.end !== undefined) wire[state.end.kind] = cursorValues(state.end, state.orderBy);
  return wire;
}

/** @internal Checks that an answer frame has the expected type (else `protocol_error`). */
export function expectFrame<T extends ServerFrame["type"]>(frame: ServerFrame, type: T): Extract<ServerFrame, { type: T }> {
  if (frame.type !== type) throw new BlazeError("protocol_error", `expected ${type}, got ${frame.type}`);
  return frame as Extract<ServerFrame, { type: T }>;
}

/**
 * A query over one collection (not its subcollections). Immutable: every
 * constraint method returns a new query.
 */
export class Query {
  /** @internal */
  readonly _db: Blaze;
  /** @internal */
  readonly _state: QueryState;

  /** @internal Use {@link query} or the methods of a {@link CollectionRef}. */
  constructor(db: Blaze, state: QueryState) {
    this._db = db;
    this._state = state;
  }

  /** The client this query belongs to. */
  get db(): Blaze {
    return this._db;
  }

  /** The path of the collection this query reads. */
  get collectionPath(): string {
    return this._state.collection;
  }

  /** @internal A query with more constraints. */
  _with(constraints: readonly QueryConstraint[]): Query {
    let state = this._state;
    for (const c of constraints) {
      if (!(c instanceof QueryConstraint)) throw invalidArgument("query() takes constraints made by where, orderBy, limit, ...");
      state = c._apply(state);
    }
    return new Query(this._db, state);
  }

  /** Adds a filter: `where("age", ">=", 18)` or `where(or(...))`. */
  where(field: string, op: WhereOp, value: unknown): Query;
  where(filter: QueryFilterConstraint): Query;
  where(fieldOrFilter: string | QueryFilterConstraint, op?: WhereOp, value?: unknown): Query {
    return this._with([fieldOrFilter instanceof QueryFilterConstraint ? fieldOrFilter : where(fieldOrFilter, op as WhereOp, value)]);
  }

  /** Adds a sort key (see {@link orderBy}). */
  orderBy(field: string, direction: Direction = "asc"): Query {
    return this._with([orderBy(field, direction)]);
  }

  /** Keeps the first `n` results. */
  limit(n: number): Query {
    return this._with([limit(n)]);
  }

  /** Keeps the last `n` results. */
  limitToLast(n: number): Query {
    return this._with([limitToLast(n)]);
  }

  /** Start cursor, inclusive (see {@link startAt}). */
  startAt(...values: unknown[]): Query {
    return this._with([startAt(...values)]);
  }

  /** Start cursor, exclusive. */
  startAfter(...values: unknown[]): Query {
    return this._with([startAfter(...values)]);
  }

  /** End cursor, inclusive. */
  endAt(...values: unknown[]): Query {
    return this._with([endAt(...values)]);
  }

  /** End cursor, exclusive. */
  endBefore(...values: unknown[]): Query {
    return this._with([endBefore(...values)]);
  }

  /** The protocol Query object (spec 9.1) this query sends. */
  toWire(): WireQuery {
    return encodeQuery(this._state);
  }

  /** Runs the query once. */
  async get(): Promise<QuerySnapshot> {
    const wire = this.toWire();
    const frame = expectFrame(await this._db._connection(wire.collection).request({ type: "query", query: wire }, "read"), "query_result");
    const docs: ResultDoc[] = frame.docs.map(resultDocFromWire);
    return this._db._snapshots.query(docs, docs.map((doc, i) => ({ type: "added", doc, oldIndex: -1, newIndex: i })), frame.seq, false);
  }

  /** Counts the results (limits and cursors included, spec 9.7). */
  async count(): Promise<number> {
    const wire = this.toWire();
    const frame = expectFrame(await this._db._connection(wire.collection).request({ type: "count", query: wire }, "read"), "count_result");
    return frame.count;
  }

  /**
   * Listens to the results: `next` gets the full results and their
   * `docChanges()` first at once, then after every change. Returns the
   * function that stops listening.
   */
  onSnapshot(observer: SnapshotObserver<QuerySnapshot>): Unsubscribe;
  onSnapshot(next: (snapshot: QuerySnapshot) => void, error?: (error: BlazeError) => void): Unsubscribe;
  onSnapshot(
    nextOrObserver: SnapshotObserver<QuerySnapshot> | ((snapshot: QuerySnapshot) => void),
    error?: (error: BlazeError) => void,
  ): Unsubscribe {
    const wire = this.toWire();
    const snapshots = this._db._snapshots;
    return this._db._listen(wire.collection, { query: wire }, nextOrObserver, error, (docs, changes, seq, fromReset) =>
      snapshots.query(docs, changes, seq, fromReset),
    );
  }
}

/** Creates a query from a collection or query and more constraints: `query(collection(db, "rooms"), where("open", "==", true), limit(10))`. */
export function query(base: Query, ...constraints: QueryConstraint[]): Query {
  if (!(base instanceof Query)) throw invalidArgument("query() takes a CollectionRef or a Query");
  return base._with(constraints);
}
