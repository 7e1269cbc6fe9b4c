/** Atomic batches of writes to one collection (spec 8). */
import type { Blaze } from "./client.js";
import { BlazeError, invalidArgument } from "./errors.js";
import type { JsonPatchOp } from "./json-patch.js";
import { parentPath } from "./paths.js";
import type { DocRef } from "./refs.js";
import type { WireWrite } from "./wire.js";
import { buildWrite, commitWrites, type CommitResult, type WriteOptions } from "./writes.js";

/**
 * Writes committed together, all or none, in order. All documents must be in
 * one collection (the protocol's unit of atomicity); a write to another
 * collection throws `invalid_argument`.
 */
export class WriteBatch {
  readonly #db: Blaze;
  #collection: string | undefined;
  readonly #writes: WireWrite[] = [];
  #committed = false;

  /** @internal Use {@link writeBatch} or `Blaze.batch()`. */
  constructor(db: Blaze) {
    this.#db = db;
  }

  /** The collection of the batch's writes, once one was added. */
  get collection(): string | undefined {
    return this.#collection;
  }

  /** Number of writes so far. */
  get size(): number {
    return this.#writes.length;
  }

  #add(ref: DocRef, write: (id: string) => WireWrite): this {
    if (this.#committed) throw invalidArgument("this batch was already committed");
    if (ref === null || typeof ref !== "object" || typeof ref.path !== "string") throw invalidArgument("batch writes take a DocRef");
    if (ref._db !== this.#db) throw invalidArgument("the DocRef belongs to another client");
    const collection = parentPath(ref.path);
    if (this.#collection !== undefined && this.#collection !== collection) {
      throw invalidArgument(`a batch writes to one collection: ${this.#collection}, not ${collection}`);
    }
    const built = write(ref.id);
    this.#collection = collection;
    this.#writes.push(built);
    return this;
  }

  /** Creates or replaces a document. */
  set(ref: DocRef, data: object, options?: WriteOptions): this {
    return this.#add(ref, (id) => buildWrite.set(id, data, options));
  }

  /** Creates a document that must not exist. */
  create(ref: DocRef, data: object, options?: WriteOptions): this {
    return this.#add(ref, (id) => buildWrite.create(id, data, options));
  }

  /** Merges fields into an existing document (see `DocRef.update`). */
  update(ref: DocRef, fields: Record<string, unknown>, options?: WriteOptions): this {
    return this.#add(ref, (id) => buildWrite.update(id, fields, options));
  }

  /** Applies a JSON Patch to an existing document. */
  patch(ref: DocRef, ops: JsonPatchOp[], options?: WriteOptions): this {
    return this.#add(ref, (id) => buildWrite.patch(id, ops, options));
  }

  /** Deletes a document. */
  delete(ref: DocRef, options?: WriteOptions): this {
    return this.#add(ref, (id) => buildWrite.delete(id, options));
  }

  /** Checks a precondition without writing (`verify`), e.g. `{ ifVersion: 7 }` for a document read at version 7. */
  verify(ref: DocRef, options?: WriteOptions): this {
    return this.#add(ref, (id) => buildWrite.verify(id, options));
  }

  /** Commits the writes. An empty batch fails with `empty_batch` without contacting the server. */
  commit(): Promise<CommitResult> {
    if (this.#committed) return Promise.reject(invalidArgument("this batch was already committed"));
    this.#committed = true;
    if (this.#collection === undefined) return Promise.reject(new BlazeError("empty_batch", "the batch has no writes"));
    return commitWrites(this.#db, this.#collection, this.#writes);
  }
}
