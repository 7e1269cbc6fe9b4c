/**
 * Who the client connects as (spec section 13): when to refresh a token
 * in-band, how many refusals in a row the client takes, and reading the
 * application's token provider.
 */

/** The close code of a refused or expired credential (spec 13.5). */
export const CLOSE_UNAUTHENTICATED = 4001;

/** A token is refreshed this long before it expires... */
export const REFRESH_MARGIN_MS = 60_000;

/**
 * How many credentials from `getToken` in a row may fail (the provider
 * throws, or the server refuses the token) before requests and listeners
 * fail with `unauthenticated`. A fixed `auth` is not retried at all.
 */
export const AUTH_ATTEMPTS = 3;

/** `setTimeout` takes at most 2^31 - 1 ms. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/**
 * The wait before refreshing a credential with `leftMs` to live: a minute
 * before it expires, or once 80% of what is left passed when that is later
 * (short-lived tokens).
 */
export function refreshDelay(leftMs: number): number {
  const left = Math.max(0, leftMs);
  return Math.min(LONGEST_TIMER_MS, Math.max(left - REFRESH_MARGIN_MS, left * 0.8));
}

/** The application's token provider: the current token, or `null` to connect anonymously. */
export type TokenProvider = () => Promise<string | null>;

/** Asks the provider for the current token; anything but a string or `null` is a failure. */
export async function fetchToken(getToken: TokenProvider): Promise<string | null> {
  const token: unknown = await getToken();
  if (token === null || token === undefined) return null;
  if (typeof token !== "string") throw new TypeError(`getToken resolved to a ${typeof token}, not a string or null`);
  return token;
}
