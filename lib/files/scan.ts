// Scanning: what each path the globs matched is. A file already followed (matched again,
// maybe under a new name), a known file back again (resumed at its saved offset), a copy of
// a followed file (held back, or carrying an identity on), a compressed file (skipped), or
// a new file (from 0, or from its last line with start_at: end on a first start).
// In: candidates (discover.ts), the followed files (read-only, registry.ts) and saved rows;
// out: decisions applied through the Follower's named methods (follow.ts, the one writer of
// followed files). It calls the Follower, never the other way round.
//
// A scan judges in three ordered steps: open files are looked at first (a truncation that
// happened before the listing is handled before any new file is judged as its copy); then
// known inodes; closed files no longer matched are let go; new inodes last, so a copy is
// judged against what its original holds now.
// Between scans, files a directory watch saw written are judged one by one (written()); and
// `watchable` says whether the last scan found nothing a watch cannot stand in for, so the
// agent may skip scans while the watches report nothing (agent.ts).

import { closeSync, statSync, type Stats } from "node:fs";
import type { Clock } from "../clock.ts";
import type { AgentConfig } from "../config.ts";
import { errorText } from "../errors.ts";
import { exactName } from "../names.ts";
import type { AgentEvents, FileAddReason } from "../events.ts";
import type { Checkpoint } from "../state/checkpoint.ts";
import type { SavedFile } from "../state/store.ts";
import type { Candidate } from "./discover.ts";
import type { Follower } from "./follow.ts";
import { splitGlob } from "./discover.ts";
import { judgePath } from "./links.ts";
import { compressedFormat, currentFingerprint, inodeKey, lastLineEnd, openIdentified, sameFile, sameLook, type InodeKey, type Observed } from "./identify.ts";

export class Scanner {
  private readonly skipped = new Map<InodeKey, { size: number; mtimeMs: number }>(); // inodeKeys of compressed files, warned once
  private firstScan = true;
  private linked = false; // the scan under way matched a path through a symlink
  private again = false; // the scan under way left a path to be judged again at the next one (unreadable, in flight)
  /**
   * Whether a watch on the directories of the followed files and of the globs sees every
   * change the last scan would find: every glob matches names in its fixed directory only
   * (no wildcard directory, no `**`: no directory a watch would not know of), no path led
   * through a symlink (its target's directory is not watched), no copy is held back and no
   * path was left to be judged again (unreadable, or let go while its lines were in flight).
   */
  watchable = false;

  constructor(
    private readonly files: Follower,
    private readonly checkpoint: Checkpoint,
    private readonly events: AgentEvents,
    private readonly config: () => AgentConfig,
    private readonly clock: Clock,
    private readonly opts: { once: boolean; firstStart: boolean },
  ) {}

  /** One scan over the matched paths, in the order above. */
  scan(candidates: Candidate[]): void {
    const index = this.files.registry;
    const copies = this.files.copies;
    const now = this.clock.now();
    this.files.beginScan(now);
    const present = new Set<InodeKey>();
    const fresh: [Candidate, Stats][] = [];
    const own = ownStateFiles(this.config().state.path);
    // While the scan runs, a copy carrying on a truncated file may be any matched path (a
    // rotation into another directory, say), not only one beside the original.
    copies.duringScan(candidates.map((c) => c.path), () => {
      for (const c of candidates) {
        const st = this.statCandidate(c);
        if (!st) continue;
        if (own.has(inodeKey(st.dev, st.ino))) {
          this.events.fileRefused(c.path, "it is logship's own state file (state.path): never shipped");
          continue;
        }
        present.add(inodeKey(st.dev, st.ino));
        if (index.byInode.has(inodeKey(st.dev, st.ino)) || index.savedRow(st.dev, st.ino)) this.consider(c, st);
        else fresh.push([c, st]);
      }
      this.files.dropUnmatched(now);
      copies.relist();
      for (const [c, st] of fresh) this.consider(c, st);
      copies.relist();
    });
    copies.forgetAbsent(present);
    for (const key of this.skipped.keys()) if (!present.has(key)) this.skipped.delete(key);
    index.markGone();
    this.firstScan = false;
    index.expireState();
    this.watchable = !this.linked && !this.again && copies.held.size === 0 && this.config().inputs.every((i) => i.paths.every((p) => !splitGlob(p).rest.includes("/")));
    this.linked = false;
    this.again = false;
  }

  /**
   * Files a directory watch saw written since (watch.ts): a followed file at that very path,
   * closed (inactive, or waiting for a descriptor), is judged as a scan would judge it
   * (seenAgain: it wants a descriptor when it changed). Open files are the poll's; a name that
   * is not followed is the next scan's (a new name comes with a rename event, which scans).
   */
  written(paths: readonly string[]): void {
    const index = this.files.registry;
    for (const path of paths) {
      let st: Stats;
      try {
        st = statSync(exactName(path));
      } catch {
        continue; // gone: its rename event scans
      }
      const t = index.atInode(inodeKey(st.dev, st.ino));
      if (!t || t.tail || !t.matched || t.deletedAt !== null || t.source.path !== path || st.birthtimeMs !== t.born) continue;
      this.files.seenAgain(t, { path, input: t.input }, st);
    }
  }

  /** What a matched path leads to, when logship may read it (links.ts: symlinks, /proc, /sys, /dev). */
  private statCandidate(c: Candidate): Stats | null {
    try {
      const judged = judgePath(c.path, this.config().inputs[c.input]?.follow_symlinks ?? true);
      if ("st" in judged) {
        if (judged.linked) this.linked = true;
        return judged.st;
      }
      this.events.fileRefused(c.path, judged.refused);
      return null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        this.events.fileUnreadable(c.path, errorText(err));
        this.again = true;
      }
      return null;
    }
  }

  /** Decides what a matched path is: a file already followed, a known file back again, a copy, or new. */
  private consider(c: Candidate, st: Stats): void {
    const index = this.files.registry;
    const copies = this.files.copies;
    const key = inodeKey(st.dev, st.ino);
    const known = index.atInode(key);
    if (known && st.birthtimeMs === known.born) return this.files.seenAgain(known, c, st);
    if (known) this.files.vanished(known); // deleted while closed, and its inode number reused by the file here now
    if (this.opts.once && !this.firstScan) return;
    if (sameLook(this.skipped.get(key), st)) return;
    const held = copies.held.get(key);
    if (held && sameLook(held, st) && !copies.releaseHeld(held)) return;
    let opened: { fd: number; seen: Observed };
    try {
      opened = openIdentified(c.path, st); // st: this scan's look at the path, moments ago
    } catch (err) {
      this.events.fileUnreadable(c.path, errorText(err));
      this.again = true;
      return;
    }
    const { fd, seen } = opened;
    const format = compressedFormat(seen);
    if (format) {
      closeSync(fd);
      if (!this.skipped.has(key)) this.events.fileSkippedCompressed(c.path, format);
      this.skipped.set(key, { size: seen.size, mtimeMs: seen.mtimeMs });
      return;
    }
    this.skipped.delete(key);
    const saved = index.savedRow(seen.dev, seen.ino);
    if (saved && this.checkpoint.waiting(saved.id) > 0) {
      // Let go (or moved into a copy) while lines it sent still wait for Kafka: its offset is
      // not final yet. Judged again at the next scan, so it never resumes behind them.
      closeSync(fd);
      this.again = true;
      return;
    }
    if (saved && sameFile(saved, seen)) return this.follow(c, fd, seen, { saved });
    if (saved) this.files.orphaned(saved, c, seen); // then judged like any new file
    // Its possible originals are looked at first: one truncated since its last look is
    // handled now, so this file may carry it on.
    const now = this.clock.now();
    for (const t of copies.originalsOf(seen)) this.files.lookAtOriginal(t, now);
    const verdict = copies.verdict(fd, seen);
    switch (verdict.kind) {
      case "none": {
        copies.held.delete(key);
        const gone = copies.copyOfGone(c, fd, seen);
        if (gone === "in flight") return void (this.again = true);
        if (gone) return this.files.carriedOn(gone);
        return this.follow(c, fd, seen, {});
      }
      case "held":
        closeSync(fd);
        copies.held.set(key, verdict.copy);
        return;
      case "taken": {
        closeSync(fd);
        const taker = index.atInode(key);
        if (taker) this.files.seenAgain(taker, c, st);
        return;
      }
      default: {
        const never: never = verdict;
        throw new Error(`unknown copy verdict ${JSON.stringify(never)}`);
      }
    }
  }

  /** Starts following a file not followed now: resume its saved offset if it is a known file. */
  private follow(c: Candidate, fd: number, seen: Observed, how: { saved?: Readonly<SavedFile> }): void {
    const input = this.config().inputs[c.input]!;
    let row = how.saved;
    let reason: FileAddReason;
    if (row) {
      // sameFile() held: the head still starts with the fingerprinted bytes, so lengthening is safe.
      this.checkpoint.lengthened(row.id, currentFingerprint(seen));
      this.checkpoint.seenAt(row.id, c.path, this.clock.wall());
      this.checkpoint.looked(row.id, seen.birthtimeMs, seen.size, seen.mtimeMs);
      reason = "resumed";
    } else {
      // start_at applies on a first start only: on a later one, a file logship has never seen
      // was created (or rotated in) while it was stopped, and its lines are new.
      const startAtEnd = input.start_at === "end" && this.firstScan && this.opts.firstStart;
      row = this.files.registry.newRow(seen, c.path, startAtEnd ? lastLineEnd(fd, seen.size) : 0);
      this.checkpoint.register(row);
      reason = startAtEnd ? "start_at_end" : "new";
    }
    this.files.start(c, fd, seen, row, reason);
  }
}

/** The inodes of logship's own state files (the database, its WAL and shared memory, the lock): never shipped, whatever the globs. */
function ownStateFiles(statePath: string): Set<InodeKey> {
  const out = new Set<InodeKey>();
  for (const p of [statePath, `${statePath}-wal`, `${statePath}-shm`, `${statePath}.lock`]) {
    try {
      const st = statSync(p);
      out.add(inodeKey(st.dev, st.ino));
    } catch {
      // not there (yet)
    }
  }
  return out;
}
