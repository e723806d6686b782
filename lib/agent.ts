// The agent: wires the steps together and is the single owner of every long-lived resource
// (the state store, the Kafka publisher, open file descriptors, timers). Each tick is a
// named step:
//   scan()   expand the globs, identify new paths, notice renames and copies  (every scan_interval)
//   poll()   look at open files: growth, truncation, deletion, idleness       (every poll_interval)
//            (inotify on the watched directories triggers poll() and scan() sooner; the
//            intervals remain the fallback for whatever a watch misses)
//   pump()   read ready files round-robin while in-flight bytes are under the cap
//   flush()  write acknowledged offsets to the store                          (every state.flush_interval)
// Reading pauses whenever max_inflight_bytes are read but not acknowledged: the log file
// itself is the buffer while Kafka is slow or down.
//
// File lifecycle, the invariants:
// - A file identity (its `file` id and checkpoint row) names one sequence of bytes; its
//   offsets only grow. It moves with its inode through renames, and into a copy of its bytes
//   when its inode is truncated, replaced or deleted before it was read to its end (the copy
//   rule in identify.ts: copytruncate loses nothing). New bytes in a truncated inode are a
//   new identity, read from 0. Before every read the file is looked at (fstat, and the
//   fingerprint when size or mtime changed), so bytes of one identity never ship as another's.
// - Bytes are given up only when nothing on disk holds them any more (truncated with no copy,
//   deleted or renamed out of the globs before they were read, close_removed); every such
//   loss is reported through dataLost with its byte range.
// - At most max_open_files descriptors are held, except for a moment while a new file is
//   identified, and while a copy takes over from a truncated original with no idle
//   descriptor to spare. When files wait for a descriptor, a file gives its own up after
//   each turn (caught up, or TURN_BYTES read) and queues again if it has more, so no busy
//   file starves a quiet one. A deleted file, or one renamed out of the globs, keeps its
//   descriptor (it could not be opened again); close_removed bounds how long.
// - A closed file (idle, or waiting its turn) is opened again when a scan sees it changed;
//   its identity is checked before anything is read from it.

import { closeSync, fstatSync, readdirSync, readlinkSync, readSync, statSync, type Stats } from "node:fs";
import { dirname, join } from "node:path";
import { BufferPool, lease } from "./bufferPool.ts";
import { Checkpoint } from "./checkpoint.ts";
import type { AgentConfig, InputConfig } from "./config.ts";
import { discover, splitGlob, type Candidate } from "./discover.ts";
import { errorText } from "./errors.ts";
import { LogEvents, type AgentEvents, type FileAddReason } from "./events.ts";
import {
  commonPrefix, compressedFormat, COPY_MIN_BYTES, currentFingerprint, fingerprint, FINGERPRINT_BYTES, firstLineKey, headMatches, inodeKey,
  isNamedCopyOf, lineStart, observeFd, openIdentified, readHead, sameFile, type Observed,
} from "./identify.ts";
import { pack, type Source } from "./pack.ts";
import { KafkaPublisher, type Publisher } from "./publish.ts";
import { Tail, type Span } from "./read.ts";
import { Sender } from "./sender.ts";
import { openStore, type FileState, type Store } from "./store.ts";
import { DirWatcher } from "./watch.ts";

export interface AgentOptions {
  once: boolean; // ship what the files hold now, then finish
}

export interface AgentDeps {
  publisher?: Publisher;
  events?: AgentEvents;
  store?: Store;
}

/** Bytes asked of the OS per read. */
const READ_BYTES = 1024 * 1024;
/** Bytes a file may read in one turn while other files wait for a descriptor. */
const TURN_BYTES = READ_BYTES;
/** Free read buffers kept for reuse. */
const READ_POOL_BYTES = 8 * READ_BYTES;
/** Largest total of one send across partitions. */
const MAX_SEND_BYTES = 8 * 1024 * 1024;
/** How often gone files' state is checked against state.ttl. */
const EXPIRE_EVERY_MS = 3_600_000;

/** One file being followed. Its durable state (id, offset, fingerprint) is its checkpoint row. */
interface Tracked {
  id: string;
  input: number;
  source: Source;
  dev: number;
  ino: number;
  born: number; // birth time (ms; 0 where the file system does not keep it): tells a reused inode from the file
  tail: Tail | null; // null while closed (inactive, or waiting for a descriptor)
  resumeAt: number; // read position kept while the tail is closed
  size: number; // size at the last look
  mtimeMs: number; // mtime at the last look
  lastGrowth: number; // ms epoch new bytes last appeared
  matched: boolean; // found by the latest scan
  deletedAt: number | null; // ms epoch its last link was removed
  stopAt: number | null; // --once: read up to this size, then the file is done
  lineKey: string | null; // firstLineKey of its bytes: how a copy of it finds it
  turnBytes: number; // bytes read since it got its descriptor
  partialPending: boolean; // closed with an unfinished last line seen
}

/**
 * A new file whose bytes are, so far, all a followed file's (a copy, by the copy rule): it is
 * held back, not shipped, while that stays true.
 */
interface HeldCopy {
  of: string; // tracked id of the original
  path: string;
  size: number; // size and mtime when last judged
  mtimeMs: number;
  prefix: number; // bytes verified equal to the original's
  since: number; // ms epoch first held
}

/** A file on disk looked at as a possible copy. */
interface Look {
  path: string;
  st: Stats;
  head: Buffer;
}

/** What a new file is with respect to the followed files (the copy rule in identify.ts). */
type CopyVerdict =
  | { kind: "none" } // not a copy: a file of its own from the start
  | { kind: "held"; copy: HeldCopy } // holds only bytes a followed file holds: not shipped (yet)
  | { kind: "taken" } // its original turned out truncated, and it now carries the original's identity
  | { kind: "own"; from: number }; // a held copy that grew bytes of its own: shipped from there

const NOT_A_COPY: CopyVerdict = { kind: "none" };

export class Agent {
  readonly events: AgentEvents;
  private readonly checkpoint = new Checkpoint();
  /** Read buffers, reused once Kafka acknowledged every chunk cut from them. */
  private readonly buffers = new BufferPool(READ_POOL_BYTES);
  private readonly sender: Sender;
  private readonly files = new Map<string, Tracked>();
  private readonly byInode = new Map<string, string>(); // inodeKey → tracked id
  private readonly byLine = new Map<string, Set<string>>(); // firstLineKey → tracked ids
  private readonly moved = new Map<string, string>(); // inodeKey → id of a row that moved into this inode (a copy)
  private readonly ready = new Set<string>(); // tracked ids that may have bytes to read
  private readonly waitingForFd = new Set<string>(); // tracked ids that want a descriptor, in arrival order
  private readonly retiring = new Set<string>(); // ids to forget once their chunks are acked
  private readonly skipped = new Map<string, { size: number; mtimeMs: number }>(); // inodeKeys of compressed files, warned once
  private readonly held = new Map<string, HeldCopy>(); // inodeKey → a copy held back
  private rowsByDir: Map<string, FileState[]> | null = null; // during a scan: remembered rows by directory
  private copyHints: readonly string[] = []; // during a scan: the matched paths, where copies may be too
  private present = new Set<string>(); // inodeKeys the latest scan listed
  private readonly timers: Timer[] = [];
  /** inotify on the directories of followed files and of the globs: look (or scan) now, not at the next tick. */
  private readonly watcher = new DirWatcher({ changed: () => this.poll(), renamed: () => void this.scan().catch(() => {}) });
  private openFds = 0;
  private firstScan = true;
  private scanning: Promise<void> | null = null;
  private pumping = false;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private lastExpiry = 0;
  private saveFailingSince = 0; // ms epoch offsets first failed to save; 0 while they save
  private idSeq = 0;
  private finishOnce: (() => void) | null = null;
  /** --once: resolves when everything matched at start is acknowledged and saved. */
  readonly finished: Promise<void>;

  private constructor(
    private config: AgentConfig,
    private readonly opts: AgentOptions,
    private publisher: Publisher,
    private readonly store: Store,
    events: AgentEvents,
  ) {
    this.events = events;
    this.sender = new Sender(publisher, this.checkpoint, events, this.senderOptions(config));
    this.sender.onAcked = () => this.onAcked();
    this.finished = new Promise((r) => (this.finishOnce = r));
  }

  /** Opens the store and the Kafka client, loads saved offsets and starts following files. */
  static async start(config: AgentConfig, opts: AgentOptions, deps: AgentDeps = {}): Promise<Agent> {
    const events = deps.events ?? new LogEvents();
    const store = deps.store ?? openStore(config.state.path);
    const publisher = deps.publisher ?? new KafkaPublisher(config.kafka);
    const agent = new Agent(config, opts, publisher, store, events);
    agent.checkpoint.load(store.all());
    events.started({ inputs: config.inputs.length, brokers: config.kafka.brokers, state: config.state.path, once: opts.once });
    agent.sender.start();
    await agent.scan();
    agent.startTimers();
    agent.checkDone();
    return agent;
  }

  /** Stops reading, drains what was read until `deadline` (ms epoch), saves offsets and releases everything. */
  stop(deadline: number): Promise<void> {
    this.stopped ??= this.shutdown(deadline);
    return this.stopped;
  }

  /** Exits without draining (second signal): saves what is acknowledged, nothing more. */
  stopNow(): void {
    this.stopping = true;
    this.watcher.close();
    this.sender.abort();
    this.saveOffsets();
  }

  /** Applies a new, already validated config: inputs, intervals and Kafka settings. */
  async reload(next: AgentConfig): Promise<void> {
    const kafkaChanged = JSON.stringify(next.kafka) !== JSON.stringify(this.config.kafka);
    this.config = next;
    this.sender.configure(this.senderOptions(next));
    if (kafkaChanged) {
      const fresh = new KafkaPublisher(next.kafka);
      const old = this.sender.usePublisher(fresh);
      this.publisher = fresh;
      void old.close(); // a send still on it fails and is retried on the new one
    }
    this.stopTimers();
    this.startTimers();
    await this.scan();
    // Files no input matches any more stop being read once nothing of them is unread; their offsets stay saved.
    for (const t of [...this.files.values()]) if (!t.matched && t.deletedAt === null && this.caughtUp(t)) this.release(t);
    this.events.configReloaded(next.file);
  }

  /** What `check` and tests want to know about the followed files. */
  status(): { path: string; file: string; offset: number; size: number; open: boolean }[] {
    return [...this.files.values()].map((t) => ({ path: t.source.path, file: t.id, offset: this.checkpoint.offsetOf(t.id) ?? 0, size: t.size, open: t.tail !== null }));
  }

  get inflightBytes(): number {
    return this.sender.inflightBytes;
  }

  // --- scan: globs → identities ---------------------------------------------------------

  private scan(): Promise<void> {
    this.scanning ??= this.scanOnce().finally(() => (this.scanning = null));
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    const candidates = await discover(this.config.inputs, (pattern, reason) => this.events.fileUnreadable(pattern, reason));
    if (this.stopping) return;
    // While the scan runs, a copy carrying on a truncated file may be any matched path (a
    // rotation into another directory, say), not only one beside the original.
    this.copyHints = candidates.map((c) => c.path);
    try {
      this.scanCandidates(candidates);
    } finally {
      this.copyHints = [];
    }
    this.forgetAbsent(this.present);
    this.markGone();
    this.firstScan = false;
    this.expireState();
    this.watchDirs();
    this.pump();
  }

  /** Watches the directories of the followed files and the fixed part of every glob. */
  private watchDirs(): void {
    if (this.opts.once || this.stopping) return;
    const dirs = new Set<string>();
    for (const t of this.files.values()) dirs.add(dirname(t.source.path));
    for (const input of this.config.inputs) {
      for (const pattern of input.paths) {
        const { root, rest } = splitGlob(pattern);
        dirs.add(rest === "" ? dirname(root) : root);
      }
    }
    this.watcher.set(dirs);
  }

  /** The steps of a scan over the listed paths: look, known inodes, let go, new inodes. */
  private scanCandidates(candidates: Candidate[]): void {
    // Look at the open files first: a truncation that happened before the listing is handled
    // (and a short first line indexed) before any new file is judged as a possible copy.
    const now = Date.now();
    for (const t of [...this.files.values()]) if (t.tail) this.look(t, now);
    for (const t of this.files.values()) t.matched = false;
    const present = (this.present = new Set<string>());
    const fresh: [Candidate, Stats][] = [];
    for (const c of candidates) {
      const st = this.statCandidate(c.path);
      if (!st) continue;
      present.add(inodeKey(st.dev, st.ino));
      if (this.byInode.has(inodeKey(st.dev, st.ino)) || this.savedRow(st.dev, st.ino)) this.consider(c, st);
      else fresh.push([c, st]);
    }
    // Closed files no longer matched are let go before new inodes are judged: a copy of one
    // of them may carry it on.
    this.dropUnmatched();
    // New inodes last: by then every original is followed and its truncation noticed, so a
    // copy of it is judged against what it holds now.
    this.rowsByDir = null;
    for (const [c, st] of fresh) this.consider(c, st);
    this.rowsByDir = null;
  }

  private statCandidate(path: string): Stats | null {
    try {
      return statSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.events.fileUnreadable(path, errorText(err));
      return null;
    }
  }

  /** Decides what a matched path is: a file already followed, a known file back again, a copy, or new. */
  private consider(c: Candidate, st: Stats): void {
    const key = inodeKey(st.dev, st.ino);
    const known = this.byInode.get(key);
    const t = known === undefined ? undefined : this.files.get(known);
    if (t && st.birthtimeMs === t.born) return this.seenAgain(t, c, st);
    if (t) this.vanished(t); // deleted while closed, and its inode number reused by the file here now
    if (this.opts.once && !this.firstScan) return;
    if (sameLook(this.skipped.get(key), st)) return;
    const held = this.held.get(key);
    if (held && sameLook(held, st) && !this.releaseHeld(held)) return;
    let opened: { fd: number; seen: Observed };
    try {
      opened = openIdentified(c.path);
    } catch (err) {
      this.events.fileUnreadable(c.path, errorText(err));
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
    const saved = this.savedRow(seen.dev, seen.ino);
    if (saved && sameFile(saved, seen)) return this.follow(c, fd, seen, { saved });
    if (saved) this.orphaned(saved, c, seen); // then judged like any new file
    const verdict = this.copyVerdict(fd, seen);
    switch (verdict.kind) {
      case "none":
        this.held.delete(key);
        if (this.copyOfGone(c, fd, seen)) return;
        return this.follow(c, fd, seen, {});
      case "own":
        this.held.delete(key);
        return this.follow(c, fd, seen, { from: verdict.from });
      case "held":
        closeSync(fd);
        this.held.set(key, verdict.copy);
        return;
      case "taken": {
        closeSync(fd);
        const taker = this.files.get(this.byInode.get(key) ?? "");
        if (taker) this.seenAgain(taker, c, st);
        return;
      }
      default: {
        const never: never = verdict;
        throw new Error(`unknown copy verdict ${JSON.stringify(never)}`);
      }
    }
  }

  /** A followed file was matched again: note a rename, and open it again if it is closed and changed. */
  private seenAgain(t: Tracked, c: Candidate, st: Stats): void {
    if (c.path !== t.source.path) {
      // Another name of the same file (a link, a second glob): it is read once, under its first name.
      if (t.matched || this.existsAs(t.source.path, t.dev, t.ino)) {
        t.matched = true;
        return;
      }
      this.events.fileRenamed(t.source.path, c.path, t.id);
      t.source = { ...t.source, path: c.path };
      const row = this.checkpoint.row(t.id);
      if (row) {
        row.path = c.path;
        this.checkpoint.touch(t.id);
      }
    }
    t.matched = true;
    t.input = c.input;
    const topic = this.input(t).topic;
    if (t.source.topic !== topic) t.source = { ...t.source, topic };
    if (t.tail || t.deletedAt !== null) return;
    const changed = st.size !== t.size || st.mtimeMs !== t.mtimeMs;
    if (changed || t.size > t.resumeAt || this.partialDue(t, Date.now())) this.wantFd(t);
  }

  /** Starts following a file not followed now: resume its saved offset if it is a known file. */
  private follow(c: Candidate, fd: number, seen: Observed, how: { saved?: FileState; from?: number }): void {
    const input = this.config.inputs[c.input]!;
    let row = how.saved;
    let reason: FileAddReason;
    if (row) {
      // sameFile() held: the head still starts with the fingerprinted bytes, so lengthening is safe.
      Object.assign(row, currentFingerprint(seen), { path: c.path, gone_since: null, seen_at: Date.now() });
      this.checkpoint.touch(row.id);
      reason = "resumed";
    } else {
      const startAtEnd = how.from === undefined && input.start_at === "end" && this.firstScan;
      row = this.newRow(seen, c.path, how.from ?? (startAtEnd ? lastLineEnd(fd, seen.size) : 0));
      this.checkpoint.register(row);
      reason = startAtEnd ? "start_at_end" : "new";
    }
    const t = this.newTracked(row.id, c.input, c.path, seen, row.offset, true);
    this.events.fileAdded(c.path, t.id, row.offset, reason);
    this.giveFd(t, fd, false);
  }

  /**
   * A saved identity's inode holds other bytes now (truncated or replaced while logship was
   * stopped, or the inode reused): its unread rest may live on in a copy; the inode's bytes
   * are a new file.
   */
  private orphaned(saved: FileState, c: Candidate, seen: Observed): void {
    if (saved.path === c.path) this.events.fileTruncated(c.path, saved.id, saved.offset, seen.size);
    const was = { id: saved.id, input: c.input, path: saved.path, dev: saved.dev, ino: saved.ino };
    if (!this.carryOn(was, saved.offset, saved.offset, "")) this.forgetRow(saved.id);
  }

  /** A closed file turned out deleted (its inode number now names another file): what was unread is lost. */
  private vanished(t: Tracked): void {
    this.dropTracked(t);
    const was = { id: t.id, input: t.input, path: t.source.path, dev: t.dev, ino: t.ino };
    if (!this.carryOn(was, t.resumeAt, t.size, "deleted while closed, before it was read")) this.retire(t.id);
  }

  /** Files no scan matched any more keep being read; their state rows start ageing. */
  private markGone(): void {
    const now = Date.now();
    for (const row of this.checkpoint.rows()) {
      if (this.files.has(row.id) || row.gone_since !== null) continue;
      row.gone_since = now;
      this.checkpoint.touch(row.id);
    }
  }

  /**
   * Closed files that no scan matches any more are let go: no longer wanted (their rows age
   * out), or gone (deleted, or renamed out of the globs) and then carried on by a copy if
   * there is one, else their unread rest is reported lost.
   */
  private dropUnmatched(): void {
    for (const t of [...this.files.values()]) {
      if (t.matched || t.tail) continue;
      const exists = this.existsAs(t.source.path, t.dev, t.ino);
      this.dropTracked(t);
      if (exists) continue;
      const was = { id: t.id, input: t.input, path: t.source.path, dev: t.dev, ino: t.ino };
      this.carryOn(was, t.resumeAt, t.size, "removed or renamed out of the globs while closed, before it was read");
    }
  }

  /** Held copies and skipped files whose inode no scan lists any more are forgotten. */
  private forgetAbsent(present: Set<string>): void {
    for (const key of this.held.keys()) if (!present.has(key)) this.held.delete(key);
    for (const key of this.skipped.keys()) if (!present.has(key)) this.skipped.delete(key);
  }

  /** Deletes state of files gone longer than state.ttl, unless the file is still on disk. */
  private expireState(): void {
    const now = Date.now();
    if (now - this.lastExpiry < Math.min(EXPIRE_EVERY_MS, this.config.state.ttl)) return;
    this.lastExpiry = now;
    for (const row of [...this.checkpoint.rows()]) {
      if (row.gone_since === null || now - row.gone_since < this.config.state.ttl || this.files.has(row.id)) continue;
      if (this.existsAs(row.path, row.dev, row.ino)) {
        row.gone_since = now;
        this.checkpoint.touch(row.id);
      } else if (this.checkpoint.waiting(row.id) === 0) {
        this.forgetRow(row.id);
      }
    }
  }

  // --- copies (the copy rule in identify.ts) -------------------------------------------

  /** Judges a new file against the followed files whose first line it shares. */
  private copyVerdict(fd: number, seen: Observed): CopyVerdict {
    const lineKey = firstLineKey(seen.head);
    const ids = lineKey === null ? undefined : this.byLine.get(lineKey);
    if (!ids) return NOT_A_COPY;
    const self = inodeKey(seen.dev, seen.ino);
    const earlier = this.held.get(self);
    let best: { t: Tracked; prefix: number } | null = null;
    for (const id of [...ids]) {
      const t = this.files.get(id);
      if (!t) continue;
      // An original truncated since its last look: notice it now, so this copy may carry it on.
      if (t.tail ? !this.look(t, Date.now()) : this.replacedWhileClosed(t)) {
        if (this.byInode.has(self)) return { kind: "taken" };
        continue;
      }
      const prefix = this.sharedPrefix(t, fd, seen.size, earlier?.of === id ? earlier.prefix : 0);
      if (prefix !== null && (!best || prefix > best.prefix)) best = { t, prefix };
    }
    if (!best) return NOT_A_COPY;
    const now = Date.now();
    const copy: HeldCopy = { of: best.t.id, path: seen.path, size: seen.size, mtimeMs: seen.mtimeMs, prefix: best.prefix, since: earlier?.since ?? now };
    if (best.prefix >= seen.size && !this.releaseHeld(copy)) return { kind: "held", copy };
    // Grown bytes of its own: after a sure copy, those are all it ships; else all of it ships.
    if (earlier && best.prefix >= FINGERPRINT_BYTES && best.prefix < seen.size) return { kind: "own", from: lineStart(fd, best.prefix) };
    return NOT_A_COPY;
  }

  /**
   * A new file that is a copy of a remembered file no longer on disk (deleted, or truncated,
   * while logship was stopped or not looking) carries that identity on from its offset.
   * Only remembered files of its own directory are considered. Returns false when it is no
   * such copy.
   */
  private copyOfGone(c: Candidate, fd: number, seen: Observed): boolean {
    const rows = this.rowsIn(dirname(c.path));
    let best: FileState | undefined;
    for (const row of rows) {
      if (this.files.has(row.id) || !isNamedCopyOf(row, row.path, seen.head, c.path, row.offset)) continue;
      if (this.existsAs(row.path, row.dev, row.ino)) continue; // its own file is still there
      if (!best || row.offset > best.offset) best = row;
    }
    if (!best || seen.size < best.offset) return false;
    if (this.checkpoint.waiting(best.id) > 0) {
      closeSync(fd); // what it read is still in flight: judged again at the next scan, with its offset final
      return true;
    }
    const was = { id: best.id, input: c.input, path: best.path };
    if (!this.continueIn(was, best, { path: c.path, st: fstatSync(fd), head: seen.head }, best.offset)) return false;
    closeSync(fd);
    this.files.get(best.id)!.matched = true;
    return true;
  }

  /** Remembered rows by directory, built once per scan when first needed. */
  private rowsIn(dir: string): FileState[] {
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

  /**
   * Checks a closed file's bytes are still its own; when they are not (truncated while
   * closed), it is opened and handled as replaced at once. Returns true in that case.
   */
  private replacedWhileClosed(t: Tracked): boolean {
    let opened: { fd: number; seen: Observed };
    try {
      opened = openIdentified(t.source.path);
    } catch {
      return false;
    }
    const row = this.checkpoint.row(t.id);
    const same = opened.seen.dev === t.dev && opened.seen.ino === t.ino;
    if (!same || !row || (opened.seen.size >= t.resumeAt && headMatches(row, opened.seen.head))) {
      closeSync(opened.fd);
      return false;
    }
    this.attachTail(t, opened.fd);
    this.replacedUnder(t);
    return true;
  }

  /**
   * A held copy shorter than FINGERPRINT_BYTES is let go (shipped as a file of its own) after
   * copyGrace(): a new file that merely starts like another must not wait for ever.
   */
  private releaseHeld(h: HeldCopy): boolean {
    return h.prefix < FINGERPRINT_BYTES && Date.now() - h.since >= this.copyGrace();
  }

  /** How long a short copy is held back: enough scans for copytruncate's truncation to follow. */
  private copyGrace(): number {
    return 2 * this.config.scan_interval;
  }

  /** How many bytes from 0 the file open as `fd` shares with t's file; null when t's file cannot be looked at. */
  private sharedPrefix(t: Tracked, fd: number, size: number, verified: number): number | null {
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
      const to = Math.min(size, fstatSync(kfd).size);
      return commonPrefix(fd, kfd, Math.min(verified, to), to);
    } catch {
      return null;
    } finally {
      if (opened) closeSync(kfd);
    }
  }

  /**
   * An identity whose inode lost its bytes (`read` of them were read; the file held
   * `lastSize` at the last look) carries on in a copy of them, if there is one.
   * Returns false when none does; the caller then retires or forgets the identity.
   */
  private carryOn(was: { id: string; input: number; path: string; dev: number; ino: number }, read: number, lastSize: number, why: string): boolean {
    const row = this.checkpoint.row(was.id);
    if (!row) return false;
    let copies = this.findCopies(was.id, row, was.path, read, inodeKey(was.dev, was.ino));
    if (row.fp_len < COPY_MIN_BYTES && copies.length > 1) copies = []; // rotation-named look-alikes: cannot tell which
    copies.sort((a, b) => b.st.size - a.st.size || b.st.ctimeMs - a.st.ctimeMs);
    const best = copies.find((c) => c.st.size >= read);
    // The others hold what was read, or what `best` holds: past that, they are files of their own.
    if (row.fp_len >= FINGERPRINT_BYTES) for (const c of copies) if (c !== best) this.registerCopy(c);
    for (const [key, h] of this.held) if (h.of === was.id) this.held.delete(key);
    if (best && this.continueIn(was, row, best, read)) {
      const end = Math.max(best.st.size, read);
      if (lastSize > end) this.events.dataLost(best.path, was.id, end, lastSize, "written to the original between the copy and the truncation");
      return true;
    }
    if (why && lastSize > read) this.events.dataLost(was.path, was.id, read, lastSize, why);
    return false;
  }

  /** Possible copies of an identity: copies held back as its, look-alikes in its directory, and (during a scan) among the matched paths. */
  private findCopies(id: string, known: { fingerprint: string; fp_len: number }, path: string, read: number, exclude: string): Look[] {
    const paths = new Set<string>(this.copyHints);
    for (const h of this.held.values()) if (h.of === id) paths.add(h.path);
    const dir = dirname(path);
    try {
      for (const name of readdirSync(dir)) paths.add(join(dir, name));
    } catch {
      // the directory is gone: only held copies elsewhere remain
    }
    const out: Look[] = [];
    const seen = new Set<string>([exclude]);
    for (const p of paths) {
      let st: Stats;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      const key = inodeKey(st.dev, st.ino);
      if (!st.isFile() || st.size === 0 || st.size < known.fp_len || seen.has(key)) continue;
      let head: Buffer;
      try {
        head = readHead(p);
      } catch {
        continue;
      }
      if (!isNamedCopyOf(known, path, head, p, read) || this.hasIdentity(st, head)) continue;
      seen.add(key);
      out.push({ path: p, st, head });
    }
    return out;
  }

  /** Moves an identity into a copy of its bytes, to be read on from `read` (like a rename). */
  private continueIn(was: { id: string; input: number; path: string }, row: FileState, copy: Look, read: number): boolean {
    let opened: { fd: number; seen: Observed };
    try {
      opened = openIdentified(copy.path);
    } catch {
      return false;
    }
    const { fd, seen } = opened;
    if (seen.dev !== copy.st.dev || seen.ino !== copy.st.ino || !headMatches(row, seen.head) || seen.size < read) {
      closeSync(fd);
      return false;
    }
    const key = inodeKey(seen.dev, seen.ino);
    Object.assign(row, { dev: seen.dev, ino: seen.ino, path: copy.path, gone_since: null, seen_at: Date.now() });
    this.lengthen(row, seen);
    this.checkpoint.touch(row.id);
    this.moved.set(key, row.id);
    this.held.delete(key);
    const t = this.newTracked(row.id, was.input, copy.path, seen, read, false);
    this.events.fileRenamed(was.path, copy.path, row.id);
    this.giveFd(t, fd, true);
    return true;
  }

  /** Whether the file is followed, or remembered (not merely an inode number reused), under an identity of its own. */
  private hasIdentity(st: Stats, head: Buffer): boolean {
    const t = this.files.get(this.byInode.get(inodeKey(st.dev, st.ino)) ?? "");
    if (t && t.born === st.birthtimeMs) return true;
    const saved = this.savedRow(st.dev, st.ino);
    return saved !== undefined && saved.offset <= st.size && headMatches(saved, head);
  }

  /** A copy whose bytes were all shipped as another file's gets an identity of its own, starting past them. */
  private registerCopy(c: Look): void {
    const key = inodeKey(c.st.dev, c.st.ino);
    this.held.delete(key);
    if (this.hasIdentity(c.st, c.head)) return;
    const row: FileState = {
      id: this.newId(c.st.dev, c.st.ino), dev: c.st.dev, ino: c.st.ino, fingerprint: fingerprint(c.head), fp_len: c.head.length,
      path: c.path, offset: c.st.size, seen_at: Date.now(), gone_since: null,
    };
    this.checkpoint.register(row);
  }

  /**
   * An original stops being followed, `read` bytes of it read: its held copies are settled.
   * The largest that holds more than was read carries its identity on; the others get
   * identities of their own past what they hold. Returns whether one carries it on.
   */
  private settleCopies(t: Tracked, read: number): boolean {
    const mine = [...this.held.entries()].filter(([, h]) => h.of === t.id).sort((a, b) => b[1].size - a[1].size);
    const row = this.checkpoint.row(t.id);
    let carried = false;
    for (const [key, h] of mine) {
      this.held.delete(key);
      let look: Look;
      try {
        const st = statSync(h.path);
        if (inodeKey(st.dev, st.ino) !== key) continue;
        look = { path: h.path, st, head: readHead(h.path) };
      } catch {
        continue;
      }
      if (!carried && row && look.st.size > read && this.continueIn({ id: t.id, input: t.input, path: t.source.path }, row, look, read)) carried = true;
      else if (h.prefix >= FINGERPRINT_BYTES) this.registerCopy(look); // else judged again as a new file
    }
    return carried;
  }

  // --- poll: what happened to the open files -------------------------------------------

  private poll(): void {
    if (this.stopping) return;
    const now = Date.now();
    for (const t of [...this.files.values()]) {
      if (!t.tail || !this.look(t, now)) continue;
      this.flushIdlePartial(t, now);
      this.closeIfDone(t, now);
    }
    this.shareFds(true);
    this.pump();
  }

  /**
   * Looks at an open file: notes growth and deletion. Returns false when the file no longer
   * holds t's bytes (truncated or rewritten), which is then handled.
   */
  private look(t: Tracked, now: number): boolean {
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
    if (st.size > t.size || tail.hasNewBytes(st.size)) this.ready.add(t.id);
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
    this.lengthen(row, seen);
    if (t.lineKey === null) this.indexLine(t, firstLineKey(seen.head));
    return true;
  }

  /** Lengthens a short fingerprint to what the file holds now; `seen.head` must already match it. */
  private lengthen(row: FileState, seen: Observed): void {
    if (seen.head.length <= row.fp_len) return;
    Object.assign(row, currentFingerprint(seen));
    this.checkpoint.touch(row.id);
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
      this.ready.delete(t.id); // not read meanwhile; the next poll looks again
      return;
    }
    this.events.fileTruncated(t.source.path, t.id, tail.offset, seen.size);
    const read = tail.offset;
    this.unindex(t);
    t.tail = null; // the descriptor (and its count) passes to the new identity
    tail.rewind(0);
    const row = this.newRow(seen, t.source.path, 0);
    this.checkpoint.register(row);
    const fresh = this.newTracked(row.id, t.input, t.source.path, seen, 0, t.matched);
    fresh.tail = tail;
    fresh.deletedAt = t.deletedAt;
    this.ready.add(fresh.id);
    const was = { id: t.id, input: t.input, path: t.source.path, dev: t.dev, ino: t.ino };
    if (this.carryOn(was, read, t.size, "truncated before it was read to its end, and no copy of it found")) return;
    this.settleCopies(t, read);
    this.retire(t.id);
  }

  /** A last line without "\n" that has waited partial_line_timeout ships as it is. */
  private flushIdlePartial(t: Tracked, now: number): void {
    if (!t.tail || this.opts.once || t.tail.partialBytes === 0 || !this.partialDue(t, now)) return;
    if (t.tail.hasNewBytes(t.size)) return; // more bytes arrived: read them first
    const span = t.tail.flushPartial();
    if (span) this.ship(t, span);
  }

  private partialDue(t: Tracked, now: number): boolean {
    const timeout = this.input(t).partial_line_timeout;
    return timeout > 0 && now - t.lastGrowth >= timeout && (t.tail ? t.tail.partialBytes > 0 : t.partialPending);
  }

  /** Closes a caught-up file that was deleted, renamed out of the globs, or idle too long. */
  private closeIfDone(t: Tracked, now: number): void {
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
    if (!this.caughtUp(t) || input.close_inactive === 0 || now - t.lastGrowth < input.close_inactive) return;
    if (!t.matched) return this.release(t); // renamed out of the globs: its row ages out
    this.closeTail(t);
    this.events.fileClosedInactive(t.source.path, t.id);
  }

  // --- pump: read while there is room --------------------------------------------------

  private pump(): void {
    if (this.pumping || this.stopping || this.saveFailingSince !== 0) return;
    this.pumping = true;
    try {
      const cap = this.config.max_inflight_bytes;
      // Ends: a read that gives nothing takes its file out of `ready`, and every read that
      // gives something moves an offset forward (or fills the in-flight cap).
      while (this.ready.size > 0 && this.sender.inflightBytes < cap) {
        for (const id of [...this.ready]) {
          if (this.sender.inflightBytes >= cap) break;
          this.readOnce(id);
        }
      }
    } finally {
      this.pumping = false;
    }
    this.checkDone();
  }

  /** One read of one file; false when it had nothing complete to give. */
  private readOnce(id: string): boolean {
    const t = this.files.get(id);
    if (!t?.tail || (t.stopAt !== null && t.tail.offset >= t.stopAt)) {
      this.ready.delete(id);
      if (t?.tail && this.opts.once) this.doneOnce(t);
      return false;
    }
    const now = Date.now();
    if (!this.look(t, now)) return true; // replaced: the new identity is ready instead
    let span: Span | null;
    try {
      span = t.tail.read(this.config.max_inflight_bytes - this.sender.inflightBytes);
    } catch (err) {
      this.events.fileUnreadable(t.source.path, errorText(err));
      this.ready.delete(id);
      return false;
    }
    if (!span) {
      this.ready.delete(id);
      if (this.opts.once) this.doneOnce(t);
      else {
        this.flushIdlePartial(t, now);
        this.yieldTurn(t, false);
      }
      return false;
    }
    t.turnBytes += span.end - span.start;
    this.ship(t, span);
    if (t.turnBytes >= TURN_BYTES) this.yieldTurn(t, true);
    return true;
  }

  /** --once: a file read to its size at start is closed, and its descriptor goes to a waiting file. */
  private doneOnce(t: Tracked): void {
    this.closeTail(t);
    this.shareFds(false);
  }

  private ship(t: Tracked, span: Span): void {
    if (span.longLine) this.events.lineTooLong(t.source.path, span.longLine.offset, span.end - span.start, span.longLine.action);
    const k = this.config.kafka;
    const chunks = pack(span, t.source, { maxMessageBytes: k.max_message_bytes, targetMessageBytes: k.target_message_bytes });
    if (span.pooled) {
      const release = lease(this.buffers, span.pooled, chunks.length);
      for (const c of chunks) c.release = release;
    }
    this.sender.enqueue(chunks);
  }

  private onAcked(): void {
    if (this.config.state.flush_interval === 0) this.saveOffsets();
    for (const id of this.retiring) {
      if (this.checkpoint.waiting(id) > 0) continue;
      this.retiring.delete(id);
      this.forgetRow(id);
    }
    this.pump();
  }

  /** --once: finished when every file is read to its size at start and all of it is acknowledged. */
  private checkDone(): void {
    if (!this.opts.once || this.stopping || this.scanning || !this.finishOnce) return;
    if (this.ready.size > 0 || this.waitingForFd.size > 0 || this.sender.queued > 0) return;
    const done = this.finishOnce;
    this.finishOnce = null;
    done();
  }

  // --- descriptors ---------------------------------------------------------------------

  private attachTail(t: Tracked, fd: number): void {
    const input = this.input(t);
    t.tail = new Tail(fd, t.resumeAt, { maxLineBytes: input.max_line_bytes, longLines: input.long_lines, readBytes: READ_BYTES, pool: this.buffers });
    t.turnBytes = 0;
    this.openFds++;
    this.waitingForFd.delete(t.id);
    this.ready.add(t.id);
  }

  private closeTail(t: Tracked): void {
    if (!t.tail) return;
    t.resumeAt = t.tail.offset;
    t.partialPending = t.tail.partialBytes > 0;
    t.tail.close();
    t.tail = null;
    this.openFds--;
    this.ready.delete(t.id);
  }

  /** Hands a freshly opened descriptor to t, or queues t for one; `keep`: hold it even over the limit (it may not open again). */
  private giveFd(t: Tracked, fd: number, keep: boolean): void {
    if (this.openFds < this.config.max_open_files || (keep && (this.closeOneIdle() || true))) return this.attachTail(t, fd);
    closeSync(fd);
    this.wantFd(t);
  }

  private wantFd(t: Tracked): void {
    this.waitingForFd.add(t.id);
    this.shareFds(false);
  }

  /** When files wait for a descriptor, one that has had its turn gives its own up, and queues again if it has more. */
  private yieldTurn(t: Tracked, more: boolean): void {
    if (this.waitingForFd.size === 0) return;
    if (!this.reopenable(t)) {
      // Renamed out of the globs, it cannot be opened again: read to its end, it is let go.
      if (!more && t.deletedAt === null && !t.matched) this.letGo(t);
      return;
    }
    this.closeTail(t);
    if (more) this.waitingForFd.add(t.id); // at the back
    this.shareFds(false);
  }

  /**
   * Opens waiting files while descriptors are free. With `closeIdle` (each poll), caught-up
   * files first give theirs up to waiting ones (a pass over all files, so not on every call).
   */
  private shareFds(closeIdle: boolean): void {
    if (this.waitingForFd.size === 0) return;
    const max = this.config.max_open_files;
    if (closeIdle && this.openFds >= max) {
      const idle = [...this.files.values()].filter((t) => t.tail && t.deletedAt === null && this.caughtUp(t)).sort((a, b) => a.lastGrowth - b.lastGrowth);
      for (const t of idle.slice(0, this.waitingForFd.size)) {
        if (this.reopenable(t)) this.closeTail(t);
        else this.letGo(t);
      }
    }
    for (const id of [...this.waitingForFd]) {
      if (this.openFds >= max) break;
      const t = this.files.get(id);
      if (!t) this.waitingForFd.delete(id);
      else this.reopen(t);
    }
  }

  /** Closes the caught-up file that grew least recently, to free a descriptor; false when none is idle. */
  private closeOneIdle(): boolean {
    let idle: Tracked | undefined;
    for (const t of this.files.values()) {
      if (t.tail && this.reopenable(t) && this.caughtUp(t) && (!idle || t.lastGrowth < idle.lastGrowth)) idle = t;
    }
    if (idle) this.closeTail(idle);
    return idle !== undefined;
  }

  /** Opens a closed file again by its path, if the path still holds the same file, and checks its bytes are still its. */
  private reopen(t: Tracked): void {
    this.waitingForFd.delete(t.id);
    let opened: { fd: number; seen: Observed };
    try {
      opened = openIdentified(t.source.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.events.fileUnreadable(t.source.path, errorText(err));
      return;
    }
    if (opened.seen.dev !== t.dev || opened.seen.ino !== t.ino || opened.seen.birthtimeMs !== t.born) {
      closeSync(opened.fd); // the path holds another file now; the next scan finds both
      return;
    }
    this.attachTail(t, opened.fd);
    const row = this.checkpoint.row(t.id);
    if (row && (opened.seen.size < t.resumeAt || !headMatches(row, opened.seen.head))) this.replacedUnder(t);
    else if (row) this.lengthen(row, opened.seen);
  }

  /** A file whose descriptor may be closed and opened again by its path later. */
  private reopenable(t: Tracked): boolean {
    return t.deletedAt === null && t.matched;
  }

  private caughtUp(t: Tracked): boolean {
    return t.tail ? t.size === t.tail.offset && t.tail.partialBytes === 0 : t.size === t.resumeAt;
  }

  /** Stops reading a deleted file for good. A held copy that holds more carries its identity on; else the identity retires. */
  private finish(t: Tracked): boolean {
    const read = t.tail?.offset ?? t.resumeAt;
    this.events.fileFinished(t.source.path, t.id, read);
    this.dropTracked(t);
    const carried = this.settleCopies(t, read);
    if (!carried) this.retire(t.id);
    return carried;
  }

  /** A file renamed out of the globs gives its descriptor up to files waiting for one; an unfinished last line goes with it. */
  private letGo(t: Tracked): void {
    const tail = t.tail;
    if (tail && tail.partialBytes > 0) {
      this.events.dataLost(t.source.path, t.id, tail.offset, tail.offset + tail.partialBytes, "renamed out of the globs with its last line unfinished, and let go for files waiting for a descriptor");
    }
    this.release(t);
    this.shareFds(false);
  }

  /** Stops following a file that is still on disk but no longer matched; its row stays and ages out. */
  private release(t: Tracked): void {
    const row = this.checkpoint.row(t.id);
    const now = t.tail ? pathOfFd(t.tail.fd) : null; // where it was renamed to, so expiry sees it still exists
    if (row && now) {
      row.path = now;
      this.checkpoint.touch(t.id);
    }
    const read = t.tail?.offset ?? t.resumeAt;
    this.dropTracked(t);
    this.settleCopies(t, read);
  }

  /** Stops reading a file: closes it and removes it from every index (its row is left alone). */
  private dropTracked(t: Tracked): void {
    this.closeTail(t);
    this.unindex(t);
  }

  private unindex(t: Tracked): void {
    this.files.delete(t.id);
    this.ready.delete(t.id);
    this.waitingForFd.delete(t.id);
    const key = inodeKey(t.dev, t.ino);
    if (this.byInode.get(key) === t.id) this.byInode.delete(key);
    this.indexLine(t, null);
  }

  private indexLine(t: Tracked, lineKey: string | null): void {
    if (t.lineKey === lineKey) return;
    if (t.lineKey !== null) {
      const ids = this.byLine.get(t.lineKey);
      ids?.delete(t.id);
      if (ids?.size === 0) this.byLine.delete(t.lineKey);
    }
    t.lineKey = lineKey;
    if (lineKey === null) return;
    let ids = this.byLine.get(lineKey);
    if (!ids) this.byLine.set(lineKey, (ids = new Set()));
    ids.add(t.id);
  }

  private newTracked(id: string, input: number, path: string, seen: Observed, resumeAt: number, matched: boolean): Tracked {
    const topic = (this.config.inputs[input] ?? this.config.inputs[0]!).topic;
    const t: Tracked = {
      id, input, source: { file: id, path, topic, host: this.config.host }, dev: seen.dev, ino: seen.ino, born: seen.birthtimeMs, tail: null, resumeAt,
      size: seen.size, mtimeMs: seen.mtimeMs, lastGrowth: Date.now(), matched, deletedAt: null, stopAt: this.opts.once ? seen.size : null,
      lineKey: null, turnBytes: 0, partialPending: false,
    };
    this.files.set(id, t);
    this.byInode.set(inodeKey(t.dev, t.ino), id);
    this.indexLine(t, firstLineKey(seen.head));
    return t;
  }

  private newRow(seen: Observed, path: string, offset: number): FileState {
    return { id: this.newId(seen.dev, seen.ino), dev: seen.dev, ino: seen.ino, ...currentFingerprint(seen), path, offset, seen_at: Date.now(), gone_since: null };
  }

  private retire(id: string): void {
    if (this.checkpoint.waiting(id) === 0) this.forgetRow(id);
    else this.retiring.add(id);
  }

  private forgetRow(id: string): void {
    this.checkpoint.forget(id);
    for (const [key, moved] of this.moved) if (moved === id) this.moved.delete(key);
  }

  /** The saved row of the file now at dev + ino, including rows that moved into a copy. */
  private savedRow(dev: number, ino: number): FileState | undefined {
    const key = inodeKey(dev, ino);
    const movedId = this.moved.get(key);
    const row = movedId === undefined ? this.checkpoint.byInode(dev, ino) : this.checkpoint.row(movedId);
    return row && row.dev === dev && row.ino === ino && !this.retiring.has(row.id) ? row : undefined;
  }

  // --- timers and shutdown -------------------------------------------------------------

  private startTimers(): void {
    const c = this.config;
    const every = (ms: number, fn: () => void) => this.timers.push(setInterval(fn, ms));
    every(c.scan_interval, () => void this.scan().catch((err) => this.events.fileUnreadable("(scan)", errorText(err))));
    every(c.poll_interval, () => this.poll());
    // flush_interval 0: offsets are saved after every acknowledged send (onAcked); the timer
    // then only retries a save that failed, since reading, and so acks, pause meanwhile.
    every(c.state.flush_interval || 1_000, () => {
      if (c.state.flush_interval > 0 || this.saveFailingSince !== 0) this.saveOffsets();
    });
    if (c.stats_interval > 0) every(c.stats_interval, () => this.events.summary({ filesTracked: this.files.size, filesOpen: this.openFds, inflightBytes: this.sender.inflightBytes }));
  }

  private stopTimers(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  /** Writes acknowledged offsets; on failure (disk full) they stay in memory and are tried again. */
  /**
   * Writes acknowledged offsets. While writing fails (disk full), reading pauses: shipping on
   * would only grow what a crash re-sends. Offsets stay in memory and the flush timer retries.
   */
  saveOffsets(): boolean {
    try {
      this.checkpoint.flush(this.store);
    } catch (err) {
      this.saveFailingSince ||= Date.now();
      this.events.stateError(errorText(err));
      return false;
    }
    if (this.saveFailingSince !== 0) {
      this.events.stateRecovered(Date.now() - this.saveFailingSince);
      this.saveFailingSince = 0;
      this.pump();
    }
    return true;
  }

  private async shutdown(deadline: number): Promise<void> {
    this.stopping = true;
    this.stopTimers();
    this.watcher.close();
    await this.scanning?.catch(() => {});
    await this.sender.drain(deadline);
    // A last look at the open files: truncations are handled (a copy carries its original on)
    // and short fingerprints lengthened, so what is saved identifies each file as well as it can.
    const now = Date.now();
    for (const t of [...this.files.values()]) if (t.tail) this.look(t, now);
    this.saveOffsets();
    for (const t of this.files.values()) this.closeTail(t);
    await Promise.race([this.publisher.close(), new Promise((r) => setTimeout(r, Math.max(100, deadline - Date.now())))]);
    this.store.close();
    this.events.stopped({ unacknowledgedBytes: this.sender.inflightBytes });
  }

  // --- small helpers -------------------------------------------------------------------

  private input(t: Tracked): InputConfig {
    return this.config.inputs[t.input] ?? this.config.inputs[0]!;
  }

  private senderOptions(c: AgentConfig) {
    return { maxMessageBytes: c.kafka.max_message_bytes, maxSendBytes: Math.max(MAX_SEND_BYTES, c.kafka.max_message_bytes), retryBackoffMs: c.kafka.retry_backoff, retryBackoffMaxMs: c.kafka.retry_backoff_max };
  }

  /** A stable, never reused identity: device, inode, and when logship first saw these bytes. */
  private newId(dev: number, ino: number): string {
    return `${dev}:${ino}:${Date.now().toString(36)}${(this.idSeq++ % 1296).toString(36).padStart(2, "0")}`;
  }

  private existsAs(path: string, dev: number, ino: number): boolean {
    try {
      const st = statSync(path);
      return st.dev === dev && st.ino === ino;
    } catch {
      return false;
    }
  }
}

/** True when a remembered size and mtime are those of `st`: the file did not change. */
function sameLook(was: { size: number; mtimeMs: number } | undefined, st: Stats): boolean {
  return was !== undefined && was.size === st.size && was.mtimeMs === st.mtimeMs;
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

/** Where a file's last complete line ends (start_at: end), looking back at most 64 KiB. */
function lastLineEnd(fd: number, size: number): number {
  const look = Math.min(size, 64 * 1024);
  if (look === 0) return size;
  const buf = Buffer.allocUnsafe(look);
  const n = readSync(fd, buf, 0, look, size - look);
  const nl = buf.subarray(0, n).lastIndexOf(0x0a);
  return nl === -1 ? size : size - look + nl + 1;
}
