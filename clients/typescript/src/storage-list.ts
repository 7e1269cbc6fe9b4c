/**
 * Listing a folder, as Firebase Storage's `list` and `listAll`: its files
 * from a query on the folder's collection (spec 15.2), its subfolders
 * (`prefixes`) from `GET /v1/files/{folder}/?prefixes`, both paged by one
 * `nextPageToken`.
 */
import { readJson } from "./http.js";
import { invalidArgument } from "./errors.js";
import { isJsonObject } from "./json.js";
import { segmentProblem } from "./paths.js";
import { checkInteger, checkRef, folderQuery, metadataFromWire, protocolError, MAX_LIST_RESULTS, type FileMetadata, type FileRef } from "./storage.js";

/** Options of {@link list}. */
export interface ListOptions {
  /** Entries (files and subfolders together) per page: 1 to {@link MAX_LIST_RESULTS} (default {@link MAX_LIST_RESULTS}). */
  maxResults?: number;
  /** The `nextPageToken` of the previous page. */
  pageToken?: string;
}

/** One page of a folder's files and subfolders (Firebase Storage's `ListResult`). */
export interface ListResult {
  /** The files of the page, in name order (byte order of the names). */
  readonly items: FileMetadata[];
  /** The subfolders of the page, in the store's key order (spec 15.2), as references to the folders. */
  readonly prefixes: FileRef[];
  /** Pass it as `pageToken` for the next page; absent on the last page. */
  readonly nextPageToken?: string;
}

/** A side of a page token that is complete. */
const DONE = "!";

/** Where the next page of each side starts: `""` the start, {@link DONE} complete, else the position. */
interface Positions {
  files: string;
  prefixes: string;
}

/**
 * One page of the folder `folder`: up to `maxResults` entries in all, files
 * directly in it (`items`, from `POST /v1/query` on its collection, paged
 * with `start_after`, spec 9.6) and its subfolders (`prefixes`, references
 * from `GET /v1/files/{folder}/?prefixes`, spec 15.2), asked at once and
 * taken in name order, as Firebase Storage's `list` pages them. A page may
 * hold fewer and still have a next page; the token is absent exactly when
 * both are complete.
 */
export async function list(folder: FileRef, options: ListOptions = {}): Promise<ListResult> {
  checkRef(folder, "list");
  const max = options.maxResults === undefined ? MAX_LIST_RESULTS : checkInteger(options.maxResults, "maxResults", 1);
  if (max > MAX_LIST_RESULTS) throw invalidArgument(`maxResults must be at most ${MAX_LIST_RESULTS}`);
  const at = options.pageToken === undefined ? { files: "", prefixes: "" } : positionsOf(options.pageToken);
  const [files, subfolders] = await Promise.all([
    at.files === DONE ? { items: [], next: DONE } : filesPage(folder, max, at.files),
    at.prefixes === DONE ? { names: [], next: DONE } : prefixesPage(folder, max, at.prefixes),
  ]);
  const taken = takeInNameOrder(
    files.items.map((i) => i.name),
    subfolders.names,
    max,
  );
  const page = { items: files.items.slice(0, taken.files), prefixes: subfolders.names.slice(0, taken.prefixes).map((name) => folder.child(name)) };
  const next = {
    files: nextPosition(at.files, files.items.map((i) => i.name), taken.files, files.next, ""),
    prefixes: nextPosition(at.prefixes, subfolders.names, taken.prefixes, subfolders.next, "/"),
  };
  if (next.files === DONE && next.prefixes === DONE) return page;
  return { ...page, nextPageToken: `${next.files}|${next.prefixes}` };
}

/**
 * How many of `files` and of `folders` (each in its listing's order) the
 * first `max` entries in name order take; a file before a folder of the
 * same name.
 */
function takeInNameOrder(files: string[], folders: string[], max: number): { files: number; prefixes: number } {
  let i = 0;
  let j = 0;
  while (i + j < max && (i < files.length || j < folders.length)) {
    const file = files[i];
    const folder = folders[j];
    if (folder === undefined || (file !== undefined && file <= folder)) i += 1;
    else j += 1;
  }
  return { files: i, prefixes: j };
}

/**
 * Where a side's next page starts: past the last of `names` the page took
 * (followed by `suffix`), the side's own next position when it took them
 * all, or where this page started when it took none.
 */
function nextPosition(started: string, names: string[], taken: number, next: string, suffix: string): string {
  if (taken === names.length) return next;
  return taken === 0 ? started : `${names[taken - 1]}${suffix}`;
}

/** Every file and subfolder of the folder `folder` (pages of {@link MAX_LIST_RESULTS} from {@link list}). */
export async function listAll(folder: FileRef): Promise<ListResult> {
  const items: FileMetadata[] = [];
  const prefixes: FileRef[] = [];
  let pageToken: string | undefined;
  do {
    const page: ListResult = await list(folder, pageToken === undefined ? {} : { pageToken });
    items.push(...page.items);
    prefixes.push(...page.prefixes);
    pageToken = page.nextPageToken;
  } while (pageToken !== undefined);
  return { items, prefixes };
}

/** The positions of a token {@link list} made (`invalid_argument` for anything else). */
function positionsOf(token: unknown): Positions {
  const parts = typeof token === "string" ? token.split("|") : [];
  const [files, prefixes] = parts;
  const valid =
    parts.length === 2 &&
    files !== undefined &&
    prefixes !== undefined &&
    (files === DONE || files === "" || segmentProblem(files) === undefined) &&
    (prefixes === DONE || prefixes === "" || isPosition(prefixes)) &&
    !(files === DONE && prefixes === DONE) &&
    !(files === "" && prefixes === "");
  if (!valid || files === undefined || prefixes === undefined) throw invalidArgument("pageToken is not a token list() made");
  return { files, prefixes };
}

/** Whether `text` is a subfolder position (spec 15.2): a segment, optionally followed by `/`. */
function isPosition(text: string): boolean {
  return segmentProblem(text.endsWith("/") ? text.slice(0, -1) : text) === undefined;
}

/** Up to `max` files after the name `after` (`""`: from the first), and the next position. */
async function filesPage(folder: FileRef, max: number, after: string): Promise<{ items: FileMetadata[]; next: string }> {
  let query = folderQuery(folder).limit(max + 1);
  if (after !== "") query = query.startAfter(after);
  const db = folder._db;
  const request = { method: "POST", path: "/v1/query", headers: { "Content-Type": "application/json" }, body: JSON.stringify(query.toWire()), safe: true, timed: true };
  return db._http.send(request, async (response) => {
    const answer = await readJson(response);
    const docs = isJsonObject(answer) ? answer.docs : undefined;
    if (!Array.isArray(docs)) throw protocolError(`not a query's answer: ${JSON.stringify(answer)}`);
    const items = docs.slice(0, max).map((doc) => metadataFromWire(db, doc));
    const last = items[items.length - 1];
    return { items, next: docs.length > max && last !== undefined ? last.name : DONE };
  });
}

/** Up to `max` subfolder names after the position `after` (`""`: from the first), and the next position. */
async function prefixesPage(folder: FileRef, max: number, after: string): Promise<{ names: string[]; next: string }> {
  const base = folder.path === "" ? "/v1/files/" : `/v1/files/${folder.path}/`;
  const position = after === "" ? "" : `&after=${encodeURIComponent(after)}`;
  const path = `${base}?prefixes&max=${max}${position}`;
  return folder._db._http.send({ method: "GET", path, safe: true, timed: true }, async (response) => {
    const answer = await readJson(response);
    const names = isJsonObject(answer) ? answer.prefixes : undefined;
    const next = isJsonObject(answer) ? answer.after : undefined;
    const valid =
      Array.isArray(names) &&
      names.length <= max &&
      names.every((n) => typeof n === "string" && segmentProblem(n) === undefined) &&
      (next === null || (typeof next === "string" && isPosition(next)));
    if (!valid) throw protocolError(`not a subfolder listing: ${JSON.stringify(answer)}`);
    return { names: names as string[], next: next === null ? DONE : (next as string) };
  });
}
