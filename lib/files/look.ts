// Looking at an open followed file: what fstat, and the fingerprint when size or mtime
// changed, say happened to it since the last look, as a FileChange (follow.ts applies it).
// Reads the file; changes nothing.

import { fstatSync, type Stats } from "node:fs";
import { errorText } from "../errors.ts";
import { headMatches, observeFd, readAt, type Observed } from "./identify.ts";
import type { Tracked } from "./registry.ts";

/** What can happen to a followed file, as a look (fstat, fingerprint) or a scan finds it. */
export type FileChange =
  | { kind: "unchanged"; st: Stats; seen?: Observed } // `seen`: its head was read again (to lengthen a short fingerprint)
  | { kind: "grown"; st: Stats; seen?: Observed } // bytes not read yet
  | { kind: "removed"; st: Stats; seen?: Observed } // its last name is gone (noticed now); it is read to its end
  | { kind: "replaced" } // its inode no longer holds its bytes (truncated, rewritten)
  | { kind: "unreadable"; reason: string }
  | { kind: "renamed"; to: string } // a scan matched it under another name
  | { kind: "unmatched" }; // closed, and no scan matches it any more

/**
 * What an open file's descriptor says now, against what t was at the last look and its saved
 * fingerprint (`known`, when it has a row). Its bytes are still t's unless it shrank below
 * what was read, or (checked again whenever size or mtime changed) its head no longer
 * matches the fingerprint.
 */
export function observe(t: Tracked, known: { fingerprint: string; fpLen: number } | undefined): FileChange {
  const tail = t.tail!;
  let st: Stats;
  try {
    st = fstatSync(tail.fd);
  } catch (err) {
    return { kind: "unreadable", reason: errorText(err) };
  }
  if (st.size < tail.offset && !sizeUnderstated(tail.fd, tail.offset)) return { kind: "replaced" };
  let seen: Observed | undefined;
  if (known && (st.size !== t.size || st.mtimeMs !== t.mtimeMs)) {
    try {
      seen = observeFd(tail.fd, t.source.path, st);
    } catch {
      // cannot tell now; the next look tries again
    }
    if (seen && !headMatches(known, seen.head)) return { kind: "replaced" };
  }
  if (st.nlink === 0 && t.deletedAt === null) return { kind: "removed", st, seen };
  if (st.size > t.size || tail.hasNewBytes(st.size)) return { kind: "grown", st, seen };
  return { kind: "unchanged", st, seen };
}

/**
 * A file whose size is below what was read from it, yet still yields the byte before `offset`,
 * did not shrink: it reports a size that is not its length (a FUSE file, a pseudo file that a
 * type check missed: size 0, bytes made up on each read). Taking it as truncated would read it
 * again from 0 at every look, without end; it is kept as it is instead, and read further only
 * when its size passes what was read.
 */
function sizeUnderstated(fd: number, offset: number): boolean {
  try {
    return readAt(fd, Buffer.allocUnsafe(1), 1, offset - 1) === 1;
  } catch {
    return false;
  }
}
