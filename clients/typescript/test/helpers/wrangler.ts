/**
 * The real Blaze worker under `wrangler dev` for the end-to-end tests: the
 * repository's shared helper `tests/js/wrangler-dev.mjs` (also used by the
 * Svelte demo's browser test), loaded from the repository root at run time
 * because this file runs compiled from `dist/test-build/`.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type * as Shared from "../../../../tests/js/wrangler-dev.mjs";
import { repoRoot } from "./vectors.js";

const shared = (await import(pathToFileURL(join(repoRoot(), "tests", "js", "wrangler-dev.mjs")).href)) as typeof Shared;

/** See `tests/js/wrangler-dev.mjs`. */
export const WranglerDev = shared.WranglerDev;
/** See `tests/js/wrangler-dev.mjs`. */
export type WranglerDev = Shared.WranglerDev;
