// Following files: the file lifecycle in one place, and the one writer of followed files.
// What a scan decides (scan.ts: new, resumed, matched again, carried on in a copy) is applied
// through named methods; a look at an open file gives a FileChange (look.ts), and apply() is
// the one switch over what can happen to a followed file. Out: Shipments (a file's source and
// a span of its lines) yielded to the agent, which ships each before resuming; events.
//
// Who writes a followed file (Tracked, registry.ts): this module, except the descriptor
// fields (tail, resumeAt, partialPending, turnBytes), which descriptors.ts writes as it opens
// and closes, and lineKey, which the registry keeps with its index. Descriptors and copies
// return what they found (a file to let go or handle as replaced; an identity carried on in
// a copy, with its descriptor); they call nothing back.
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

import type { Stats } from "node:fs";
import type { Clock } from "../clock.ts";
import type { AgentConfig, InputConfig } from "../config.ts";
import { errorText } from "../errors.ts";
import type { AgentEvents, FileAddReason } from "../events.ts";
import type { BufferPool, Slabs } from "../memory.ts";
import type { Checkpoint } from "../state/checkpoint.ts";
import type { SavedFile } from "../state/store.ts";
import { Copies, wasOf, type Carried } from "./copies.ts";
import { Descriptors, TURN_BYTES } from "./descriptors.ts";
import type { Candidate } from "./discover.ts";
import { observeFd, pathOfFd, type Observed } from "./identify.ts";
import { observe, type FileChange } from "./look.ts";
import type { Shipment, Span } from "./read.ts";
import { caughtUp, existsAs, FileIndex, inputOf, partialDue, readMarkOf, savedMark, type Tracked } from "./registry.ts";

export class Follower {
  private readonly index: FileIndex;
  private readonly fds: Descriptors;
  readonly copies: Copies;

  constructor(
    private readonly checkpoint: Checkpoint,
    private readonly events: AgentEvents,
    private readonly config: () => AgentConfig,
    private readonly clock: Clock,
    buffers: { pool: BufferPool; slabs: Slabs },
    private readonly opts: { once: boolean; firstStart: boolean }, // --once; the state was empty at start (start_at applies)
  ) {
    this.index = new FileIndex(checkpoint, config, opts.once, clock);
    this.fds = new Descriptors(this.index, checkpoint, events, buffers, config);
    this.copies = new Copies(this.index, checkpoint, events, config, clock);
  }

  /** The followed files, read-only for everyone else (scan.ts, status, the watched directories, `ready` for the pump). */
  get registry(): FileIndex {
    return this.index;
  }

  /** Files followed, descriptors held, files waiting for one. */
  get counts(): { tracked: number; open: number; waiting: number } {
    return { tracked: this.index.files.size, open: this.fds.open, waiting: this.fds.waitingCount };
  }

  /** After a reload: files no input matches any more stop being read once nothing of them is unread; their offsets stay saved. */
  releaseUnmatched(): void {
    for (const t of [...this.index.files.values()]) if (!t.matched && t.deletedAt === null && caughtUp(t)) this.release(t);
  }

  /** A last look at the open files before offsets are saved at shutdown: truncations handled, short fingerprints lengthened. */
  lookAll(now: number): void {
    for (const t of this.fds.openFiles()) if (t.tail) this.look(t, now);
  }

  /** Closes every descriptor (shutdown). */
  closeAll(): void {
    for (const t of this.index.files.values()) this.fds.close(t);
  }

  // --- what a scan found (scan.ts decides; these apply) --------------------------------

  /** A scan begins: every followed file is unmatched until the scan matches it again. Open files are looked at first. */
  beginScan(now: number): void {
    for (const t of this.fds.openFiles()) if (t.tail) this.look(t, now);
    for (const t of this.index.files.values()) t.matched = false;
  }

  /** Closed files no scan matched are let go (before new inodes are judged: a copy of one of them may carry it on). */
  dropUnmatched(now: number): void {
    for (const t of [...this.index.files.values()]) if (!t.matched && !t.tail) this.apply(t, { kind: "unmatched" }, now);
  }

  /** A possible original of a new file is looked at now: if it was truncated since its last look, it is handled (and the new file may carry it on). */
  lookAtOriginal(t: Tracked, now: number): void {
    if (t.tail) this.look(t, now);
    else if (this.fds.replacedWhileClosed(t)) this.replacedUnder(t);
  }

  /** A followed file was matched again: note a rename, and open it again if it is closed and changed. */
  seenAgain(t: Tracked, c: Candidate, st: Stats): void {
    if (c.path !== t.source.path) {
      // Another name of the same file (a link, a second glob): it is read once, under its first name.
      if (t.matched || existsAs(t.source.path, t.dev, t.ino)) {
        t.matched = true;
        return;
      }
      this.apply(t, { kind: "renamed", to: c.path }, this.clock.now());
    }
    t.matched = true;
    t.input = c.input;
    const topic = this.input(t).topic;
    if (t.source.topic !== topic) t.source = { ...t.source, topic };
    if (t.tail || t.deletedAt !== null) return;
    const changed = st.size !== t.size || st.mtimeMs !== t.mtimeMs;
    if (changed || t.size > t.resumeAt || partialDue(t, this.input(t), this.clock.now())) {
      this.fds.want(t);
      this.share(false);
    }
  }

  /** Starts following a file not followed now, from the offset of its identity `row` (new, or saved and resumed). */
  start(c: Candidate, fd: number, seen: Observed, row: Readonly<SavedFile>, reason: FileAddReason): void {
    const t = this.index.newTracked(row.id, c.input, c.path, seen, row.offset, true);
    t.readMark = savedMark(row); // what was read before a restart, for a copy to prove it holds
    this.events.fileAdded(c.path, t.id, row.offset, reason);
    if (!this.fds.give(t, fd, false)) this.share(false);
  }

  /** A new file carries on a remembered identity whose own file is gone (copies.copyOfGone). */
  carriedOn(carried: Carried): void {
    carried.t.matched = true;
    this.give(carried);
  }

  // --- looks: what happened to an open file ---------------------------------------------

  /** Looks at an open file and applies what changed. Returns false when it no longer holds t's bytes (then handled). */
  private look(t: Tracked, now: number): boolean {
    const change = observe(t, this.checkpoint.row(t.id));
    this.apply(t, change, now);
    return change.kind !== "replaced";
  }

  /** The one place a followed file changes state in answer to what happened to it. */
  private apply(t: Tracked, change: FileChange, now: number): void {
    switch (change.kind) {
      case "unchanged":
      case "grown":
      case "removed": {
        const { st, seen } = change;
        if (seen) this.index.headSeen(t, seen);
        this.checkpoint.looked(t.id, st.birthtimeMs, st.size, st.mtimeMs);
        if (st.size > t.size) t.lastGrowth = now;
        if (st.size > t.size || t.tail!.hasNewBytes(st.size)) this.index.ready.add(t.id);
        t.size = st.size;
        t.mtimeMs = st.mtimeMs;
        if (change.kind === "removed") {
          t.deletedAt = now;
          this.events.fileRemoved(t.source.path, t.id, st.size - t.tail!.offset);
        }
        return;
      }
      case "replaced":
        return this.replacedUnder(t);
      case "unreadable":
        return this.events.fileUnreadable(t.source.path, change.reason);
      case "renamed":
        this.events.fileRenamed(t.source.path, change.to, t.id);
        t.formerPath = t.source.path;
        t.source = { ...t.source, path: change.to };
        this.checkpoint.renamed(t.id, change.to);
        return;
      case "unmatched": {
        // No longer wanted (its row ages out), or gone (deleted, or renamed out of the globs)
        // and then carried on by a copy if there is one, else its unread rest is reported lost.
        const exists = existsAs(t.source.path, t.dev, t.ino);
        this.drop(t);
        if (!exists) this.give(this.copies.carryOn(wasOf(t), t.resumeAt, t.size, "removed or renamed out of the globs while closed, before it was read"));
        return;
      }
      default: {
        const never: never = change;
        throw new Error(`unknown file change ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * t's inode no longer holds t's bytes (truncated in place, copytruncate, or rewritten):
   * its bytes now are a new identity read from 0 on the same descriptor, and t's identity
   * carries on in a copy if there is one (else what was not read is reported lost).
   */
  private replacedUnder(t: Tracked): void {
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
    this.index.unindex(t);
    this.fds.forget(t.id);
    tail.rewind(0);
    const row = this.index.newRow(seen, t.source.path, 0);
    this.checkpoint.register(row);
    const fresh = this.index.newTracked(row.id, t.input, t.source.path, seen, 0, t.matched);
    this.fds.handOver(t, fresh); // the descriptor (and its count) passes to the new identity
    fresh.deletedAt = t.deletedAt;
    this.index.ready.add(fresh.id);
    if (this.give(this.copies.carryOn(wasOf(t), read, t.size, "truncated before it was read to its end, and no copy of it found"))) return;
    this.give(this.copies.settle(t, read));
    this.index.retire(t.id);
  }

  /**
   * A saved identity's inode holds other bytes now (truncated or replaced while logship was
   * stopped, or the inode reused): its unread rest may live on in a copy; the inode's bytes
   * are a new file.
   */
  orphaned(saved: Readonly<SavedFile>, c: Candidate, seen: Observed): void {
    if (saved.path === c.path) this.events.fileTruncated(c.path, saved.id, saved.offset, seen.size);
    const was = { id: saved.id, input: c.input, path: saved.path, dev: saved.dev, ino: saved.ino, mark: savedMark(saved) };
    if (!this.give(this.copies.carryOn(was, saved.offset, saved.offset, ""))) this.index.forgetRow(saved.id);
  }

  /** A closed file turned out deleted (its inode number now names another file): what was unread is lost. */
  vanished(t: Tracked): void {
    this.drop(t);
    if (!this.give(this.copies.carryOn(wasOf(t), t.resumeAt, t.size, "deleted while closed, before it was read"))) this.index.retire(t.id);
  }

  // --- poll and read: the open files, and their lines --------------------------------------

  /**
   * Looks at every open file: growth, deletion, truncation; idle partial lines and the last
   * line of a deleted file are yielded to ship (the caller ships each before resuming, so it
   * is tracked before its file is finished); caught-up files are closed when done.
   */
  *poll(now: number): Generator<Shipment> {
    for (const t of this.fds.openFiles()) {
      if (!t.tail || !this.look(t, now)) continue;
      const idle = this.idlePartial(t, now);
      if (idle) yield idle;
      yield* this.closeIfDone(t, now);
    }
    this.share(true);
  }

  /**
   * One read of a ready file under its topic's room: yields a span of its lines, or nothing
   * (then it is no longer ready; an idle partial line may be yielded). Returns whether it made
   * progress. A turn ends after TURN_BYTES when other files wait for a descriptor.
   */
  *read(id: string, roomFor: (topic: string) => number): Generator<Shipment, boolean> {
    const t = this.index.files.get(id);
    if (!t?.tail || (t.stopAt !== null && t.tail.offset >= t.stopAt)) {
      this.index.ready.delete(id);
      if (t?.tail && this.opts.once) this.doneOnce(t);
      return false;
    }
    const room = roomFor(t.source.topic);
    if (room <= 0) return false; // its topic is failing: it stays ready, read once that topic ships again
    const now = this.clock.now();
    if (!this.look(t, now)) return true; // replaced: the new identity is ready instead
    let span: Span | null;
    try {
      span = t.tail.read(room);
    } catch (err) {
      this.events.fileUnreadable(t.source.path, errorText(err));
      this.index.ready.delete(id);
      return false;
    }
    if (!span) {
      this.index.ready.delete(id);
      const idle = this.opts.once ? this.doneOnce(t) : this.idlePartial(t, now);
      if (idle) yield idle;
      if (!this.opts.once && this.fds.yieldTurn(t, false)) this.letGo(t);
      this.share(false);
      return false;
    }
    t.turnBytes += span.end - span.start;
    yield this.handOut(t, span);
    if (t.turnBytes < TURN_BYTES) return true;
    this.fds.yieldTurn(t, true); // with more to read, it queues again (never let go)
    this.share(false);
    return true;
  }

  /** --once: a file read to its size at start is closed, and its descriptor goes to a waiting file. */
  private doneOnce(t: Tracked): null {
    this.fds.close(t);
    this.share(false);
    return null;
  }

  /** A last line without "\n" that has waited partial_line_timeout ships as it is. */
  private idlePartial(t: Tracked, now: number): Shipment | null {
    if (!t.tail || this.opts.once || t.tail.partialBytes === 0 || !partialDue(t, this.input(t), now)) return null;
    if (t.tail.hasNewBytes(t.size)) return null; // more bytes arrived: read them first
    const span = t.tail.flushPartial();
    return span && this.handOut(t, span);
  }

  /** A span of t's lines leaves: what was read last is marked (how a copy proves it holds it). */
  private handOut(t: Tracked, span: Span): Shipment {
    t.readMark = readMarkOf(span.bytes, span.start, span.end) ?? t.readMark;
    t.lastRead = this.clock.now();
    return { source: t.source, span, input: t.input };
  }

  /** Closes a caught-up file that was deleted, renamed out of the globs, or idle too long. */
  private *closeIfDone(t: Tracked, now: number): Generator<Shipment> {
    const tail = t.tail!;
    const input = this.input(t);
    if (t.deletedAt !== null) {
      // A deleted file's last line will never be finished: it ships as it is.
      if (!tail.hasNewBytes(t.size) && tail.partialBytes > 0) {
        const span = tail.flushPartial();
        if (span) yield this.handOut(t, span);
      }
      if (t.size <= tail.offset) return void this.finish(t);
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

  // --- endings --------------------------------------------------------------------------

  /** Stops reading a deleted file for good. A held copy that holds more carries its identity on; else the identity retires. */
  private finish(t: Tracked): boolean {
    const read = t.tail?.offset ?? t.resumeAt;
    this.events.fileFinished(t.source.path, t.id, read);
    this.drop(t);
    const carried = this.give(this.copies.settle(t, read));
    if (!carried) this.index.retire(t.id);
    return carried;
  }

  /** A file renamed out of the globs gives its descriptor up to files waiting for one; an unfinished last line goes with it. */
  private letGo(t: Tracked): void {
    const tail = t.tail;
    if (tail && tail.partialBytes > 0) {
      this.events.dataLost(t.source.path, t.id, tail.offset, tail.offset + tail.partialBytes, "renamed out of the globs with its last line unfinished, and let go for files waiting for a descriptor");
    }
    this.release(t);
  }

  /** Stops following a file that is still on disk but no longer matched; its row stays and ages out. */
  private release(t: Tracked): void {
    const now = t.tail ? pathOfFd(t.tail.fd) : null; // where it was renamed to, so expiry sees it still exists
    if (now) this.checkpoint.renamed(t.id, now);
    const read = t.tail?.offset ?? t.resumeAt;
    this.drop(t);
    this.give(this.copies.settle(t, read));
  }

  /** Stops reading a file: closes it and removes it from every index and queue (its row is left alone). */
  private drop(t: Tracked): void {
    this.fds.close(t);
    this.index.unindex(t);
    this.fds.forget(t.id);
  }

  /** An identity carried on in a copy gets the copy's descriptor (even over max_open_files: it may not open again). */
  private give(carried: Carried | null): boolean {
    if (!carried) return false;
    this.fds.give(carried.t, carried.fd, true);
    return true;
  }

  /** Opens waiting files while descriptors are free, handling what sharing finds (files to let go, files replaced). */
  private share(closeIdle: boolean): void {
    for (let first = true; ; first = false) {
      const found = this.fds.share(closeIdle && first);
      if (found.letGo.length === 0 && found.replaced.length === 0) return;
      for (const t of found.letGo) this.letGo(t);
      for (const t of found.replaced) this.replacedUnder(t);
    }
  }

  private input(t: Tracked): InputConfig {
    return inputOf(this.config(), t);
  }
}
