/**
 * `@blaze/client`: a dependency-free client for Blaze, protocol version 1.
 *
 * ```ts
 * import { connect, collection, doc, query, where, orderBy, limit, onSnapshot, setDoc } from "@blaze/client";
 * const db = connect("https://blaze.example.workers.dev");
 * await setDoc(doc(db, "rooms/r1"), { name: "lobby", open: true });
 * const stop = onSnapshot(query(collection(db, "rooms"), where("open", "==", true), orderBy("name")), (snap) => {
 *   for (const change of snap.docChanges()) console.log(change.type, change.doc.id, change.oldIndex, change.newIndex);
 * });
 * ```
 *
 * @packageDocumentation
 */
export { Blaze, connect, DEFAULT_REQUEST_TIMEOUT_MS, type ConnectOptions, type ConnectionState } from "./client.js";
export { DocRef, CollectionRef } from "./refs.js";
export {
  Query,
  QueryConstraint,
  QueryFilterConstraint,
  query,
  where,
  and,
  or,
  orderBy,
  limit,
  limitToLast,
  startAt,
  startAfter,
  endAt,
  endBefore,
  type QueryConstraintType,
  type WhereOp,
  type Direction,
} from "./query.js";
export { DocumentSnapshot, QuerySnapshot, type DocChange } from "./snapshot.js";
export type { ChangeType } from "./results.js";
export { WriteBatch } from "./batch.js";
export { type CommitResult, type WriteOptions } from "./writes.js";
export { BlazeError, LocalErrorCode } from "./errors.js";
export {
  collection,
  doc,
  getDoc,
  getDocs,
  getCount,
  setDoc,
  addDoc,
  updateDoc,
  patchDoc,
  deleteDoc,
  writeBatch,
  onSnapshot,
} from "./modular.js";
export { fieldPath, documentId } from "./field-path.js";
export type { JsonPatchOp } from "./json-patch.js";
export type { JsonObject, JsonValue } from "./json.js";
export type { SnapshotObserver, Unsubscribe } from "./observe.js";
export type { ReconnectOptions } from "./backoff.js";
export type { WebSocketConstructor, WebSocketLike, FetchFunction, FetchInit, FetchResponseLike, AbortSignalLike, ReadableStreamLike } from "./platform.js";
export {
  FileRef,
  fileRef,
  uploadBytes,
  getBytes,
  getBlob,
  getMetadata,
  updateMetadata,
  deleteObject,
  folderQuery,
  fileMetadataOf,
  getDownloadURL,
  metadataDocPath,
  folderCollectionPath,
  FILES_COLLECTION,
  MAX_LIST_RESULTS,
  MAX_PRESENTATION_BYTES,
  type Presentation,
  type FileMetadata,
  type UploadResult,
  type UploadOptions,
  type SettableMetadata,
  type BlobLike,
  type ByteRange,
  type GetBytesOptions,
  type DownloadURLOptions,
} from "./storage.js";
export { uploadString, StringFormat } from "./storage-string.js";
export { list, listAll, type ListOptions, type ListResult } from "./storage-list.js";
export { getStream } from "./storage-stream.js";
export {
  UploadTask,
  uploadBytesResumable,
  type TaskState,
  type UploadTaskSnapshot,
  type UploadMetadata,
  type UploadObserver,
  type ResumableUploadOptions,
} from "./upload-task.js";
export type { WireQuery, WireFilter, WireDoc, WireChange, WireWrite, WireAuthState } from "./wire.js";
export type { TokenProvider } from "./credential.js";
