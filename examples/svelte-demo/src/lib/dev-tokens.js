// DEVELOPMENT ONLY — NOT FOR PRODUCTION.
//
// Mints HS256 tokens in the browser with the local development secret of
// scripts/run.sh (the same as `blaze token`'s default), so the demo can sign
// in as "alice" or "bob" without an identity provider. Anyone who reads this
// file can mint a token for any user: a real app gets its tokens from an
// identity provider (Firebase Auth, Auth0, Clerk, ...) and its server never
// trusts this secret.

export const DEV_SECRET = "blaze-dev-secret-not-for-production";
export const DEV_ISSUER = "blaze-dev";
export const DEV_AUDIENCE = "blaze";

/** The users the demo's picker offers; `anonymous` sends no credential. */
export const DEV_USERS = ["alice", "bob", "anonymous"];

const encoder = new TextEncoder();

function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const json64 = (value) => base64url(encoder.encode(JSON.stringify(value)));

/** A development token for `uid`, valid for `ttlSecs` (WebCrypto HMAC-SHA-256). */
export async function mintDevToken(uid, { ttlSecs = 3600, claims = {} } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { ...claims, sub: uid, iss: DEV_ISSUER, aud: DEV_AUDIENCE, iat: now, exp: now + ttlSecs };
  const signingInput = `${json64({ alg: "HS256", typ: "JWT" })}.${json64(payload)}`;
  const key = await crypto.subtle.importKey("raw", encoder.encode(DEV_SECRET), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const signature = await crypto.subtle.sign("HMAC", key, encoder.encode(signingInput));
  return `${signingInput}.${base64url(new Uint8Array(signature))}`;
}

/** The user this window signed in as: `?user=` in the page's address (default anonymous). */
export function currentUser(location = window.location) {
  const user = new URLSearchParams(location.search).get("user");
  return DEV_USERS.includes(user) ? user : "anonymous";
}

/** Signs this window in as `user` (a reload with `?user=`; each window keeps its own). */
export function signInAs(user, location = window.location) {
  const url = new URL(location.href);
  url.searchParams.set("user", user);
  location.assign(url.toString());
}
