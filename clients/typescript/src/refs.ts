/** References to documents and collections, with their reads, writes and listeners. */
import type { Blaze } from "./client.js";
import type { BlazeError } from "./errors.js";
import type { JsonPatchOp } from "./json-patch.js";
import type { SnapshotObserver, Unsubscribe } from "./observe.js";
import { checkPath, joinPath, lastSegment, parentPath, randomId } from "./paths.js";
import { expectFrame, Query } from "./query.js";
import { resultDocFromWire } from "./results.js";
import { DocumentSnapshot } from "./snapshot.js";
import { buildWrite, commitWrites, type CommitResult, type WriteOptions } from "./writes.js";

/** A document path: the document need not exist. */
export class DocRef {
  /** The document id (last path segment). */
  readonly id: string;
  /** The full document path, such as `rooms/r1`. */
  readonly path: string;
  /** @internal */
  readonly _db: Blaze;

  /** @internal Use {@link doc} or `CollectionRef.doc()`. */
  constructor(db: Blaze, path: string) {
    this._db = db;
    this.path = checkPath(path, "document");
    this.id = lastSegment(path);
  }

  /** The client this reference belongs to. */
  get db(): Blaze {
    return this._db;
  }

  /** The collection holding this document. */
  get parent(): CollectionRef {
    return new CollectionRef(this._db, parentPath(this.path));
  }

  /** A subcollection of this document: `ref.collection("messages")`. */
  collection(path: string, ...more: string[]): CollectionRef {
    return new CollectionRef(this._db, joinPath([this.path, path, ...more]));
  }

  /** Whether `other` names the same document of the same client. */
  isEqual(other: unknown): boolean {
    return other instanceof DocRef && other._db === this._db && other.path === this.path;
  }

  /** Reads the document (a snapshot with `exists()` false when it is missing). */
  async get(): Promise<DocumentSnapshot> {
    const frame = expectFrame(await this._db._connection(this.parent.path).request({ type: "get", path: this.path }, "read"), "doc");
    return new DocumentSnapshot(this._db, this.path, frame.doc.exists ? resultDocFromWire(frame.doc) : undefined);
  }

  /** Creates or replaces the document (`set`). Options add preconditions. */
  set(data: object, options?: WriteOptions): Promise<CommitResult> {
    return this.#commit(buildWrite.set(this.id, data, options));
  }

  /** Creates the document; fails with `already_exists` if it exists (`create`). Options add preconditions. */
  create(data: object, options?: WriteOptions): Promise<CommitResult> {
    return this.#commit(buildWrite.create(this.id, data, options));
  }

  /**
   * Updates fields of an existing document (`merge`, a JSON merge patch;
   * `not_found` if it is missing). Keys are field paths (`"a.b": 1`); `null`
   * deletes a field; nested objects are merged.
   */
  update(fields: Record<string, unknown>, options?: WriteOptions): Promise<CommitResult> {
    return this.#commit(buildWrite.update(this.id, fields, options));
  }

  /** Applies a JSON Patch (RFC 6902) to an existing document (`patch`). */
  patch(ops: JsonPatchOp[], options?: WriteOptions): Promise<CommitResult> {
    return this.#commit(buildWrite.patch(this.id, ops, options));
  }

  /** Deletes the document (succeeds if it is already missing, unless a precondition fails). */
  delete(options?: WriteOptions): Promise<CommitResult> {
    return this.#commit(buildWrite.delete(this.id, options));
  }

  /**
   * Listens to the document: `next` gets a snapshot at once (with `exists()`
   * false when it is missing), then after every change.
   */
  onSnapshot(observer: SnapshotObserver<DocumentSnapshot>): Unsubscribe;
  onSnapshot(next: (snapshot: DocumentSnapshot) => void, error?: (error: BlazeError) => void): Unsubscribe;
  onSnapshot(
    nextOrObserver: SnapshotObserver<DocumentSnapshot> | ((snapshot: DocumentSnapshot) => void),
    error?: (error: BlazeError) => void,
  ): Unsubscribe {
    const path = this.path;
    const snapshots = this._db._snapshots;
    return this._db._listen(parentPath(path), { doc: path }, nextOrObserver, error, (docs) => {
      const doc = docs.find((d) => d.path === path);
      return doc === undefined ? new DocumentSnapshot(this._db, path, undefined) : snapshots.of(doc);
    });
  }

  #commit(write: Parameters<typeof commitWrites>[2][number]): Promise<CommitResult> {
    return commitWrites(this._db, parentPath(this.path), [write]);
  }
}

/** A collection path; also a {@link Query} returning every document of the collection. */
export class CollectionRef extends Query {
  /** The collection id (last path segment). */
  readonly id: string;
  /** The full collection path, such as `rooms` or `rooms/r1/messages`. */
  readonly path: string;

  /** @internal Use {@link collection}. */
  constructor(db: Blaze, path: string) {
    super(db, { collection: checkPath(path, "collection"), filters: [], orderBy: [] });
    this.path = path;
    this.id = lastSegment(path);
  }

  /** The document holding this subcollection, or `null` for a top-level collection. */
  get parent(): DocRef | null {
    const parent = parentPath(this.path);
    return parent === "" ? null : new DocRef(this._db, parent);
  }

  /** A document of this collection; without an id, a new random 20-character id. */
  doc(id?: string, ...more: string[]): DocRef {
    return new DocRef(this._db, joinPath([this.path, id === undefined ? randomId() : id, ...more]));
  }

  /** Whether `other` names the same collection of the same client. */
  isEqual(other: unknown): boolean {
    return other instanceof CollectionRef && other._db === this._db && other.path === this.path;
  }

  /** Creates a document with a random id and returns its reference. */
  async add(data: object): Promise<DocRef> {
    const ref = this.doc();
    await ref.create(data);
    return ref;
  }
}
