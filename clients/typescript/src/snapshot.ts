/** Read results handed to the application: document and query snapshots. */
import { cloneJson, hasMember, isJsonObject, type JsonObject, type JsonValue } from "./json.js";
import { DOCUMENT_ID_FIELD, parseFieldPath } from "./field-path.js";
import { lastSegment } from "./paths.js";
import type { ChangeType, ResultChange, ResultDoc } from "./results.js";
import type { DocRef } from "./refs.js";

/** Something that makes document references (the {@link Blaze} client). */
export interface DocRefFactory {
  /** The reference of the document at `path`. */
  doc(path: string): DocRef;
}

/** One document as read at some point: its data and metadata, or its absence. */
export class DocumentSnapshot {
  /** The document id (last path segment). */
  readonly id: string;
  /** The full document path. */
  readonly path: string;
  /** The sequence number of the commit that last wrote the document (spec 3.1); absent when it does not exist. */
  readonly version?: number;
  /** Creation time, ms since the Unix epoch; absent when it does not exist. */
  readonly createTime?: number;
  /** Last write time, ms since the Unix epoch; absent when it does not exist. */
  readonly updateTime?: number;
  readonly #data: JsonObject | undefined;
  readonly #factory: DocRefFactory;

  /** @internal Snapshots are made by the client; `doc` is `undefined` for a missing document. */
  constructor(factory: DocRefFactory, path: string, doc: ResultDoc | undefined) {
    this.#factory = factory;
    this.path = path;
    this.id = lastSegment(path);
    this.#data = doc?.data;
    if (doc !== undefined) {
      this.version = doc.version;
      this.createTime = doc.createTime;
      this.updateTime = doc.updateTime;
    }
  }

  /** The reference of this document. */
  get ref(): DocRef {
    return this.#factory.doc(this.path);
  }

  /** Whether the document exists. */
  exists(): boolean {
    return this.#data !== undefined;
  }

  /** A fresh copy of the document's data, or `undefined` when it does not exist. */
  data(): any | undefined {
    return this.#data === undefined ? undefined : cloneJson(this.#data);
  }

  /**
   * The value of one field (a field path, spec section 7, such as
   * `"address.city"`; `"__name__"` is the id), or `undefined` when it is
   * missing or the document does not exist.
   */
  get(field: string): any | undefined {
    if (this.#data === undefined) return undefined;
    const keys = parseFieldPath(field);
    if (keys.length === 1 && keys[0] === DOCUMENT_ID_FIELD) return this.id;
    let node: JsonValue = this.#data;
    for (const key of keys) {
      if (!isJsonObject(node) || !hasMember(node, key)) return undefined;
      node = node[key] as JsonValue;
    }
    return cloneJson(node);
  }
}

/** One change between two query snapshots, as Firestore's `DocumentChange`. */
export interface DocChange {
  /** `added`, `modified` or `removed`. */
  readonly type: ChangeType;
  /** The document after the change (for `removed`, as it was last seen). */
  readonly doc: DocumentSnapshot;
  /** Index before this change, in the list as left by the earlier changes; -1 for `added`. */
  readonly oldIndex: number;
  /** Index after this change; -1 for `removed`. */
  readonly newIndex: number;
}

/** The results of a query (from `get()` or a listener), in query order. */
export class QuerySnapshot {
  /** The result documents, in query order. */
  readonly docs: DocumentSnapshot[];
  /** The collection's sequence number these results are consistent with. */
  readonly seq: number;
  /** True when the server could not resume a listener and the client rebuilt its results from a fresh snapshot (the changes are then a diff). */
  readonly fromReset: boolean;
  readonly #changes: DocChange[];

  /** @internal Snapshots are made by the client. */
  constructor(docs: DocumentSnapshot[], changes: DocChange[], seq: number, fromReset: boolean) {
    this.docs = docs;
    this.#changes = changes;
    this.seq = seq;
    this.fromReset = fromReset;
  }

  /** The number of documents. */
  get size(): number {
    return this.docs.length;
  }

  /** Whether there are no documents. */
  get empty(): boolean {
    return this.docs.length === 0;
  }

  /**
   * The changes since the previous snapshot of the same listener, in the
   * order to apply them (the first snapshot: every document `added`).
   */
  docChanges(): DocChange[] {
    return this.#changes.slice();
  }

  /** Calls `callback` for each document, in order. */
  forEach(callback: (doc: DocumentSnapshot, index: number) => void, thisArg?: unknown): void {
    this.docs.forEach((doc, index) => callback.call(thisArg, doc, index));
  }
}

/**
 * Caches one {@link DocumentSnapshot} per {@link ResultDoc}, so unchanged
 * documents keep the same snapshot object from one event to the next.
 */
export class SnapshotCache {
  readonly #factory: DocRefFactory;
  readonly #cache = new WeakMap<ResultDoc, DocumentSnapshot>();

  /** Creates a cache whose snapshots make references with `factory`. */
  constructor(factory: DocRefFactory) {
    this.#factory = factory;
  }

  /** The snapshot of `doc`. */
  of(doc: ResultDoc): DocumentSnapshot {
    let snapshot = this.#cache.get(doc);
    if (snapshot === undefined) {
      snapshot = new DocumentSnapshot(this.#factory, doc.path, doc);
      this.#cache.set(doc, snapshot);
    }
    return snapshot;
  }

  /** The query snapshot of a result list and the changes that led to it. */
  query(docs: readonly ResultDoc[], changes: readonly ResultChange[], seq: number, fromReset: boolean): QuerySnapshot {
    return new QuerySnapshot(
      docs.map((d) => this.of(d)),
      changes.map((c) => ({ type: c.type, doc: this.of(c.doc), oldIndex: c.oldIndex, newIndex: c.newIndex })),
      seq,
      fromReset,
    );
  }
}
