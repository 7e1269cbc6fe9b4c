// The demo's development tokens (src/lib/dev-tokens.js) are HS256 JWTs with
// the development secret, issuer and audience of scripts/run.sh: checked here
// with Node's own HMAC.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { DEV_SECRET, currentUser, mintDevToken } from "../src/lib/dev-tokens.js";

const decode = (segment) => JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));

test("a development token is an HS256 JWT for the user, signed with the development secret", async () => {
  const before = Math.floor(Date.now() / 1000);
  const token = await mintDevToken("alice", { ttlSecs: 600, claims: { role: "admin" } });
  const [header, payload, signature] = token.split(".");
  assert.deepEqual(decode(header), { alg: "HS256", typ: "JWT" });
  const claims = decode(payload);
  assert.deepEqual(
    { sub: claims.sub, iss: claims.iss, aud: claims.aud, role: claims.role, ttl: claims.exp - claims.iat },
    { sub: "alice", iss: "blaze-dev", aud: "blaze", role: "admin", ttl: 600 },
  );
  assert.ok(claims.iat >= before);
  assert.equal(signature, createHmac("sha256", DEV_SECRET).update(`${header}.${payload}`).digest("base64url"));
});

test("the window's user comes from ?user=, anonymous otherwise", () => {
  assert.equal(currentUser({ search: "?server=x&user=bob" }), "bob");
  assert.equal(currentUser({ search: "?user=mallory" }), "anonymous");
  assert.equal(currentUser({ search: "" }), "anonymous");
});
