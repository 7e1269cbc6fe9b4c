/**
 * Files (spec section 15) in the shape of Firebase Storage's modular API:
 * {@link fileRef}, {@link uploadBytes}, {@link getBytes},
 * {@link getMetadata}, {@link updateMetadata}, {@link deleteObject},
 * `list` / `listAll` (storage-list.ts),
 * {@link getDownloadURL}, and {@link folderQuery} for a live folder.
 *
 * A file's bytes go over the HTTP routes `/v1/files/{path}`; its metadata
 * is a document (`avatars/alice.png` is described by
 * `_files/avatars/_files/alice.png`), read over HTTP, and a folder is the
 * collection of those documents, so the client's ordinary listeners
 * (`onSnapshot`) see uploads, replacements and deletions.
 */
import { Blaze } from "./client.js";
import { BlazeError, invalidArgument, LocalErrorCode } from "./errors.js";
import { readJson } from "./http.js";
import { isJsonObject, type JsonObject } from "./json.js";
import { joinPath, lastSegment, parentPath, pathProblem, segmentProblem } from "./paths.js";
import { makeBlob, type AbortSignalLike, type FetchResponseLike } from "./platform.js";
import type { Query } from "./query.js";
import type { DocumentSnapshot } from "./snapshot.js";
import type { WireDoc } from "./wire.js";

/** The collection id of a folder's metadata documents (spec 15.2). */
export const FILES_COLLECTION = "_files";

/** The most files one {@link list} page holds (and its default), as Firebase Storage's `list`. */
export const MAX_LIST_RESULTS = 1000;

function invalidFilePath(path: string, why: string): BlazeError {
  return new BlazeError("invalid_path", `invalid file path ${JSON.stringify(path)}: ${why}`);
}

/**
 * The metadata document of the file at `path` (spec 15.2):
 * `avatars/alice.png` → `_files/avatars/_files/alice.png`. `path` is not
 * checked (see {@link fileRef}).
 */
export function metadataDocPath(path: string): string {
  return path
    .split("/")
    .map((segment) => `${FILES_COLLECTION}/${segment}`)
    .join("/");
}

/**
 * The collection listing the folder at `path` (`""`: the root folder):
 * `""` → `_files`, `avatars` → `_files/avatars/_files`.
 */
export function folderCollectionPath(path: string): string {
  return path === "" ? FILES_COLLECTION : `${metadataDocPath(path)}/${FILES_COLLECTION}`;
}

/**
 * The file path a metadata document describes (the reverse of
 * {@link metadataDocPath}), or `undefined` when `docPath` is not a metadata
 * document's path.
 */
export function filePathOfMetadataDoc(docPath: string): string | undefined {
  const segments = docPath.split("/");
  if (segments.length % 2 !== 0) return undefined;
  const file: string[] = [];
  for (let i = 0; i < segments.length; i += 2) {
    if (segments[i] !== FILES_COLLECTION) return undefined;
    file.push(segments[i + 1] as string);
  }
  return file.join("/");
}

/** Throws `invalid_path` unless `path` is `""` (the root folder) or a valid file path (spec 15.1); returns it. */
function checkFilePath(path: string): string {
  if (typeof path !== "string") throw invalidArgument(`a file path must be a string, got ${typeof path}`);
  if (path === "") return path;
  for (const segment of path.split("/")) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) throw invalidFilePath(path, problem);
  }
  const problem = pathProblem(metadataDocPath(path), "document");
  if (problem !== undefined) throw invalidFilePath(path, `its metadata document path is ${problem}`);
  return path;
}

/**
 * A file or folder path (the path need not exist): Firebase Storage's
 * `StorageReference`. The root folder has the path `""`. Make one with
 * {@link fileRef}.
 */
export class FileRef {
  /** The file path (`avatars/alice.png`), `""` for the root folder. */
  readonly path: string;
  /** The last segment (`alice.png`), `""` for the root folder. */
  readonly name: string;
  /** @internal */
  readonly _db: Blaze;

  /** @internal Use {@link fileRef}. */
  constructor(db: Blaze, path: string) {
    this._db = db;
    this.path = checkFilePath(path);
    this.name = lastSegment(path);
  }

  /** The client this reference belongs to. */
  get db(): Blaze {
    return this._db;
  }

  /** The folder holding this file or folder (`avatars` for `avatars/alice.png`, the root for `a.txt`), `null` for the root. */
  get parent(): FileRef | null {
    return this.path === "" ? null : new FileRef(this._db, parentPath(this.path));
  }

  /** The root folder. */
  get root(): FileRef {
    return new FileRef(this._db, "");
  }

  /** A path under this one: `fileRef(db, "avatars").child("alice.png")`. */
  child(path: string): FileRef {
    return new FileRef(this._db, this.path === "" ? path : joinPath([this.path, path]));
  }

  /** The document holding this file's metadata (spec 15.2); `invalid_path` for the root folder, which is no file. */
  get metadataDocPath(): string {
    return metadataDocPath(this.#filePath());
  }

  /** The collection of the metadata documents of the files in this folder (spec 15.2): `_files/avatars/_files` for `avatars`, `_files` for the root. */
  get folderCollectionPath(): string {
    return folderCollectionPath(this.path);
  }

  /** Whether `other` names the same path of the same client. */
  isEqual(other: unknown): boolean {
    return other instanceof FileRef && other._db === this._db && other.path === this.path;
  }

  /** The path. */
  toString(): string {
    return this.path;
  }

  /** @internal This path as a file (not the root folder). */
  _file(): string {
    return this.#filePath();
  }

  #filePath(): string {
    if (this.path === "") throw invalidFilePath("", "the root folder is not a file");
    return this.path;
  }
}

/**
 * A file or folder reference: `fileRef(db, "avatars/alice.png")`,
 * `fileRef(db)` (the root folder), `fileRef(folder, "alice.png")` (a path
 * under `folder`). The path is checked at once (spec 15.1): segments of 1
 * to 128 characters of `A-Z a-z 0-9 - _ . ~ : @ +`, not `.`, `..` or
 * reserved (`__…__`), no empty segment (so no leading, trailing or doubled
 * `/`), and a metadata document path within the path limits; else
 * `invalid_path`.
 */
export function fileRef(parent: Blaze | FileRef, path?: string): FileRef {
  if (parent instanceof FileRef) return path === undefined ? parent : parent.child(path);
  if (parent instanceof Blaze) return new FileRef(parent, path ?? "");
  throw invalidArgument("fileRef() takes a Blaze client or a FileRef");
}

/** `ref`, or `invalid_argument` naming `what` when it is not a {@link FileRef}. @internal */
export function checkRef(ref: FileRef, what: string): FileRef {
  if (!(ref instanceof FileRef)) throw invalidArgument(`${what}() takes a FileRef (see fileRef())`);
  return ref;
}

/**
 * How downloads present a file (spec 15.2), Firebase Storage's settable
 * `cacheControl`, `contentDisposition` and `contentLanguage`: each the value
 * of that download header (printable ASCII, at most
 * {@link MAX_PRESENTATION_BYTES} bytes), absent when not set. Without
 * `cacheControl` downloads say `private, max-age=0`.
 */
export interface Presentation {
  /** The downloads' `Cache-Control`, e.g. `public, max-age=86400` for an image every page may cache. */
  readonly cacheControl?: string;
  /** The downloads' `Content-Disposition` (a download asked with `?download` says `attachment` instead). */
  readonly contentDisposition?: string;
  /** The downloads' `Content-Language`. */
  readonly contentLanguage?: string;
}

/** The longest value of a {@link Presentation} field, in bytes. */
export const MAX_PRESENTATION_BYTES = 1024;

/** Each {@link Presentation} field and the header an upload sets it with. */
const PRESENTATION = [
  ["cacheControl", "X-Blaze-Cache-Control"],
  ["contentDisposition", "X-Blaze-Content-Disposition"],
  ["contentLanguage", "X-Blaze-Content-Language"],
] as const;

const HEADER_VALUE = /^[\x20-\x7e]+$/;

/** Whether `value` is a valid {@link Presentation} value. */
function isPresentationValue(value: unknown): value is string {
  return typeof value === "string" && HEADER_VALUE.test(value) && value.trim() !== "" && value.length <= MAX_PRESENTATION_BYTES;
}

function checkPresentation(field: string, value: unknown): string {
  if (!isPresentationValue(value)) throw invalidArgument(`${field} must be a non-blank string of printable ASCII of at most ${MAX_PRESENTATION_BYTES} bytes`);
  return value;
}

/** Adds the upload headers of the {@link Presentation} fields `options` sets to `headers`. @internal */
export function presentationHeaders(options: Presentation, headers: Record<string, string>): void {
  for (const [field, header] of PRESENTATION) {
    const value = options[field];
    if (value !== undefined) headers[header] = checkPresentation(field, value);
  }
}

/** The {@link Presentation} fields of a metadata document or an answer: its string members of those names. */
function presentationOf(data: Record<string, unknown>): Presentation {
  const found: Record<string, string> = {};
  for (const [field] of PRESENTATION) {
    const value = data[field];
    if (typeof value === "string") found[field] = value;
  }
  return found;
}

/** A file's metadata (spec 15.2): its metadata document, typed. Firebase Storage's `FullMetadata`, adapted. */
export interface FileMetadata extends Presentation {
  /** The file's reference. */
  readonly ref: FileRef;
  /** The file path. */
  readonly path: string;
  /** The file's name (the last segment). */
  readonly name: string;
  /** Its length in bytes. */
  readonly size: number;
  /** The upload's `Content-Type` (`application/octet-stream` by default). */
  readonly contentType: string;
  /** The upload's custom metadata. */
  readonly metadata: Record<string, string>;
  /** The hex MD5 of the bytes, as the object store computed it (absent when it did not). */
  readonly md5?: string;
  /** The uploader's `uid`; `null` for an admin key or an anonymous caller. */
  readonly uploadedBy: string | null;
  /** The metadata document's version: the sequence number of the upload's commit (the download's `ETag`). */
  readonly version: number;
  /** When the file was first uploaded (ms since the Unix epoch); a replacement keeps it. */
  readonly createTime: number;
  /** When its current bytes were uploaded (ms since the Unix epoch). */
  readonly updateTime: number;
}

/** The answer of {@link uploadBytes} (spec 15.3). */
export interface UploadResult extends Presentation {
  /** The file's reference. */
  readonly ref: FileRef;
  /** The file path. */
  readonly path: string;
  /** The file's name. */
  readonly name: string;
  /** Its length in bytes. */
  readonly size: number;
  /** Its content type. */
  readonly contentType: string;
  /** Its custom metadata. */
  readonly metadata: Record<string, string>;
  /** The hex MD5 of the bytes stored; absent for a resumable upload's (spec 15.7: the object store computes none for an object joined from parts). */
  readonly md5?: string;
  /** The file's new version (its metadata document's version). */
  readonly version: number;
  /** The commit time of the upload (ms since the Unix epoch). */
  readonly time: number;
}

/** A `Blob` (or `File`), as far as {@link uploadBytes} reads it. */
export interface BlobLike {
  /** Its length in bytes. */
  readonly size: number;
  /** Its media type, `""` when unknown. */
  readonly type: string;
  /** Its bytes. */
  arrayBuffer(): Promise<ArrayBuffer>;
  /** The bytes from `start` to `end` (exclusive), as a `Blob` does; {@link uploadBytesResumable} sends parts of a `Blob` this way, and reads a blob without it whole. */
  slice?(start: number, end: number): BlobLike;
}

/** Options of {@link uploadBytes}; the {@link Presentation} fields are sent as `X-Blaze-Cache-Control`, `X-Blaze-Content-Disposition` and `X-Blaze-Content-Language`. */
export interface UploadOptions extends Presentation {
  /**
   * The file's content type (printable ASCII). Default: the `Blob`'s `type`
   * when it has one, else `application/octet-stream`.
   */
  contentType?: string;
  /** Custom metadata: an object of strings, stored as the file's `metadata` (sent as the `X-Blaze-Metadata` header). */
  customMetadata?: Record<string, string>;
  /** Aborts the upload (it then fails with `cancelled`; the path keeps the file it had unless the upload had completed). */
  signal?: AbortSignalLike;
}

/** The bytes to read: `length` bytes from `offset` (to the end without `length`), or the last `suffix` bytes. */
export type ByteRange = { offset: number; length?: number } | { suffix: number };

/** Options of {@link getBytes}. */
export interface GetBytesOptions {
  /** Only these bytes (an HTTP `Range`); a range starting at or past the end fails with `range_not_satisfiable`. */
  range?: ByteRange;
  /** Aborts the download (`cancelled`). */
  signal?: AbortSignalLike;
}

/** Options of {@link getDownloadURL}. */
export interface DownloadURLOptions {
  /** How long the URL stays valid, in whole seconds (default: the server's). */
  ttlSeconds?: number;
}

/** A `protocol_error` with `message`. @internal */
export function protocolError(message: string): BlazeError {
  return new BlazeError(LocalErrorCode.protocolError, message);
}

/** Whether `value` is a safe non-negative integer. @internal */
export function isUint(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return isJsonObject(value) && Object.values(value).every((v) => typeof v === "string");
}

/** The typed metadata of the document `docPath` with `data` and its metadata (`protocol_error` if it is not a file's). */
function metadataFromDoc(db: Blaze, docPath: string, data: JsonObject, version: unknown, createTime: unknown, updateTime: unknown): FileMetadata {
  const path = filePathOfMetadataDoc(docPath);
  const { size, contentType, metadata = {}, md5, uploadedBy = null } = data;
  if (
    path === undefined ||
    !isUint(size) ||
    typeof contentType !== "string" ||
    !isStringRecord(metadata) ||
    (md5 !== undefined && typeof md5 !== "string") ||
    (uploadedBy !== null && typeof uploadedBy !== "string") ||
    !isUint(version) ||
    !isUint(createTime) ||
    !isUint(updateTime)
  ) {
    throw protocolError(`not a file's metadata document: ${docPath}`);
  }
  const ref = new FileRef(db, path);
  const result: FileMetadata = { ref, path, name: ref.name, size, contentType, metadata: { ...metadata }, uploadedBy, version, createTime, updateTime, ...presentationOf(data) };
  return md5 === undefined ? result : { ...result, md5 };
}

/** The typed metadata of a document as the wire sends it (`protocol_error` if it is not a file's). @internal */
export function metadataFromWire(db: Blaze, doc: unknown): FileMetadata {
  const wire = doc as WireDoc;
  if (!isJsonObject(doc) || typeof wire.path !== "string" || wire.exists !== true || !isJsonObject(wire.data)) {
    throw protocolError(`expected an existing document, got ${JSON.stringify(doc)}`);
  }
  return metadataFromDoc(db, wire.path, wire.data, wire.version, wire.create_time, wire.update_time);
}

/**
 * The {@link FileMetadata} of a metadata document read or listened to as a
 * document (the results of {@link folderQuery}): `snap.docs.map(fileMetadataOf)`.
 * `invalid_argument` for a missing document or one that is not a file's.
 */
export function fileMetadataOf(snapshot: DocumentSnapshot): FileMetadata {
  if (!snapshot.exists()) throw invalidArgument(`fileMetadataOf(): ${snapshot.path} does not exist`);
  try {
    return metadataFromDoc(snapshot.ref.db, snapshot.path, snapshot.data() as JsonObject, snapshot.version, snapshot.createTime, snapshot.updateTime);
  } catch (error) {
    if (error instanceof BlazeError && error.code === LocalErrorCode.protocolError) throw invalidArgument(`fileMetadataOf(): ${error.message}`);
    throw error;
  }
}

const CONTENT_TYPE = /^[\x20-\x7e]+$/;

/** JSON with every character outside printable ASCII escaped (`\uXXXX`), so it is a valid header value. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function isBlobLike(value: unknown): value is BlobLike {
  if (typeof value !== "object" || value === null) return false;
  const blob = value as BlobLike;
  return typeof blob.size === "number" && typeof blob.type === "string" && typeof blob.arrayBuffer === "function";
}

/** The route of the file `ref`: `/v1/files/{path}`. @internal */
export function filesRoute(ref: FileRef): string {
  // Every character allowed in a segment is legal in a URL path (spec 11.2): nothing to encode.
  return `/v1/files/${ref._file()}`;
}

/** The bytes of `data` as an upload body: a `Uint8Array` (views and `ArrayBuffer`s wrapped) or the `Blob` itself. @internal */
export function uploadBody(data: Uint8Array | ArrayBuffer | BlobLike, what: string): Uint8Array | BlobLike {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (isBlobLike(data)) return data;
  throw invalidArgument(`${what}() takes a Uint8Array, an ArrayBuffer or a Blob`);
}

/** The checked content type of an upload: `given`, else the `Blob`'s type, else `application/octet-stream`. @internal */
export function uploadContentType(body: Uint8Array | BlobLike, given: string | undefined): string {
  const contentType = given ?? (isBlobLike(body) && body.type !== "" ? body.type : "application/octet-stream");
  if (typeof contentType !== "string" || !CONTENT_TYPE.test(contentType) || contentType.trim() === "") {
    throw invalidArgument(`contentType must be a non-empty string of printable ASCII, got ${JSON.stringify(contentType)}`);
  }
  return contentType;
}

/** The `X-Blaze-Metadata` header value of custom metadata (checked: an object of strings). @internal */
export function metadataHeader(customMetadata: Record<string, string>): string {
  if (!isStringRecord(customMetadata)) throw invalidArgument("customMetadata must be an object of strings");
  return asciiJson(customMetadata);
}

/** The {@link UploadResult} of an upload's answer (spec 15.3), `protocol_error` when it is not one. @internal */
export function uploadResultOf(ref: FileRef, answer: unknown): UploadResult {
  const { path, name, size, contentType, metadata, md5, version, time } = (isJsonObject(answer) ? answer : {}) as Record<string, unknown>;
  if (
    typeof path !== "string" ||
    typeof name !== "string" ||
    !isUint(size) ||
    typeof contentType !== "string" ||
    !isStringRecord(metadata) ||
    (md5 !== null && md5 !== undefined && typeof md5 !== "string") ||
    !isUint(version) ||
    !isUint(time)
  ) {
    throw protocolError(`not an upload's answer: ${JSON.stringify(answer)}`);
  }
  const result = { ref, path, name, size, contentType, metadata, version, time, ...presentationOf(answer as Record<string, unknown>) };
  return typeof md5 === "string" ? { ...result, md5 } : result;
}

/**
 * Uploads `data` as the file `ref` (creating or replacing it) with
 * `PUT /v1/files/{path}`; resolves to the server's answer once the
 * metadata document is committed: a reader sees the old file or the new
 * one, never a part. Rejects with the server's code: `permission_denied`
 * (the rules, checked before a byte is stored), `file_too_large`,
 * `upload_incomplete`, `invalid_frame` (bad custom metadata)...; a network
 * failure is `outcome_unknown` (the upload may have been committed). No
 * progress events: see {@link uploadBytesResumable} for those.
 */
export async function uploadBytes(ref: FileRef, data: Uint8Array | ArrayBuffer | BlobLike, options: UploadOptions = {}): Promise<UploadResult> {
  checkRef(ref, "uploadBytes");
  const route = filesRoute(ref);
  const body = uploadBody(data, "uploadBytes");
  const headers: Record<string, string> = { "Content-Type": uploadContentType(body, options.contentType) };
  if (options.customMetadata !== undefined) headers["X-Blaze-Metadata"] = metadataHeader(options.customMetadata);
  presentationHeaders(options, headers);
  // fetch sets Content-Length from the body (a Uint8Array or a Blob), as the route requires.
  return ref._db._http.send({ method: "PUT", path: route, headers, body, safe: false, timed: false, signal: options.signal }, async (response) =>
    uploadResultOf(ref, await readJson(response)),
  );
}

/** What {@link updateMetadata} changes; members left out are kept. */
export interface SettableMetadata {
  /** The new content type (printable ASCII). */
  contentType?: string;
  /** Custom metadata merged into the file's: a string sets a key, `null` removes it. */
  customMetadata?: Record<string, string | null>;
  /** The new `cacheControl` ({@link Presentation}); `null` removes it. */
  cacheControl?: string | null;
  /** The new `contentDisposition`; `null` removes it. */
  contentDisposition?: string | null;
  /** The new `contentLanguage`; `null` removes it. */
  contentLanguage?: string | null;
}

/**
 * Changes the content type, custom metadata and/or {@link Presentation} of
 * the file `ref` without touching its bytes (`PATCH /v1/files/{path}`, checked by the rules as an
 * `update` of its metadata document): `customMetadata` is merged into the
 * file's, a `null` value removing that key, as Firebase's `updateMetadata`.
 * Resolves to the server's answer, an upload's (with the new version).
 * `not_found` when the file does not exist; a network failure is
 * `outcome_unknown`.
 */
export async function updateMetadata(ref: FileRef, metadata: SettableMetadata): Promise<UploadResult> {
  checkRef(ref, "updateMetadata");
  if (!isJsonObject(metadata as unknown)) throw invalidArgument("updateMetadata() takes { contentType?, customMetadata?, cacheControl?, contentDisposition?, contentLanguage? }");
  const body: JsonObject = {};
  const presentation: readonly string[] = PRESENTATION.map(([field]) => field);
  for (const key of Object.keys(metadata)) {
    if (key !== "contentType" && key !== "customMetadata" && !presentation.includes(key)) throw invalidArgument(`updateMetadata(): unknown member ${JSON.stringify(key)}`);
  }
  for (const [field] of PRESENTATION) {
    const value = metadata[field];
    if (value !== undefined) body[field] = value === null ? null : checkPresentation(field, value);
  }
  if (metadata.contentType !== undefined) body.contentType = uploadContentType(new Uint8Array(0), metadata.contentType);
  if (metadata.customMetadata !== undefined) {
    const custom = metadata.customMetadata;
    if (!isJsonObject(custom) || !Object.values(custom).every((v) => typeof v === "string" || v === null)) {
      throw invalidArgument("customMetadata must be an object of strings or nulls");
    }
    body.metadata = custom;
  }
  if (Object.keys(body).length === 0) throw invalidArgument("updateMetadata(): nothing to change (give contentType, customMetadata or a presentation field)");
  const request = { method: "PATCH", path: filesRoute(ref), headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), safe: false, timed: true };
  return ref._db._http.send(request, async (response) => uploadResultOf(ref, await readJson(response)));
}

/** `value` as an integer of at least `min` (`invalid_argument` otherwise). @internal */
export function checkInteger(value: unknown, what: string, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) throw invalidArgument(`${what} must be an integer of at least ${min}`);
  return value;
}

/** The `Range` header of `range` (`invalid_argument` for a bad range). @internal */
export function rangeHeader(range: ByteRange): string {
  if (typeof range !== "object" || range === null) throw invalidArgument("range must be { offset, length? } or { suffix }");
  if ("suffix" in range) return `bytes=-${checkInteger(range.suffix, "range.suffix", 1)}`;
  const offset = checkInteger(range.offset, "range.offset", 0);
  if (range.length === undefined) return `bytes=${offset}-`;
  return `bytes=${offset}-${offset + checkInteger(range.length, "range.length", 1) - 1}`;
}

/** `range` applied to all the bytes of a file, for a server (or proxy) that answered 200 to a `Range`. */
function sliceRange(bytes: Uint8Array, range: ByteRange): Uint8Array {
  const size = bytes.length;
  const unsatisfiable = () => new BlazeError("range_not_satisfiable", `the file has ${size} bytes`);
  if ("suffix" in range) {
    if (size === 0) throw unsatisfiable();
    return bytes.slice(Math.max(0, size - range.suffix));
  }
  if (range.offset >= size) throw unsatisfiable();
  return bytes.slice(range.offset, range.length === undefined ? size : range.offset + range.length);
}

/** Checks a 206 answer's `Content-Range` against the range asked for and the bytes received. */
function checkPartial(response: FetchResponseLike, range: ByteRange | undefined, bytes: Uint8Array): void {
  const header = response.headers.get("Content-Range") ?? "";
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
  if (range === undefined || match === null) throw protocolError(`a 206 answer with Content-Range ${JSON.stringify(header)} to a request for ${range === undefined ? "every byte" : rangeHeader(range)}`);
  const first = Number(match[1]);
  const last = Number(match[2]);
  const size = match[3] === "*" ? undefined : Number(match[3]);
  const fits =
    last >= first &&
    bytes.length === last - first + 1 &&
    ("suffix" in range
      ? bytes.length <= range.suffix && (size === undefined || last === size - 1)
      : first === range.offset && (range.length === undefined ? size === undefined || last === size - 1 : bytes.length <= range.length));
  if (!fits) throw protocolError(`Content-Range ${JSON.stringify(header)} with ${bytes.length} bytes does not answer ${rangeHeader(range)}`);
}

/**
 * Downloads the file `ref` (`GET /v1/files/{path}`), or only `range` of it
 * (`Range`, answered 206). Rejects with `not_found` when the file does not
 * exist, `permission_denied` when the rules deny reading it (whether or not
 * it exists), `range_not_satisfiable` for a range starting at or past its
 * end (also any range of an empty file).
 */
export async function getBytes(ref: FileRef, options: GetBytesOptions = {}): Promise<Uint8Array> {
  checkRef(ref, "getBytes");
  return (await download(ref, options)).bytes;
}

/**
 * Downloads the file `ref` as {@link getBytes} does, as a `Blob` whose
 * `type` is the file's content type (Firebase Storage's `getBlob`).
 * `invalid_argument` on a host without a global `Blob` (every browser,
 * Node 18 and later, Deno and Workers have one).
 */
export async function getBlob(ref: FileRef, options: GetBytesOptions = {}): Promise<BlobLike> {
  checkRef(ref, "getBlob");
  const { bytes, contentType } = await download(ref, options);
  const blob = makeBlob(bytes, contentType);
  if (blob === undefined) throw invalidArgument("getBlob() needs a host with a global Blob (use getBytes)");
  return blob as BlobLike;
}

/** The bytes of `ref` (or of `options.range`) and the content type they were served with. */
async function download(ref: FileRef, options: GetBytesOptions): Promise<{ bytes: Uint8Array; contentType: string }> {
  const route = filesRoute(ref);
  const range = options.range;
  const headers: Record<string, string> = {};
  if (range !== undefined) headers.Range = rangeHeader(range);
  return ref._db._http.send({ method: "GET", path: route, headers, safe: true, timed: false, signal: options.signal }, async (response) => {
    const bytes = new Uint8Array(await response.arrayBuffer());
    const contentType = response.headers.get("Content-Type") ?? "";
    if (response.status === 206) {
      checkPartial(response, range, bytes);
      return { bytes, contentType };
    }
    if (response.status !== 200) throw protocolError(`a download answered ${response.status}`);
    return { bytes: range === undefined ? bytes : sliceRange(bytes, range), contentType };
  });
}

/**
 * The file's metadata: its metadata document (`GET /v1/docs/{metadata
 * document}`), typed. `not_found` when the file does not exist,
 * `permission_denied` when the rules deny reading it.
 */
export async function getMetadata(ref: FileRef): Promise<FileMetadata> {
  checkRef(ref, "getMetadata");
  const path = `/v1/docs/${ref.metadataDocPath}`;
  return ref._db._http.send({ method: "GET", path, safe: true, timed: true }, async (response) => metadataFromWire(ref._db, await readJson(response)));
}

/**
 * Deletes the file `ref` (`DELETE /v1/files/{path}`): its metadata document,
 * then its bytes. `not_found` when it does not exist; a network failure is
 * `outcome_unknown`.
 */
export async function deleteObject(ref: FileRef): Promise<void> {
  checkRef(ref, "deleteObject");
  const path = filesRoute(ref);
  await ref._db._http.send({ method: "DELETE", path, safe: false, timed: true }, async () => undefined);
}

/**
 * The query of the files in the folder `folder`, in name order: the
 * collection of their metadata documents ordered by `__name__` (spec 15.2).
 * Listen to it for a live folder (`onSnapshot(folderQuery(folder), snap =>
 * snap.docChanges())`: an upload is `added`, a replacement `modified`, a
 * deletion `removed`), and read each document with {@link fileMetadataOf}.
 * Only the files directly in the folder, not those of its subfolders.
 */
export function folderQuery(folder: FileRef): Query {
  checkRef(folder, "folderQuery");
  return folder._db.collection(folder.folderCollectionPath).orderBy("__name__");
}

/**
 * A URL that downloads the file without a credential until it expires
 * (`POST /v1/files/{path}?url`, with `&ttl=<seconds>` when `ttlSeconds` is
 * given), absolute on the client's server URL. Only for a caller the rules
 * let read the file; `not_found` when it does not exist.
 */
export async function getDownloadURL(ref: FileRef, options: DownloadURLOptions = {}): Promise<string> {
  checkRef(ref, "getDownloadURL");
  let path = `${filesRoute(ref)}?url`;
  if (options.ttlSeconds !== undefined) path += `&ttl=${checkInteger(options.ttlSeconds, "ttlSeconds", 1)}`;
  const http = ref._db._http;
  return http.send({ method: "POST", path, safe: true, timed: true }, async (response) => {
    const answer = await readJson(response);
    const url = isJsonObject(answer) ? answer.url : undefined;
    if (typeof url !== "string") throw protocolError(`not a download URL answer: ${JSON.stringify(answer)}`);
    if (/^https?:\/\//i.test(url)) return url;
    if (url.startsWith("/")) return `${http.base}${url}`;
    throw protocolError(`a download URL neither absolute nor from the server's root: ${JSON.stringify(url)}`);
  });
}
