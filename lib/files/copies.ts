// Copies: the copy rule of identify.ts applied to the followed files. A file is never skipped
// because its bytes look like another file's: a new file whose bytes are, so far, all a
// followed file's may be a copytruncate copy whose truncation is still to come, so it is
// held back for a short, bounded time (copyGrace: two scan intervals) while that is decided,
// and then shipped from byte 0 under its own identity unless it turned out to carry an
// identity on. An identity carries on in a copy only when its own inode lost its bytes
// (copytruncate, a truncation or rewrite, deletion or a rename out of the globs before it
// was read to its end) and the copy holds its unread tail: it is read on from where the
// identity was, like a rename.
// In: new files (fd + what identify.ts observed) and identities that lost their inode's
// bytes; out: verdicts for the scan, and identities carried on in copies (with the copy's
// descriptor) for the lifecycle (follow.ts) to follow.
//
// Invariants: a held copy ships nothing while held, and is held at most copyGrace. At most
// one copy carries an identity on; any other is a file of its own, shipped from 0 (a
// duplicate, never a skip). A verdict taken while an original changed under the comparison
// (a truncation landing mid-scan) is no verdict: the file stays held and is judged again,
// so the order of a truncation and a scan does not change the outcome. Bytes that no copy
// holds are reported through dataLost with their range.

import { closeSync, constants, fstatSync, openSync, statSync, type Stats } from "node:fs";
import { dirname, exactName, join, readNames } from "../names.ts";
import type { Clock } from "../clock.ts";
import type { Checkpoint } from "../state/checkpoint.ts";
import type { AgentConfig } from "../config.ts";
import type { Candidate } from "./discover.ts";
import type { AgentEvents } from "../events.ts";
import { existsAs, savedMark, type FileIndex, type ReadMark, type Tracked } from "./registry.ts";
import { commonPrefix, COPY_MIN_BYTES, firstLineKey, headMatches, inodeKey, isNamedCopyOf, openIdentified, readAt, readHead, rotationOf, type InodeKey, type Observed } from "./identify.ts";
import type { SavedFile } from "../state/store.ts";

/**
 * A new file held back while the copy rule decides: its bytes are, so far, all a followed
 * file's, or the original changed while they were compared.
 */
export interface HeldCopy {
  of: string; // tracked id of the original
  path: string;
  size: number; // size and mtime when last judged
  mtimeMs: number;
  prefix: number; // bytes verified equal to the original's
  since: number; // clock.now() first held: held at most copyGrace from then
}

/** A file on disk looked at as a possible copy. */
interface Look {
  path: string;
  st: Stats;
  head: Buffer;
}

/** What a new file is with respect to the followed files (the copy rule in identify.ts). */
export type CopyVerdict =
  | { kind: "none" } // a file of its own: shipped from byte 0
  | { kind: "held"; copy: HeldCopy } // maybe a copy whose truncation is to come: not shipped yet (at most copyGrace)
  | { kind: "taken" }; // its original turned out truncated, and it now carries the original's identity

const NOT_A_COPY: CopyVerdict = { kind: "none" };

/**
 * An identity carried on in a copy: its followed file (new, at the copy's path, to read on
 * from where the identity was read to) and the copy's open descriptor, which the lifecycle
 * hands to it (copies.ts opens it to check it, and keeps nothing).
 */
export interface Carried {
  t: Tracked;
  fd: number;
}

/** Where a followed file's bytes were: what carryOn() needs to carry its identity on. */
export function wasOf(t: Tracked): Was {
  return { id: t.id, input: t.input, path: t.source.path, formerPath: t.formerPath, dev: t.dev, ino: t.ino, mark: t.readMark };
}

/** An identity that may carry on in a copy: where its bytes were. */
export interface Was {
  id: string;
  input: number;
  path: string;
  formerPath?: string | null; // its name before its latest rename: a short copy may be named after either
  dev: number;
  ino: number;
  mark?: ReadMark | null; // the last bytes read, when known: a copy must hold them where they were
}

export class Copies {
  readonly held = new Map<InodeKey, HeldCopy>(); // inodeKey → a copy held back
  /** Tests only: runs as a new file is compared with an original, to land a truncation mid-scan. */
  onCompare: ((original: Tracked) => void) | null = null;
  private rowsByDir: Map<string, SavedFile[]> | null = null; // during a scan: remembered rows by directory
  private hints: readonly string[] = []; // during a scan: the matched paths, where copies may be too

  constructor(
    private readonly index: FileIndex,
    private readonly checkpoint: Checkpoint,
    private readonly events: AgentEvents,
    private readonly config: () => AgentConfig,
    private readonly clock: Clock,
  ) {}

  /**
   * Runs a scan's judging of `paths`: while it runs, a copy carrying on a truncated file may be
   * any matched path (a rotation into another directory, say), not only one beside the original.
   */
  duringScan(paths: readonly string[], judge: () => void): void {
    this.hints = paths;
    try {
      judge();
    } finally {
      this.hints = [];
    }
  }

  /** Remembered rows are listed by directory again when next needed (they may have changed). */
  relist(): void {
    this.rowsByDir = null;
  }

  /** Held copies whose inode no scan lists any more are forgotten. */
  forgetAbsent(present: Set<InodeKey>): void {
    for (const key of this.held.keys()) if (!present.has(key)) this.held.delete(key);
  }

  /**
   * The followed files a new file may be a copy of: those whose first line it shares. The
   * lifecycle looks at each before verdict() (one truncated since its last look is handled
   * then, so this file may carry it on).
   */
  originalsOf(seen: Observed): Tracked[] {
    const lineKey = firstLineKey(seen.head);
    const ids = lineKey === null ? [] : this.index.byLine.get(lineKey);
    const out: Tracked[] = [];
    for (const id of ids) {
      const t = this.index.files.get(id);
      if (t) out.push(t);
    }
    return out;
  }

  /**
   * Judges a new file against the followed files whose first line it shares (looked at just
   * before): held while all its bytes are an original's, or while an original changed under
   * the comparison; a file of its own once it holds bytes of its own, or once held for
   * copyGrace. Only a truncation of the original (handled by the lifecycle) makes it a copy.
   */
  verdict(fd: number, seen: Observed): CopyVerdict {
    const self = inodeKey(seen.dev, seen.ino);
    if (this.index.byInode.has(self)) return { kind: "taken" }; // it carries an original on since
    const earlier = this.held.get(self);
    let best: { t: Tracked; prefix: number } | null = null;
    let unsettled: Tracked | null = null;
    for (const t of this.originalsOf(seen)) {
      const shared = this.sharedPrefix(t, fd, seen.size, earlier?.of === t.id ? earlier.prefix : 0);
      if (shared === null) continue;
      if (!shared.settled) unsettled ??= t;
      if (!best || shared.prefix > best.prefix) best = { t, prefix: shared.prefix };
    }
    const of = best && best.prefix >= seen.size ? best.t : unsettled;
    if (!of) return NOT_A_COPY;
    const copy: HeldCopy = { of: of.id, path: seen.path, size: seen.size, mtimeMs: seen.mtimeMs, prefix: best?.prefix ?? 0, since: earlier?.since ?? this.clock.now() };
    return this.releaseHeld(copy) ? NOT_A_COPY : { kind: "held", copy };
  }

  /**
   * A new file that is a copy of a remembered file no longer on disk (deleted, or truncated,
   * while logship was stopped or not looking) carries that identity on from its offset.
   * Only remembered files of its own directory, and a copy named like a rotation of it
   * (app.log → app.log.1), are considered: a new file under the gone file's own name, or any
   * other, is a file of its own however alike they start. Returns what carries it on,
   * "in flight" when such an identity still waits for acks (`fd` is then closed: judged again
   * at the next scan), or null when it is no such copy.
   */
  copyOfGone(c: Candidate, fd: number, seen: Observed): Carried | "in flight" | null {
    const rows = this.rowsIn(dirname(c.path));
    let best: SavedFile | undefined;
    for (const row of rows) {
      if (this.index.files.has(row.id) || !rotationOf(row.path, c.path) || !isNamedCopyOf(row, [row.path], seen.head, c.path, row.offset)) continue;
      if (!holdsMark(c.path, savedMark(row), row.offset)) continue; // alike at the head, but not the bytes that were read
      if (existsAs(row.path, row.dev, row.ino)) continue; // its own file is still there
      if (!best || row.offset > best.offset) best = row;
    }
    if (!best || seen.size < best.offset) return null;
    if (this.checkpoint.waiting(best.id) > 0) {
      closeSync(fd); // what it read is still in flight: judged again at the next scan, with its offset final
      return "in flight";
    }
    const was = { id: best.id, input: c.input, path: best.path };
    const carried = this.continueIn(was, best, { path: c.path, st: fstatSync(fd), head: seen.head }, best.offset);
    if (carried) closeSync(fd);
    return carried;
  }

  /** Remembered rows by directory, built once per scan when first needed. */
  private rowsIn(dir: string): Readonly<SavedFile>[] {
    if (!this.rowsByDir) {
      this.rowsByDir = new Map();
      for (const row of this.checkpoint.rows()) {
        const d = dirname(row.path);
        const list = this.rowsByDir.get(d);
        if (list) list.push(row);
        else this.rowsByDir.set(d, [row]);
      }
    }
    return this.rowsByDir.get(dir) ?? [];
  }

  /** A held file is let go (shipped from 0 as a file of its own) after copyGrace(): a file that merely starts like another must not wait for ever. */
  releaseHeld(h: HeldCopy): boolean {
    return this.clock.now() - h.since >= this.copyGrace();
  }

  /** How long a possible copy is held back: enough scans for copytruncate's truncation to follow. */
  private copyGrace(): number {
    return 2 * this.config().scan_interval;
  }

  /**
   * How many bytes from 0 the file open as `fd` shares with t's file, and whether that answer
   * holds: not when t's file changed since its last look or during the comparison (shrank,
   * or was written to), as when a truncation lands mid-scan. Null when t's file cannot be
   * looked at.
   */
  private sharedPrefix(t: Tracked, fd: number, size: number, verified: number): { prefix: number; settled: boolean } | null {
    let kfd = t.tail?.fd ?? -1;
    let opened = false;
    if (kfd < 0) {
      try {
        const o = openIdentified(t.source.path);
        if (o.seen.dev !== t.dev || o.seen.ino !== t.ino) {
          closeSync(o.fd);
          return null;
        }
        kfd = o.fd;
        opened = true;
      } catch {
        return null;
      }
    }
    try {
      const before = fstatSync(kfd);
      const to = Math.min(size, before.size);
      this.onCompare?.(t);
      const prefix = commonPrefix(fd, kfd, Math.min(verified, to), to);
      const after = fstatSync(kfd);
      const settled = before.size >= t.size && after.size === before.size && after.mtimeMs === before.mtimeMs && before.mtimeMs === t.mtimeMs;
      return { prefix, settled };
    } catch {
      return null;
    } finally {
      if (opened) closeSync(kfd);
    }
  }

  /**
   * An identity whose inode lost its bytes (`read` of them were read; the file held
   * `lastSize` at the last look) carries on in a copy of them, if there is one.
   * Returns what carries it on, or null when nothing does (the caller then retires or
   * forgets the identity).
   */
  carryOn(was: Was, read: number, lastSize: number, why: string): Carried | null {
    const row = this.checkpoint.row(was.id);
    if (!row) return null;
    let copies = this.findCopies(was, row, read);
    if (row.fpLen < COPY_MIN_BYTES && copies.length > 1) copies = []; // rotation-named look-alikes: cannot tell which
    copies.sort((a, b) => b.st.size - a.st.size || b.st.ctimeMs - a.st.ctimeMs);
    const best = copies.find((c) => c.st.size >= read);
    // The others are files of their own (judged as new files: shipped from 0, never skipped).
    for (const [key, h] of this.held) if (h.of === was.id) this.held.delete(key);
    const carried = best ? this.continueIn(was, row, best, read) : null;
    if (best && carried) {
      const end = Math.max(best.st.size, read);
      if (lastSize > end) this.events.dataLost(best.path, was.id, end, lastSize, "written to the original between the copy and the truncation");
      return carried;
    }
    if (why && lastSize > read) this.events.dataLost(was.path, was.id, read, lastSize, why);
    return null;
  }

  /** Possible copies of an identity: copies held back as its, look-alikes in its directory, and (during a scan) among the matched paths. */
  private findCopies(was: Was, known: { fingerprint: string; fpLen: number }, read: number): Look[] {
    const paths = new Set<string>(this.hints);
    for (const h of this.held.values()) if (h.of === was.id) paths.add(h.path);
    const dir = dirname(was.path);
    try {
      for (const name of readNames(dir)) paths.add(join(dir, name));
    } catch {
      // the directory is gone: only held copies elsewhere remain
    }
    const names = was.formerPath ? [was.path, was.formerPath] : [was.path]; // a short copy may be named after either
    const out: Look[] = [];
    const seen = new Set<InodeKey>([inodeKey(was.dev, was.ino)]);
    for (const p of paths) {
      if (!names.some((k) => rotationOf(k, p))) continue; // the copy rule wants a rotation's name: decided before any stat or open
      let st: Stats;
      try {
        st = statSync(exactName(p));
      } catch {
        continue;
      }
      const key = inodeKey(st.dev, st.ino);
      if (!st.isFile() || st.size === 0 || st.size < known.fpLen || seen.has(key)) continue;
      let head: Buffer;
      try {
        head = readHead(p);
      } catch {
        continue;
      }
      if (!isNamedCopyOf(known, names, head, p, read) || this.index.hasIdentity(st, head) || !holdsMark(p, was.mark, read)) continue;
      seen.add(key);
      out.push({ path: p, st, head });
    }
    return out;
  }

  /** Moves an identity into a copy of its bytes, to be read on from `read` (like a rename); null when the copy changed meanwhile. */
  private continueIn(was: { id: string; input: number; path: string; mark?: ReadMark | null }, row: Readonly<SavedFile>, copy: Look, read: number): Carried | null {
    let opened: { fd: number; seen: Observed };
    try {
      opened = openIdentified(copy.path);
    } catch {
      return null;
    }
    const { fd, seen } = opened;
    if (seen.dev !== copy.st.dev || seen.ino !== copy.st.ino || !headMatches(row, seen.head) || seen.size < read) {
      closeSync(fd);
      return null;
    }
    const key = inodeKey(seen.dev, seen.ino);
    this.checkpoint.movedTo(row.id, { dev: seen.dev, ino: seen.ino, path: copy.path, born: seen.birthtimeMs, size: seen.size, mtimeMs: seen.mtimeMs }, this.clock.wall());
    this.index.lengthen(row, seen);
    this.held.delete(key);
    const t = this.index.newTracked(row.id, was.input, copy.path, seen, read, false);
    t.readMark = was.mark ?? null; // the copy holds them where they were
    this.events.fileRenamed(was.path, copy.path, row.id);
    return { t, fd };
  }

  /**
   * An original stops being followed, `read` bytes of it read: its held copies are settled.
   * The largest that holds more than was read carries its identity on; the others are let go,
   * to be judged again as new files. Returns what carries it on, if one does.
   */
  settle(t: Tracked, read: number): Carried | null {
    const mine = [...this.held.entries()].filter(([, h]) => h.of === t.id).sort((a, b) => b[1].size - a[1].size);
    const row = this.checkpoint.row(t.id);
    let carried: Carried | null = null;
    for (const [key, h] of mine) {
      this.held.delete(key);
      let look: Look;
      try {
        const st = statSync(exactName(h.path));
        if (inodeKey(st.dev, st.ino) !== key) continue;
        look = { path: h.path, st, head: readHead(h.path) };
      } catch {
        continue;
      }
      if (!carried && row && look.st.size > read && holdsMark(h.path, t.readMark, read)) carried = this.continueIn(wasOf(t), row, look, read);
    }
    return carried;
  }
}

/**
 * Whether the file at `path` holds, where they were, the last bytes read of the identity it
 * may carry on (its read mark, when the mark ends at `read`): two files that merely share a
 * header do not. Without a mark (nothing read yet, or only known from a saved row) the
 * fingerprint rule alone decides.
 */
function holdsMark(path: string, mark: ReadMark | null | undefined, read: number): boolean {
  if (!mark || mark.end !== read) return true;
  try {
    const fd = openSync(exactName(path), constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const buf = Buffer.allocUnsafe(mark.length);
      return readAt(fd, buf, mark.length, mark.end - mark.length) === mark.length && Bun.hash.crc32(buf) === mark.crc;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}
