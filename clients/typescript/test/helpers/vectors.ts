/** Loading the conformance vectors of `spec/vectors/`. */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The package directory (`clients/typescript`), found from this compiled file. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) || !readFileSync(join(dir, "package.json"), "utf8").includes('"@blaze/client"')) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("package root not found");
    dir = parent;
  }
  return dir;
}

/** The repository root. */
export function repoRoot(): string {
  return resolve(packageRoot(), "..", "..");
}

export interface VectorFile<C> {
  description: string;
  cases: C[];
}

/** Reads `spec/vectors/<name>`. */
export function loadVectors<C = any>(name: string): VectorFile<C> {
  return JSON.parse(readFileSync(join(repoRoot(), "spec", "vectors", name), "utf8")) as VectorFile<C>;
}
