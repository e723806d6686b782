// Discovery: expands each input's include globs (`**` allowed, matched with Bun.Glob) into
// the paths they match now, minus the exclude globs. It only lists names; whether a path is
// a readable regular file, and which file it is, is identify's job. The same path matched by
// two globs or two inputs is listed once, for the first input that matched it.
// What a wildcard lists: every entry that is not a directory (regular files, symlinks,
// FIFOs, sockets: the ones that cannot be read are then reported by name, where Bun.Glob's
// own scan would hide them). Directories are walked, never listed: a directory is not a log
// file, and `/var/log/*` would otherwise warn about every sub-directory. A plain path (no
// wildcard) is listed whatever it is, so naming a directory or a FIFO is reported. Names
// starting with "." are matched only by a pattern segment that starts with ".".
// Names are listed exactly, also those that are not valid UTF-8 (lib/names.ts: a byte that is
// not UTF-8 is U+DC80 + byte in the path; a `?` or `*` of a glob matches it like a character).

import { lstatSync, statSync } from "node:fs";
import { sep } from "node:path";
import type { InputConfig } from "../config.ts";
import { basename, exactName, join, readEntries, type NamedEntry } from "../names.ts";
import { inodeKey } from "./identify.ts";
import { linkRefusal } from "./links.ts";

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
export async function discover(
  inputs: InputConfig[],
  onError: (pattern: string, reason: string) => void = () => {},
  onRefused: (path: string, reason: string) => void = () => {},
): Promise<Candidate[]> {
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (const [index, input] of inputs.entries()) {
    const excluder = new Excluder(input.exclude);
    for (const pattern of input.paths) {
      for (const path of await expand(pattern, input.follow_symlinks ?? true, onError, onRefused)) {
        if (seen.has(path) || excluder.excludes(path)) continue;
        seen.add(path);
        out.push({ path, input: index });
      }
    }
  }
  return out;
}

async function expand(pattern: string, follow: boolean, onError: (pattern: string, reason: string) => void, onRefused: (path: string, reason: string) => void): Promise<string[]> {
  const { root, rest } = splitGlob(pattern);
  if (rest === "") {
    // A plain path: listed if it exists; identify reports what is wrong with it.
    try {
      statSync(exactName(root));
      return [root];
    } catch {
      return [];
    }
  }
  const glob = new Bun.Glob(rest);
  const segments = rest.split(sep);
  const depth = segments.includes("**") ? Infinity : segments.length;
  const dotOk = segments.some((s) => s.startsWith("."));
  const found: string[] = [];
  const visited = new Set<string>(); // dev:ino of walked directories (symlink loops)
  const walk = (dir: string, rel: string, level: number): void => {
    let entries: NamedEntry[];
    try {
      const st = statSync(exactName(dir));
      const key = inodeKey(st.dev, st.ino);
      if (visited.has(key)) return;
      visited.add(key);
      entries = readEntries(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") onError(pattern, (err as Error).message);
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith(".") && !dotOk) continue;
      const relPath = rel === "" ? e.name : `${rel}${sep}${e.name}`;
      const path = join(dir, e.name);
      let isDir = e.isDirectory();
      if (e.isSymbolicLink()) {
        try {
          isDir = statSync(exactName(path)).isDirectory();
        } catch {
          isDir = false; // dangling: listed, identify finds nothing there
        }
        // A linked directory is walked only when the link may be followed (links.ts); a linked
        // file is listed, and the scan judges it.
        const refused = isDir ? linkRefusal(path, lstatSync(exactName(path)), follow) : null;
        if (refused) {
          onRefused(path, refused);
          continue;
        }
      }
      if (isDir) {
        if (level + 1 < depth) walk(path, relPath, level + 1);
        continue;
      }
      if (glob.match(relPath)) found.push(path);
    }
  };
  walk(root, "", 0);
  return found.sort();
}
