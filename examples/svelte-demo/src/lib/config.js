// Where the Blaze worker is: `?server=` in the page's address wins, then
// VITE_BLAZE_URL at build time, then the local `wrangler dev` default.
export const DEFAULT_SERVER = "http://127.0.0.1:8787";

export function serverUrl(location = window.location) {
  const fromQuery = new URLSearchParams(location.search).get("server");
  if (fromQuery && fromQuery.trim()) return fromQuery.trim().replace(/\/+$/, "");
  const fromEnv = import.meta.env.VITE_BLAZE_URL;
  if (fromEnv && String(fromEnv).trim()) return String(fromEnv).trim().replace(/\/+$/, "");
  return DEFAULT_SERVER;
}

/** True for an error the access rules gave (`blaze.rules`: spec section 14). */
export function isPermissionDenied(err) {
  return err?.code === "permission_denied";
}

// Readable text for anything a write or a listener can reject with.
export function describeError(err) {
  if (!err) return "Unknown error";
  if (isPermissionDenied(err)) return "Permission denied: the access rules (blaze.rules) do not allow this.";
  const code = err.code ? String(err.code) : "";
  const message = err.message ? String(err.message) : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
