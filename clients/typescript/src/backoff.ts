/** Reconnect delays: exponential backoff with full jitter. */

/** Reconnect timing options. */
export interface ReconnectOptions {
  /** Base delay in milliseconds (default 250). */
  initialMs?: number;
  /** Cap of the exponential delay in milliseconds (default 1000: a server back after a short outage is reached within about a second). */
  maxMs?: number;
}

/** Default reconnect timing. */
export const DEFAULT_RECONNECT = { initialMs: 250, maxMs: 1000 } as const;

/**
 * The delay before reconnect attempt number `attempt` (0 for the first
 * retry): a uniformly random value in `[0, min(maxMs, initialMs * 2^attempt))`
 * ("full jitter"). `random` returns values in `[0, 1)`.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
