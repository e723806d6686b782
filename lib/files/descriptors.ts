// Descriptors: max_open_files shared among the followed files. Opens and closes each file's
// Tail, queues files that want a descriptor in arrival order, and hands descriptors out as
// they free up. In: followed files (registry.ts) and the config; out: t.tail set or null,
// and what it found while doing so (a file to let go, a file whose bytes were replaced),
// returned to the lifecycle (lifecycle.ts), which decides what follows. It calls nothing back.
//
// Invariants: at most max_open_files descriptors are held, except for a moment while a new
// file is identified, and while a copy takes over from a truncated original with no idle
// descriptor to spare (give() with `keep`). When files wait for a descriptor, a file gives
// its own up after each turn (caught up, or a turn's bytes read) and queues again if it has
// more, so no busy file starves a quiet one. A file with nothing to read never queues (a
// scan or a watch makes it want one when it changes). The files holding a descriptor are
// listed (openFiles), so a poll looks at them only, however many files are followed. A deleted file, or one renamed out of the globs,
// keeps its descriptor (it could not be opened again). A file opened again by its path has
// its identity checked before anything is read from it.

import { closeSync } from "node:fs";
import type { BufferPool, Slabs } from "../memory.ts";
import type { Checkpoint } from "../state/checkpoint.ts";
import type { AgentConfig } from "../config.ts";
import { errorText } from "../errors.ts";
import type { AgentEvents } from "../events.ts";
import { headMatches, openIdentified, type Observed } from "./identify.ts";
import { caughtUp, inputOf, reopenable, type FileIndex, type Tracked } from "./registry.ts";
import { Tail } from "./read.ts";

/** Bytes asked of the OS per read. */
export const READ_BYTES = 1024 * 1024;
/** Bytes a file may read in one turn while other files wait for a descriptor. */
export const TURN_BYTES = READ_BYTES;

/** What sharing descriptors found, for the lifecycle to act on. */
export interface Shared {
  letGo: Tracked[]; // renamed out of the globs and caught up: it cannot be opened again, so it stops being followed
  replaced: Tracked[]; // opened again, its inode no longer holds its bytes (attached: the lifecycle handles it at once)
}

export class Descriptors {
  private openFds = 0;
  private readonly waiting = new Set<string>(); // tracked ids that want a descriptor, in arrival order
  /** The files holding a descriptor now: what a poll looks at (a few hundred, however many files are followed). */
  private readonly holders = new Set<Tracked>();

  constructor(
    private readonly index: FileIndex,
    private readonly checkpoint: Checkpoint,
    private readonly events: AgentEvents,
    private readonly buffers: { pool: BufferPool; slabs: Slabs },
    private readonly config: () => AgentConfig,
  ) {}

  /** Descriptors held now. */
  get open(): number {
    return this.openFds;
  }

  /** Files waiting for a descriptor. */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /** The files that hold a descriptor now (a copy: the caller may close some while walking it). */
  openFiles(): Tracked[] {
    return [...this.holders];
  }

  /** `from`'s descriptor passes to `to` (its inode now holds a new identity's bytes); the count is unchanged. */
  handOver(from: Tracked, to: Tracked): void {
    to.tail = from.tail;
    from.tail = null;
    this.holders.delete(from);
    if (to.tail) this.holders.add(to);
  }

  /** t no longer wants a descriptor (it stops being followed). */
  forget(id: string): void {
    this.waiting.delete(id);
  }

  attach(t: Tracked, fd: number): void {
    const input = inputOf(this.config(), t);
    t.tail = new Tail(fd, t.resumeAt, { maxLineBytes: input.max_line_bytes, longLines: input.long_lines, readBytes: READ_BYTES, ...this.buffers });
    t.turnBytes = 0;
    this.openFds++;
    this.holders.add(t);
    this.waiting.delete(t.id);
    this.index.ready.add(t.id);
  }

  close(t: Tracked): void {
    if (!t.tail) return;
    t.resumeAt = t.tail.offset;
    t.partialPending = t.tail.partialBytes > 0;
    t.tail.close();
    t.tail = null;
    this.openFds--;
    this.holders.delete(t);
    this.index.ready.delete(t.id);
  }

  /**
   * Hands a freshly opened descriptor to t, or queues t for one (then false: share() opens it
   * when one frees up). `keep`: hold it even over the limit, closing an idle file's instead
   * if there is one (a copy carrying an identity on may not be found again by its path).
   * A file with nothing to read (its size is its read position: a resumed file read to its
   * end before a restart) does not queue: it stays closed, like a file closed inactive, until
   * a scan or a watch sees it change. 100,000 such files at a restart would otherwise each be
   * opened, found caught up and closed again, a descriptor at a time.
   */
  give(t: Tracked, fd: number, keep: boolean): boolean {
    if (this.openFds < this.config().max_open_files || keep) {
      if (this.openFds >= this.config().max_open_files) this.closeOneIdle();
      this.attach(t, fd);
      return true;
    }
    closeSync(fd);
    if (!caughtUp(t) || t.partialPending || t.deletedAt !== null || !reopenable(t)) this.waiting.add(t.id);
    return false;
  }

  /** t wants a descriptor (opened by share(), in arrival order). */
  want(t: Tracked): void {
    this.waiting.add(t.id);
  }

  /**
   * When files wait for a descriptor, one that has had its turn gives its own up, and queues
   * again if it has more. Returns true when t must be let go instead: renamed out of the
   * globs and read to its end, it could not be opened again.
   */
  yieldTurn(t: Tracked, more: boolean): boolean {
    if (this.waiting.size === 0) return false;
    if (!reopenable(t)) return !more && t.deletedAt === null && !t.matched;
    this.close(t);
    if (more) this.waiting.add(t.id); // at the back
    return false;
  }

  /**
   * Opens waiting files while descriptors are free. With `closeIdle` (each poll), caught-up
   * files first give theirs up to waiting ones (a pass over all files, so not on every call).
   * Caught-up files that cannot be opened again, and files found replaced as they were
   * opened, are returned for the lifecycle to handle (it shares again afterwards).
   */
  share(closeIdle: boolean): Shared {
    const out: Shared = { letGo: [], replaced: [] };
    if (this.waiting.size === 0) return out;
    const max = this.config().max_open_files;
    if (closeIdle && this.openFds >= max) {
      const idle = [...this.index.files.values()].filter((t) => t.tail && t.deletedAt === null && caughtUp(t)).sort((a, b) => a.lastGrowth - b.lastGrowth);
      for (const t of idle.slice(0, this.waiting.size)) {
        if (reopenable(t)) this.close(t);
        else out.letGo.push(t);
      }
      if (out.letGo.length > 0) return out; // their descriptors free up once they are let go
    }
    // Not a copy of the set: it may hold thousands of files (many new at once) and this runs
    // after every want(). Deleting the entry being visited is safe while iterating a Set.
    for (const id of this.waiting) {
      if (this.openFds >= max) break;
      const t = this.index.files.get(id);
      if (!t) this.waiting.delete(id);
      else if (this.reopen(t) === "replaced") {
        out.replaced.push(t);
        break; // handled before anything else is opened: it changes what is followed
      }
    }
    return out;
  }

  /** Closes the caught-up file that grew least recently, to free a descriptor; false when none is idle. */
  private closeOneIdle(): boolean {
    let idle: Tracked | undefined;
    for (const t of this.index.files.values()) {
      if (t.tail && reopenable(t) && caughtUp(t) && (!idle || t.lastGrowth < idle.lastGrowth)) idle = t;
    }
    if (idle) this.close(idle);
    return idle !== undefined;
  }

  /**
   * Opens a closed file again by its path, if the path still holds the same file, and checks
   * its bytes are still its: "replaced" when they are not (attached all the same, for the
   * lifecycle to read the new bytes from 0 on this descriptor).
   */
  private reopen(t: Tracked): "opened" | "replaced" | "not opened" {
    this.waiting.delete(t.id);
    let opened: { fd: number; seen: Observed };
    try {
      opened = openIdentified(t.source.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.events.fileUnreadable(t.source.path, errorText(err));
      return "not opened";
    }
    if (opened.seen.dev !== t.dev || opened.seen.ino !== t.ino || opened.seen.birthtimeMs !== t.born) {
      closeSync(opened.fd); // the path holds another file now; the next scan finds both
      return "not opened";
    }
    this.attach(t, opened.fd);
    const row = this.checkpoint.row(t.id);
    if (row && (opened.seen.size < t.resumeAt || !headMatches(row, opened.seen.head))) return "replaced";
    if (row) this.index.lengthen(row, opened.seen);
    return "opened";
  }

  /**
   * Checks a closed file's bytes are still its own; when they are not (truncated while
   * closed), it is opened (attached) and true is returned: the lifecycle handles it as
   * replaced at once.
   */
  replacedWhileClosed(t: Tracked): boolean {
    let opened: { fd: number; seen: Observed };
    try {
      opened = openIdentified(t.source.path);
    } catch {
      return false;
    }
    const row = this.checkpoint.row(t.id);
    // A reused inode number (a new birth time) is another file, not this one truncated.
    const same = opened.seen.dev === t.dev && opened.seen.ino === t.ino && opened.seen.birthtimeMs === t.born;
    if (!same || !row || (opened.seen.size >= t.resumeAt && headMatches(row, opened.seen.head))) {
      closeSync(opened.fd);
      return false;
    }
    this.attach(t, opened.fd);
    return true;
  }
}
