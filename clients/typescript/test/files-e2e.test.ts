/**
 * Files end to end (spec 15, README "Files"): the files API against the real
 * worker under `wrangler dev` (its R2 bucket simulated from the
 * `--persist-to` state), started once for this file with the repository's
 * `blaze.rules`, whose only rule for `_files` is for the demo's attachments
 * (`attachments/{uid}/…`): in the tests' folders the admin key (which skips
 * the rules) uploads, and a signed-in user is denied everything. Every test
 * uses its own folder. The maximum file size is lowered to 6 MiB so that
 * `file_too_large` is reachable with a small body.
 */
import assert from "node:assert/strict";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import {
  BlazeError,
  connect,
  deleteObject,
  doc,
  fileMetadataOf,
  fileRef,
  folderQuery,
  getBlob,
  getBytes,
  getDoc,
  getStream,
  getDownloadURL,
  getMetadata,
  list,
  listAll,
  onSnapshot,
  setDoc,
  updateMetadata,
  uploadBytes,
  uploadBytesResumable,
  uploadString,
  type Blaze,
  type FileRef,
  type QuerySnapshot,
  type ReadableStreamLike,
  type UploadTaskSnapshot,
} from "../src/index.js";
import { eventually } from "./helpers/eventually.js";
import { repoRoot } from "./helpers/vectors.js";
import { WranglerDev } from "./helpers/wrangler.js";

const DEV_SECRET = "blaze-dev-secret-not-for-production";
const ADMIN_KEY = "blaze-dev-admin-key";
const MAX_FILE_BYTES = 6 * 1024 * 1024;

const RUN = `r${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
let wrangler: WranglerDev | undefined;
const clients: Blaze[] = [];
let folders = 0;

/** An HS256 development token for `uid`, valid for an hour. */
function devToken(uid: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const iat = Math.floor(Date.now() / 1000);
  const signed = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: uid, iss: "blaze-dev", aud: "blaze", iat, exp: iat + 3600 })}`;
  return `${signed}.${createHmac("sha256", DEV_SECRET).update(signed).digest("base64url")}`;
}

/** A client signed in as `uid` (`"admin"`: the admin key). */
function as(uid: "alice" | "admin"): Blaze {
  assert.ok(wrangler, "wrangler dev is not running (see the before hook's error)");
  const db = connect(wrangler.url, { WebSocket, auth: uid === "admin" ? ADMIN_KEY : devToken(uid), requestTimeoutMs: 15_000, reconnect: { initialMs: 50, maxMs: 400 } });
  clients.push(db);
  return db;
}

/** A folder no other test uses. */
function freshFolder(db: Blaze): FileRef {
  return fileRef(db, `${RUN}/t${++folders}`);
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");

function code(expected: string) {
  return (e: unknown) => {
    assert.ok(e instanceof BlazeError, `expected a BlazeError, got ${String(e)}`);
    assert.equal(e.code, expected, `expected ${expected}, got ${e.code}: ${e.message}`);
    return true;
  };
}

/** Every byte of `stream` and how many chunks they came in. */
async function streamedBytes(stream: ReadableStreamLike): Promise<{ bytes: Uint8Array; chunks: number }> {
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (value !== undefined) parts.push(value);
  }
  return { bytes: new Uint8Array(Buffer.concat(parts)), chunks: parts.length };
}

describe("files end to end (wrangler dev, blaze.rules)", () => {
  let admin: Blaze;
  let alice: Blaze;

  before(async () => {
    const rules = readFileSync(join(repoRoot(), "blaze.rules"), "utf8");
    wrangler = await WranglerDev.create({ vars: [`BLAZE_RULES:${rules}`, `BLAZE_FILES_MAX_BYTES:${MAX_FILE_BYTES}`] });
    await wrangler.start();
    admin = as("admin");
    alice = as("alice");
  });

  after(async () => {
    for (const db of clients) db.close();
    await wrangler?.dispose();
  });

  it("uploads and downloads 0 B, 1 B and 5 MiB byte for byte; the answer and getMetadata agree", async () => {
    const folder = freshFolder(admin);
    const cases = [
      ["empty.bin", new Uint8Array(0)],
      ["one.bin", new Uint8Array([0xa5])],
      ["five.bin", new Uint8Array(randomBytes(5 * 1024 * 1024 + 7))],
    ] as const;
    for (const [name, bytes] of cases) {
      const ref = folder.child(name);
      const uploaded = await uploadBytes(ref, bytes, { contentType: "application/x-test", customMetadata: { case: name, note: "naïve ☃" } });
      assert.equal(uploaded.path, ref.path);
      assert.equal(uploaded.name, name);
      assert.equal(uploaded.size, bytes.length);
      assert.equal(uploaded.contentType, "application/x-test");
      assert.deepEqual(uploaded.metadata, { case: name, note: "naïve ☃" });
      assert.equal(uploaded.md5, md5(bytes), "the object store's MD5 is the bytes' MD5");
      assert.ok(uploaded.version > 0 && uploaded.time > 0);

      const downloaded = await getBytes(ref);
      assert.equal(downloaded.length, bytes.length, name);
      assert.equal(sha256(downloaded), sha256(bytes), `${name} round trip`);
      const streamed = await streamedBytes(getStream(ref));
      assert.equal(sha256(streamed.bytes), sha256(bytes), `${name} streamed`);
      if (bytes.length > 1) {
        assert.ok(streamed.chunks > 1, `${name} arrives in chunks, not whole: ${streamed.chunks}`);
        const tail = await streamedBytes(getStream(ref, { range: { suffix: 3 } }));
        assert.deepEqual(tail.bytes, bytes.slice(-3));
      }

      const meta = await getMetadata(ref);
      assert.ok(meta.ref.isEqual(ref));
      assert.deepEqual(
        [meta.path, meta.name, meta.size, meta.contentType, meta.metadata, meta.md5, meta.uploadedBy, meta.version, meta.updateTime],
        [ref.path, name, bytes.length, "application/x-test", { case: name, note: "naïve ☃" }, md5(bytes), null, uploaded.version, uploaded.time],
      );
    }
    await assert.rejects(getBytes(folder.child("empty.bin"), { range: { offset: 0 } }), code("range_not_satisfiable"), "any range of an empty file");
  });

  it("a replacement serves the new bytes and type at a new version", async () => {
    const ref = freshFolder(admin).child("doc.txt");
    const first = await uploadBytes(ref, new TextEncoder().encode("first version, rather long"), { contentType: "text/plain" });
    const second = await uploadBytes(ref, new TextEncoder().encode("second"), { contentType: "text/markdown", customMetadata: { rev: "2" } });
    assert.ok(second.version > first.version);
    assert.equal(new TextDecoder().decode(await getBytes(ref)), "second");
    const meta = await getMetadata(ref);
    assert.deepEqual([meta.size, meta.contentType, meta.metadata, meta.version], [6, "text/markdown", { rev: "2" }, second.version]);
    assert.equal(meta.createTime, first.time, "a replacement keeps the creation time");
    assert.equal(meta.updateTime, second.time);
  });

  it("uploadString and getBlob: a data URL's bytes and type stored, served back as a Blob", async () => {
    const folder = freshFolder(admin);
    const pixel = randomBytes(67);
    const png = folder.child("pixel.png");
    const uploaded = await uploadString(png, `data:image/png;base64,${pixel.toString("base64")}`, "data_url");
    assert.deepEqual([uploaded.size, uploaded.contentType, uploaded.md5], [67, "image/png", md5(pixel)]);
    const blob = await getBlob(png);
    assert.equal(blob.type, "image/png");
    assert.equal(sha256(new Uint8Array(await blob.arrayBuffer())), sha256(pixel));
    const text = folder.child("note.txt");
    await uploadString(text, "ça va ☃", "raw", { contentType: "text/plain; charset=utf-8" });
    assert.equal(new TextDecoder().decode(await getBytes(text)), "ça va ☃");
    assert.equal((await getMetadata(text)).contentType, "text/plain; charset=utf-8");
  });

  it("range reads: offset and length, to the end, past the end, the last n bytes", async () => {
    const ref = freshFolder(admin).child("hundred.bin");
    const bytes = Uint8Array.from({ length: 100 }, (_, i) => (i * 7) % 256);
    await uploadBytes(ref, bytes);
    assert.deepEqual(await getBytes(ref, { range: { offset: 10, length: 20 } }), bytes.slice(10, 30));
    assert.deepEqual(await getBytes(ref, { range: { offset: 90 } }), bytes.slice(90));
    assert.deepEqual(await getBytes(ref, { range: { offset: 95, length: 100 } }), bytes.slice(95), "a length past the end is cut");
    assert.deepEqual(await getBytes(ref, { range: { offset: 99, length: 1 } }), bytes.slice(99));
    assert.deepEqual(await getBytes(ref, { range: { suffix: 7 } }), bytes.slice(93));
    assert.deepEqual(await getBytes(ref, { range: { suffix: 1000 } }), bytes);
    await assert.rejects(getBytes(ref, { range: { offset: 100 } }), code("range_not_satisfiable"));
    await assert.rejects(getBytes(ref, { range: { offset: 5000, length: 1 } }), code("range_not_satisfiable"));
  });

  it("delete: then not_found for the bytes, the metadata and a second delete; over the size limit: file_too_large and nothing stored", async () => {
    const folder = freshFolder(admin);
    const ref = folder.child("doomed.txt");
    await uploadBytes(ref, new TextEncoder().encode("bye"));
    await deleteObject(ref);
    await assert.rejects(getBytes(ref), code("not_found"));
    await assert.rejects(getMetadata(ref), code("not_found"));
    await assert.rejects(deleteObject(ref), code("not_found"));
    assert.equal((await getDoc(doc(admin, ref.metadataDocPath))).exists(), false, "the metadata document is gone");

    const big = folder.child("big.bin");
    await assert.rejects(uploadBytes(big, new Uint8Array(MAX_FILE_BYTES + 1)), code("file_too_large"));
    await assert.rejects(getMetadata(big), code("not_found"));
    assert.deepEqual((await listAll(folder)).items, []);
  });

  it("lists a folder of 25 files in pages of 10, in name order, with no duplicate and no gap, and its subfolders once", async () => {
    const folder = freshFolder(admin);
    const names = Array.from({ length: 25 }, (_, i) => `f${String(i).padStart(2, "0")}.txt`);
    const shuffled = [...names].sort(() => Math.random() - 0.5);
    for (let i = 0; i < shuffled.length; i += 5) {
      await Promise.all(shuffled.slice(i, i + 5).map((name) => uploadBytes(folder.child(name), new TextEncoder().encode(name))));
    }
    await uploadBytes(folder.child("sub/nested.txt"), new Uint8Array([1]));

    await uploadBytes(folder.child("sub/deeper/z.txt"), new Uint8Array([2]));
    await uploadBytes(folder.child("other+x/y.txt"), new Uint8Array([3]));

    const pages: string[][] = [];
    const prefixes: string[] = [];
    let pageToken: string | undefined;
    do {
      const page = await list(folder, pageToken === undefined ? { maxResults: 10 } : { maxResults: 10, pageToken });
      pages.push(page.items.map((item) => item.name));
      prefixes.push(...page.prefixes.map((p) => p.path));
      assert.ok(page.items.every((item) => item.size === item.name.length && item.ref.parent?.isEqual(folder)));
      pageToken = page.nextPageToken;
      assert.ok(pages.length <= 3, "at most three pages");
    } while (pageToken !== undefined);
    assert.deepEqual(
      pages.map((p) => p.length),
      [10, 10, 5],
    );
    assert.deepEqual(pages.flat(), names, "every file once, in order");
    const subfolders = [folder.child("other+x").path, folder.child("sub").path];
    assert.deepEqual(prefixes, subfolders, "each subfolder once, nested ones under theirs");
    const all = await listAll(folder);
    assert.deepEqual(
      all.items.map((i) => i.name),
      names,
    );
    assert.deepEqual(
      all.prefixes.map((p) => p.path),
      subfolders,
    );
    const sub = await list(folder.child("sub"));
    assert.deepEqual(
      sub.items.map((i) => i.path),
      [folder.child("sub/nested.txt").path],
    );
    assert.deepEqual(
      sub.prefixes.map((p) => p.path),
      [folder.child("sub/deeper").path],
    );
    // Its last file deleted, a subfolder is gone.
    await deleteObject(folder.child("other+x/y.txt"));
    assert.deepEqual(
      (await listAll(folder)).prefixes.map((p) => p.path),
      [folder.child("sub").path],
    );
  });

  it("a live folder sees an upload as added, a replacement as modified, a deletion as removed", async () => {
    const folder = freshFolder(admin);
    const snaps: QuerySnapshot[] = [];
    const errors: BlazeError[] = [];
    const stop = onSnapshot(folderQuery(folder), (s) => snaps.push(s), (e) => errors.push(e));
    try {
      await eventually(() => snaps.length > 0 || errors.length > 0, "the folder's first snapshot");
      assert.equal(snaps[0]?.size, 0);
      const changes = () => snaps.flatMap((s) => s.docChanges().map((c) => `${c.type} ${fileMetadataOf(c.doc).name} ${fileMetadataOf(c.doc).size}`));

      await uploadBytes(folder.child("a.txt"), new TextEncoder().encode("aaa"));
      await eventually(() => changes().includes("added a.txt 3"), "a.txt added");
      await uploadBytes(folder.child("a.txt"), new TextEncoder().encode("aaaaa"));
      await eventually(() => changes().includes("modified a.txt 5"), "a.txt modified");
      await uploadBytes(folder.child("b.txt"), new TextEncoder().encode("b"));
      await eventually(() => changes().includes("added b.txt 1"), "b.txt added");
      await deleteObject(folder.child("a.txt"));
      await eventually(() => changes().some((c) => c.startsWith("removed a.txt")), "a.txt removed");

      assert.deepEqual(changes(), ["added a.txt 3", "modified a.txt 5", "added b.txt 1", "removed a.txt 5"]);
      const last = snaps[snaps.length - 1] as QuerySnapshot;
      assert.deepEqual(
        last.docs.map((d) => fileMetadataOf(d).path),
        [folder.child("b.txt").path],
      );
      assert.deepEqual(errors, []);
    } finally {
      stop();
    }
  });

  it("a signed-in user the rules deny gets permission_denied for every operation, and nothing changes", async () => {
    const folder = freshFolder(admin);
    const secret = folder.child("secret.txt");
    const bytes = new TextEncoder().encode("the admin's secret");
    const stored = await uploadBytes(secret, bytes, { contentType: "text/plain" });

    const hers = fileRef(alice, secret.path);
    await assert.rejects(uploadBytes(hers, new TextEncoder().encode("overwritten")), code("permission_denied"));
    await assert.rejects(uploadBytes(fileRef(alice, folder.child("planted.txt").path), new Uint8Array([1, 2])), code("permission_denied"));
    await assert.rejects(getBytes(hers), code("permission_denied"));
    await assert.rejects(getBytes(fileRef(alice, folder.child("missing.txt").path)), code("permission_denied"), "existence does not leak");
    await assert.rejects(getMetadata(hers), code("permission_denied"));
    await assert.rejects(deleteObject(hers), code("permission_denied"));
    await assert.rejects(list(fileRef(alice, folder.path)), code("permission_denied"));
    await assert.rejects(getDownloadURL(hers), code("permission_denied"));
    const errors: BlazeError[] = [];
    const stop = onSnapshot(folderQuery(fileRef(alice, folder.path)), () => assert.fail("alice's folder listener got a snapshot"), (e) => errors.push(e));
    await eventually(() => errors.length > 0, "the refused listen's error");
    stop();
    code("permission_denied")(errors[0]);
    // Only the server writes metadata documents: not even the admin key forges one.
    await assert.rejects(setDoc(doc(admin, secret.metadataDocPath), { size: 1, key: "o/elsewhere" }), code("permission_denied"));

    assert.equal(sha256(await getBytes(secret)), sha256(bytes), "the bytes are unchanged");
    const meta = await getMetadata(secret);
    assert.deepEqual([meta.version, meta.size, meta.contentType], [stored.version, bytes.length, "text/plain"]);
    assert.deepEqual(
      (await listAll(folder)).items.map((i) => i.name),
      ["secret.txt"],
      "nothing was planted",
    );
  });

  it("getDownloadURL: an absolute URL that downloads without a credential", async () => {
    const ref = freshFolder(admin).child("shared.bin");
    const bytes = new Uint8Array(randomBytes(1000));
    await uploadBytes(ref, bytes);
    const url = await getDownloadURL(ref, { ttlSeconds: 60 });
    assert.ok(url.startsWith(`${wrangler?.url}/v1/files/${ref.path}?`), url);
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.equal(sha256(new Uint8Array(await response.arrayBuffer())), sha256(bytes));
    const tampered = await fetch(url.replace(/signature=([0-9a-f])/, (_, c: string) => `signature=${c === "0" ? "1" : "0"}`));
    assert.notEqual(tampered.status, 200, "a tampered signature does not download");
    await assert.rejects(getDownloadURL(freshFolder(admin).child("missing.bin")), code("not_found"));
  });

  it("uploadBytesResumable: 0 B, 1 B and 17 MiB (three parts) byte for byte, progress growing to the size", async () => {
    const folder = freshFolder(admin);
    for (const [name, bytes] of [
      ["empty.bin", new Uint8Array(0)],
      ["one.bin", new Uint8Array([0x5a])],
      ["parts.bin", new Uint8Array(randomBytes(17 * 1024 * 1024 + 3))],
    ] as const) {
      const ref = folder.child(name);
      const task = uploadBytesResumable(ref, bytes, { contentType: "application/x-test", customMetadata: { case: name } });
      const progress: number[] = [];
      task.on("state_changed", (s: UploadTaskSnapshot) => progress.push(s.bytesTransferred));
      const final = await task;
      assert.equal(final.state, "success");
      assert.equal(final.metadata?.size, bytes.length);
      assert.equal(final.metadata?.md5, undefined, "an object joined from parts has no MD5 (spec 15.7)");
      assert.equal(typeof final.metadata?.version, "number");
      assert.deepEqual([...progress].sort((a, b) => a - b), progress, `${name}: progress never goes back`);
      assert.equal(progress[progress.length - 1], bytes.length, `${name}: progress ends at the size`);
      assert.equal(sha256(await getBytes(ref)), sha256(bytes), `${name} round trip`);
      const meta = await getMetadata(ref);
      assert.deepEqual([meta.size, meta.contentType, meta.metadata], [bytes.length, "application/x-test", { case: name }]);
    }
  });

  it("uploadBytesResumable: paused after the first part and resumed, the file is whole; cancelled, nothing is stored", async () => {
    const folder = freshFolder(admin);
    const bytes = new Uint8Array(randomBytes(20 * 1024 * 1024));
    const ref = folder.child("paused.bin");
    const task = uploadBytesResumable(ref, bytes);
    const states: string[] = [];
    task.on("state_changed", (s: UploadTaskSnapshot) => {
      states.push(s.state);
      if (s.state === "running" && s.bytesTransferred > 0 && !states.includes("paused")) assert.equal(task.pause(), true);
    });
    await eventually(() => task.snapshot.state === "paused", "the pause");
    const held = task.snapshot.bytesTransferred;
    assert.ok(held > 0 && held < bytes.length, `paused part way: ${held}`);
    assert.equal(task.resume(), true);
    const final = await task;
    assert.equal(final.bytesTransferred, bytes.length);
    assert.equal(sha256(await getBytes(ref)), sha256(bytes));

    const cancelled = uploadBytesResumable(folder.child("cancelled.bin"), bytes);
    cancelled.on("state_changed", (s: UploadTaskSnapshot) => {
      if (s.bytesTransferred > 0) cancelled.cancel();
    });
    await assert.rejects(Promise.resolve(cancelled), code("cancelled"));
    await assert.rejects(getMetadata(folder.child("cancelled.bin")), code("not_found"));
  });

  it("updateMetadata changes the type and merges the custom metadata (null removes a key), bytes untouched", async () => {
    const ref = freshFolder(admin).child("meta.txt");
    const bytes = new TextEncoder().encode("unchanged bytes");
    const first = await uploadBytes(ref, bytes, { contentType: "text/plain", customMetadata: { keep: "1", drop: "2" } });
    const updated = await updateMetadata(ref, { contentType: "text/markdown", customMetadata: { drop: null, added: "3" } });
    assert.ok(updated.version > first.version);
    assert.deepEqual([updated.contentType, updated.metadata, updated.size], ["text/markdown", { keep: "1", added: "3" }, bytes.length]);
    const meta = await getMetadata(ref);
    assert.deepEqual([meta.contentType, meta.metadata, meta.version], ["text/markdown", { keep: "1", added: "3" }, updated.version]);
    assert.equal(sha256(await getBytes(ref)), sha256(bytes));
    await assert.rejects(updateMetadata(freshFolder(admin).child("missing.txt"), { contentType: "text/plain" }), code("not_found"));
  });

  it("cacheControl, contentDisposition and contentLanguage are set by uploads, answered by downloads and download URLs, changed by updateMetadata", async () => {
    const ref = freshFolder(admin).child("logo.svg");
    const bytes = new TextEncoder().encode("<svg/>");
    const uploaded = await uploadBytes(ref, bytes, { contentType: "image/svg+xml", cacheControl: "public, max-age=86400", contentLanguage: "en" });
    assert.deepEqual([uploaded.cacheControl, uploaded.contentLanguage, uploaded.contentDisposition], ["public, max-age=86400", "en", undefined]);
    const url = await getDownloadURL(ref);
    const served = await fetch(url);
    assert.deepEqual([served.status, served.headers.get("cache-control"), served.headers.get("content-language")], [200, "public, max-age=86400", "en"]);
    await served.arrayBuffer();
    const updated = await updateMetadata(ref, { cacheControl: null, contentDisposition: "inline" });
    assert.deepEqual([updated.cacheControl, updated.contentDisposition, updated.contentLanguage], [undefined, "inline", "en"]);
    const meta = await getMetadata(ref);
    assert.deepEqual([meta.cacheControl, meta.contentDisposition, meta.contentLanguage], [undefined, "inline", "en"]);
    const again = await fetch(await getDownloadURL(ref));
    assert.deepEqual([again.headers.get("cache-control"), again.headers.get("content-disposition")], ["private, max-age=0", "inline"]);
    assert.equal(sha256(new Uint8Array(await again.arrayBuffer())), sha256(bytes));
  });
});
