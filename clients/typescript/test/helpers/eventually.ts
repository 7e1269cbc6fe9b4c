// Polling for the end-to-end tests: one helper instead of a copy per file.

/** Resolves once `predicate` holds (checked every 10 ms); fails naming `what` after `ms`. */
export async function eventually(predicate: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
