/** Firestore-style modular functions; each is equivalent to a method of a reference, query or client. */
import { Blaze } from "./client.js";
import { invalidArgument, type BlazeError } from "./errors.js";
import type { JsonPatchOp } from "./json-patch.js";
import type { SnapshotObserver, Unsubscribe } from "./observe.js";
import { joinPath } from "./paths.js";
import { Query } from "./query.js";
import { CollectionRef, DocRef } from "./refs.js";
import type { DocumentSnapshot, QuerySnapshot } from "./snapshot.js";
import type { WriteBatch } from "./batch.js";
import type { CommitResult, WriteOptions } from "./writes.js";

/**
 * A collection reference: `collection(db, "rooms")`,
 * `collection(db, "rooms", "r1", "messages")`, `collection(roomRef, "messages")`.
 */
export function collection(parent: Blaze | DocRef | CollectionRef, path: string, ...more: string[]): CollectionRef {
  if (parent instanceof Blaze) return parent.collection(path, ...more);
  if (parent instanceof DocRef || parent instanceof CollectionRef) {
    return new CollectionRef(parent._db, joinPath([parent.path, path, ...more]));
  }
  throw invalidArgument("collection() takes a Blaze client, a DocRef or a CollectionRef");
}

/**
 * A document reference: `doc(db, "rooms/r1")`, `doc(db, "rooms", "r1")`,
 * `doc(roomsRef, "r1")`, or `doc(roomsRef)` for a new random id.
 */
export function doc(parent: Blaze | CollectionRef | DocRef, path?: string, ...more: string[]): DocRef {
  if (parent instanceof Blaze) {
    if (path === undefined) throw invalidArgument("doc(db, path) needs a path");
    return parent.doc(path, ...more);
  }
  if (parent instanceof CollectionRef) return parent.doc(path, ...more);
  if (parent instanceof DocRef) {
    if (path === undefined) throw invalidArgument("doc(docRef, path) needs a relative path");
    return new DocRef(parent._db, joinPath([parent.path, path, ...more]));
  }
  throw invalidArgument("doc() takes a Blaze client, a CollectionRef or a DocRef");
}

/** Reads a document (`ref.get()`). */
export function getDoc(ref: DocRef): Promise<DocumentSnapshot> {
  return ref.get();
}

/** Runs a query once (`query.get()`). */
export function getDocs(query: Query): Promise<QuerySnapshot> {
  return query.get();
}

/** Counts a query's results (`query.count()`). */
export function getCount(query: Query): Promise<number> {
  return query.count();
}

/** Creates or replaces a document (`ref.set()`). */
export function setDoc(ref: DocRef, data: object, options?: WriteOptions): Promise<CommitResult> {
  return ref.set(data, options);
}

/** Adds a document with a random id (`collectionRef.add()`). */
export function addDoc(ref: CollectionRef, data: object): Promise<DocRef> {
  return ref.add(data);
}

/** Merges fields into an existing document (`ref.update()`). */
export function updateDoc(ref: DocRef, fields: Record<string, unknown>, options?: WriteOptions): Promise<CommitResult> {
  return ref.update(fields, options);
}

/** Applies a JSON Patch to an existing document (`ref.patch()`). */
export function patchDoc(ref: DocRef, ops: JsonPatchOp[], options?: WriteOptions): Promise<CommitResult> {
  return ref.patch(ops, options);
}

/** Deletes a document (`ref.delete()`). */
export function deleteDoc(ref: DocRef, options?: WriteOptions): Promise<CommitResult> {
  return ref.delete(options);
}

/** A new write batch (`db.batch()`). */
export function writeBatch(db: Blaze): WriteBatch {
  return db.batch();
}

/** Listens to a document (`ref.onSnapshot()`): a snapshot at once, then one per change; returns the unsubscribe function. */
export function onSnapshot(
  ref: DocRef,
  next: SnapshotObserver<DocumentSnapshot> | ((snapshot: DocumentSnapshot) => void),
  error?: (error: BlazeError) => void,
): Unsubscribe;
/** Listens to a query's results (`query.onSnapshot()`); returns the unsubscribe function. */
export function onSnapshot(
  query: Query,
  next: SnapshotObserver<QuerySnapshot> | ((snapshot: QuerySnapshot) => void),
  error?: (error: BlazeError) => void,
): Unsubscribe;
/** Implementation of the overloads above. */
export function onSnapshot(
  target: DocRef | Query,
  next: SnapshotObserver<never> | ((snapshot: never) => void),
  error?: (error: BlazeError) => void,
): Unsubscribe {
  if (target instanceof DocRef) return target.onSnapshot(next as (s: DocumentSnapshot) => void, error);
  if (target instanceof Query) return target.onSnapshot(next as (s: QuerySnapshot) => void, error);
  throw invalidArgument("onSnapshot() takes a DocRef or a Query");
}
