// Discovery: expands each input's include globs (Bun.Glob, `**` allowed) into the paths
// they match now, minus the exclude globs. It only lists names; whether a path is a
// readable regular file, and which file it is, is identify's job. The same path matched by
// two globs or two inputs is listed once, for the first input that matched it.

import { statSync } from "node:fs";
import { basename, join, sep } from "node:path";
import type { InputConfig } from "./config.ts";

export interface Candidate {
  path: string; // absolute
  input: number; // index into config.inputs
}

const GLOB_CHARS = /[*?[\]{}]/;

/** Splits "/var/log/app/**\/*.log" into the directory to scan and the pattern below it. */
export function splitGlob(pattern: string): { root: string; rest: string } {
  const parts = pattern.split(sep);
  const firstGlob = parts.findIndex((p) => GLOB_CHARS.test(p));
  if (firstGlob === -1) return { root: pattern, rest: "" };
  const root = parts.slice(0, firstGlob).join(sep) || sep;
  return { root, rest: parts.slice(firstGlob).join(sep) };
}

export class Excluder {
  private readonly globs: { glob: Bun.Glob; baseOnly: boolean }[];
  constructor(patterns: string[]) {
    this.globs = patterns.map((p) => ({ glob: new Bun.Glob(p), baseOnly: !p.includes("/") }));
  }
  excludes(path: string): boolean {
    for (const { glob, baseOnly } of this.globs) {
      if (glob.match(path)) return true;
      if (baseOnly && glob.match(basename(path))) return true;
      // "**/x" should also match an absolute path, whose first segment is empty.
      if (!baseOnly && glob.match(path.slice(1))) return true;
    }
    return false;
  }
}

/**
 * Lists the paths every input matches. A pattern that cannot be scanned (a directory
 * without permission, say) is reported through `onError` and the rest go on.
 */
export async function discover(inputs: InputConfig[], onError: (pattern: string, reason: string) => void = () => {}): Promise<Candidate[]> {
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (const [index, input] of inputs.entries()) {
    const excluder = new Excluder(input.exclude);
    for (const pattern of input.paths) {
      for (const path of await expand(pattern, onError)) {
        if (seen.has(path) || excluder.excludes(path)) continue;
        seen.add(path);
        out.push({ path, input: index });
      }
    }
  }
  return out;
}

async function expand(pattern: string, onError: (pattern: string, reason: string) => void): Promise<string[]> {
  const { root, rest } = splitGlob(pattern);
  if (rest === "") {
    // A plain path: listed if it exists; identify reports what is wrong with it.
    try {
      statSync(root);
      return [root];
    } catch {
      return [];
    }
  }
  const found: string[] = [];
  try {
    const glob = new Bun.Glob(rest);
    for await (const rel of glob.scan({ cwd: root, onlyFiles: true, followSymlinks: true, throwErrorOnBrokenSymlink: false })) {
      found.push(join(root, rel));
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") onError(pattern, (err as Error).message);
  }
  return found.sort();
}
