// File lifecycle: what happens to a file once it is followed. Each look at an open file
// notes growth, deletion, and whether the inode still holds the file's bytes; a file is
// closed when idle, finished when deleted and read, let go when renamed out of the globs,
// and its identity carried on in a copy (copies.ts) when its inode loses its bytes.
// In: followed files (files.ts) and what fstat and identify.ts say of them now; out: events,
// identities moved, retired or forgotten, and lines handed to `ship` (an unfinished last line
// that will not be finished).
//
// Invariants:
// - A file identity (its `file` id and checkpoint row) names one sequence of bytes; its
//   offsets only grow. It moves with its inode through renames, and into a copy of its bytes
//   when its inode is truncated, replaced or deleted before it was read to its end (the copy
//   rule in identify.ts: copytruncate loses nothing). New bytes in a truncated inode are a
//   new identity, read from 0. Before every read the file is looked at (fstat, and the
//   fingerprint when size or mtime changed), so bytes of one identity never ship as another's.
// - Bytes are given up only when nothing on disk holds them any more (truncated with no copy,
//   deleted or renamed out of the globs before they were read, close_removed); every such
//   loss is reported through dataLost with its byte range.

import { fstatSync, readlinkSync, type Stats } from "node:fs";
import type { Checkpoint } from "../state/checkpoint.ts";
import type { AgentConfig, InputConfig } from "../config.ts";
import type { Candidate } from "./discover.ts";
import type { Copies, Was } from "./copies.ts";
import type { Descriptors } from "./descriptors.ts";
import { errorText } from "../errors.ts";
import type { AgentEvents } from "../events.ts";
import { caughtUp, existsAs, inputOf, type FileIndex, type Tracked } from "./registry.ts";
import { firstLineKey, headMatches, observeFd, type Observed } from "./identify.ts";
import type { Span } from "./read.ts";
import type { SavedFile } from "../state/store.ts";

export class FileLifecycle {
  constructor(
    private readonly index: FileIndex,
    private readonly checkpoint: Checkpoint,
    private readonly events: AgentEvents,
    private readonly fds: Descriptors,
    private readonly copies: Copies,
    private readonly config: () => AgentConfig,
    private readonly once: boolean,
    /** Hands a span of t's lines to the sender. */
    private readonly ship: (t: Tracked, span: Span) => void,
  ) {}

  /**
   * Looks at an open file: notes growth and deletion. Returns false when the file no longer
   * holds t's bytes (truncated or rewritten), which is then handled.
   */
  look(t: Tracked, now: number): boolean {
    const tail = t.tail!;
    let st: Stats;
    try {
      st = fstatSync(tail.fd);
    } catch (err) {
      this.events.fileUnreadable(t.source.path, errorText(err));
      return true;
    }
    if (!this.stillSame(t, st)) {
      this.replacedUnder(t);
      return false;
    }
    if (st.size > t.size) t.lastGrowth = now;
    if (st.size > t.size || tail.hasNewBytes(st.size)) this.index.ready.add(t.id);
    t.size = st.size;
    t.mtimeMs = st.mtimeMs;
    if (st.nlink === 0 && t.deletedAt === null) {
      t.deletedAt = now;
      this.events.fileRemoved(t.source.path, t.id, st.size - tail.offset);
    }
    return true;
  }

  /** Whether the open file still holds t's bytes; the fingerprint is checked again whenever size or mtime changed. */
  private stillSame(t: Tracked, st: Stats): boolean {
    const tail = t.tail!;
    if (st.size < tail.offset) return false;
    if (st.size === t.size && st.mtimeMs === t.mtimeMs) return true;
    const row = this.checkpoint.row(t.id);
    if (!row) return true;
    let seen: Observed;
    try {
      seen = observeFd(tail.fd, t.source.path, st);
    } catch {
      return true; // cannot tell now; the next look tries again
    }
    if (!headMatches(row, seen.head)) return false;
    this.index.lengthen(row, seen);
    if (t.lineKey === null) this.index.indexLine(t, firstLineKey(seen.head));
    return true;
  }

  /**
   * t's inode no longer holds t's bytes (truncated in place, copytruncate, or rewritten):
   * its bytes now are a new identity read from 0 on the same descriptor, and t's identity
   * carries on in a copy if there is one (else what was not read is reported lost).
   */
  replacedUnder(t: Tracked): void {
    const tail = t.tail!;
    let seen: Observed;
    try {
      seen = observeFd(tail.fd, t.source.path);
    } catch (err) {
      this.events.fileUnreadable(t.source.path, errorText(err));
      this.index.ready.delete(t.id); // not read meanwhile; the next poll looks again
      return;
    }
    this.events.fileTruncated(t.source.path, t.id, tail.offset, seen.size);
    const read = tail.offset;
    this.unindex(t);
    t.tail = null; // the descriptor (and its count) passes to the new identity
    tail.rewind(0);
    const row = this.index.newRow(seen, t.source.path, 0);
    this.checkpoint.register(row);
    const fresh = this.index.newTracked(row.id, t.input, t.source.path, seen, 0, t.matched);
    fresh.tail = tail;
    fresh.deletedAt = t.deletedAt;
    this.index.ready.add(fresh.id);
    if (this.copies.carryOn(wasOf(t), read, t.size, "truncated before it was read to its end, and no copy of it found")) return;
    this.copies.settle(t, read);
    this.index.retire(t.id);
  }

  /** A last line without "\n" that has waited partial_line_timeout ships as it is. */
  flushIdlePartial(t: Tracked, now: number): void {
    if (!t.tail || this.once || t.tail.partialBytes === 0 || !this.partialDue(t, now)) return;
    if (t.tail.hasNewBytes(t.size)) return; // more bytes arrived: read them first
    const span = t.tail.flushPartial();
    if (span) this.ship(t, span);
  }

  partialDue(t: Tracked, now: number): boolean {
    const timeout = this.input(t).partial_line_timeout;
    return timeout > 0 && now - t.lastGrowth >= timeout && (t.tail ? t.tail.partialBytes > 0 : t.partialPending);
  }

  /** Closes a caught-up file that was deleted, renamed out of the globs, or idle too long. */
  closeIfDone(t: Tracked, now: number): void {
    const tail = t.tail!;
    const input = this.input(t);
    if (t.deletedAt !== null) {
      // A deleted file's last line will never be finished: it ships as it is.
      if (!tail.hasNewBytes(t.size) && tail.partialBytes > 0) {
        const span = tail.flushPartial();
        if (span) this.ship(t, span);
      }
      if (t.size <= tail.offset) {
        this.finish(t);
        return;
      }
      if (input.close_removed > 0 && now - t.deletedAt >= input.close_removed) {
        const from = tail.offset;
        const to = t.size;
        if (!this.finish(t)) this.events.dataLost(t.source.path, t.id, from, to, `deleted and not read within close_removed (${input.close_removed} ms)`);
      }
      return;
    }
    if (!caughtUp(t) || input.close_inactive === 0 || now - t.lastGrowth < input.close_inactive) return;
    if (!t.matched) return this.release(t); // renamed out of the globs: its row ages out
    this.fds.close(t);
    this.events.fileClosedInactive(t.source.path, t.id);
  }

  /**
   * A saved identity's inode holds other bytes now (truncated or replaced while logship was
   * stopped, or the inode reused): its unread rest may live on in a copy; the inode's bytes
   * are a new file.
   */
  orphaned(saved: SavedFile, c: Candidate, seen: Observed): void {
    if (saved.path === c.path) this.events.fileTruncated(c.path, saved.id, saved.offset, seen.size);
    const was = { id: saved.id, input: c.input, path: saved.path, dev: saved.dev, ino: saved.ino };
    if (!this.copies.carryOn(was, saved.offset, saved.offset, "")) this.index.forgetRow(saved.id);
  }

  /** A closed file turned out deleted (its inode number now names another file): what was unread is lost. */
  vanished(t: Tracked): void {
    this.drop(t);
    if (!this.copies.carryOn(wasOf(t), t.resumeAt, t.size, "deleted while closed, before it was read")) this.index.retire(t.id);
  }

  /**
   * Closed files that no scan matches any more are let go: no longer wanted (their rows age
   * out), or gone (deleted, or renamed out of the globs) and then carried on by a copy if
   * there is one, else their unread rest is reported lost.
   */
  dropUnmatched(): void {
    for (const t of [...this.index.files.values()]) {
      if (t.matched || t.tail) continue;
      const exists = existsAs(t.source.path, t.dev, t.ino);
      this.drop(t);
      if (exists) continue;
      this.copies.carryOn(wasOf(t), t.resumeAt, t.size, "removed or renamed out of the globs while closed, before it was read");
    }
  }

  /** Stops reading a deleted file for good. A held copy that holds more carries its identity on; else the identity retires. */
  private finish(t: Tracked): boolean {
    const read = t.tail?.offset ?? t.resumeAt;
    this.events.fileFinished(t.source.path, t.id, read);
    this.drop(t);
    const carried = this.copies.settle(t, read);
    if (!carried) this.index.retire(t.id);
    return carried;
  }

  /** A file renamed out of the globs gives its descriptor up to files waiting for one; an unfinished last line goes with it. */
  letGo(t: Tracked): void {
    const tail = t.tail;
    if (tail && tail.partialBytes > 0) {
      this.events.dataLost(t.source.path, t.id, tail.offset, tail.offset + tail.partialBytes, "renamed out of the globs with its last line unfinished, and let go for files waiting for a descriptor");
    }
    this.release(t);
    this.fds.share(false);
  }

  /** Stops following a file that is still on disk but no longer matched; its row stays and ages out. */
  release(t: Tracked): void {
    const now = t.tail ? pathOfFd(t.tail.fd) : null; // where it was renamed to, so expiry sees it still exists
    if (now) this.checkpoint.renamed(t.id, now);
    const read = t.tail?.offset ?? t.resumeAt;
    this.drop(t);
    this.copies.settle(t, read);
  }

  /** Stops reading a file: closes it and removes it from every index (its row is left alone). */
  drop(t: Tracked): void {
    this.fds.close(t);
    this.unindex(t);
  }

  private unindex(t: Tracked): void {
    this.index.unindex(t);
    this.fds.forget(t.id);
  }

  private input(t: Tracked): InputConfig {
    return inputOf(this.config(), t);
  }
}

/** Where t's bytes were: what copies.ts needs to carry its identity on. */
function wasOf(t: Tracked): Was {
  return { id: t.id, input: t.input, path: t.source.path, formerPath: t.formerPath, dev: t.dev, ino: t.ino };
}

/** Where an open descriptor's file is now (Linux /proc); null when unknown or deleted. */
function pathOfFd(fd: number): string | null {
  try {
    const p = readlinkSync(`/proc/self/fd/${fd}`);
    return p.endsWith(" (deleted)") ? null : p;
  } catch {
    return null;
  }
}
