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
// The parts it wires, each owning one concern of the file lifecycle:
//   files.ts        the followed files and their indexes; ids, rows that moved or retire
//   descriptors.ts  max_open_files shared among them, turn by turn
//   copies.ts       the copy rule: held copies, identities carried on in a copy
//   lifecycle.ts    what happens to a followed file: looked at, truncated, closed, finished,
//                   let go (the lifecycle invariants are written there)
// A closed file (idle, or waiting its turn) is opened again when a scan sees it changed;
// its identity is checked before anything is read from it.

import { closeSync, readSync, statSync, type Stats } from "node:fs";
import { dirname } from "node:path";
import { systemClock, type Cancel, type Clock } from "./clock.ts";
import { BufferPool, IdleTrim, Slabs } from "./memory.ts";
import { Checkpoint } from "./state/checkpoint.ts";
import type { AgentConfig } from "./config.ts";
import { Copies } from "./files/copies.ts";
import { Descriptors, READ_BYTES } from "./files/descriptors.ts";
import { discover, splitGlob, type Candidate } from "./files/discover.ts";
import { errorText } from "./errors.ts";
import { LogEvents, type AgentEvents, type FileAddReason } from "./events.ts";
import { caughtUp, existsAs, FileIndex, inputOf, type Tracked } from "./files/registry.ts";
import { compressedFormat, currentFingerprint, inodeKey, openIdentified, sameFile, type Observed } from "./files/identify.ts";
import { FileLifecycle } from "./files/lifecycle.ts";
import { pack } from "./kafka/pack.ts";
import { KafkaPublisher, type Publisher } from "./kafka/publish.ts";
import type { Span } from "./files/read.ts";
import { Sender } from "./kafka/sender.ts";
import { openStore, type SavedFile, type Store } from "./state/store.ts";
import { DirWatcher } from "./files/watch.ts";

export interface AgentOptions {
  once: boolean; // ship what the files hold now, then finish
}

export interface AgentDeps {
  publisher?: Publisher;
  events?: AgentEvents;
  store?: Store;
  /** Time (tests pass a manual clock). */
  clock?: Clock;
  /** inotify hints (default on); in-process tests on a manual clock turn them off, so only the clock drives the agent. */
  watch?: boolean;
}

/** Bytes a file may read in one turn while other files wait for a descriptor. */
const TURN_BYTES = READ_BYTES;
/** Free read buffers kept for reuse. */
const READ_POOL_BYTES = 8 * READ_BYTES;
/** Largest total of one send across partitions. */
const MAX_SEND_BYTES = 8 * 1024 * 1024;

export class Agent {
  readonly events: AgentEvents;
  private readonly checkpoint = new Checkpoint();
  /** Read buffers (and slabs of short spans), reused once Kafka acknowledged every chunk cut from them. */
  private readonly readPool = new BufferPool(READ_POOL_BYTES);
  private readonly buffers = { pool: this.readPool, slabs: new Slabs(this.readPool, READ_BYTES) };
  private readonly sender: Sender;
  private readonly index: FileIndex;
  private readonly fds: Descriptors;
  private readonly copies: Copies;
  private readonly life: FileLifecycle;
  private readonly skipped = new Map<string, { size: number; mtimeMs: number }>(); // inodeKeys of compressed files, warned once
  private present = new Set<string>(); // inodeKeys the latest scan listed
  private readonly timers: Cancel[] = [];
  /** inotify on the directories of followed files and of the globs: look (or scan) now, not at the next tick. */
  private readonly watcher: DirWatcher | null;
  private firstScan = true;
  /** The state held no file when the agent started: a first start, where start_at applies. */
  private firstStart = false;
  private scanning: Promise<void> | null = null;
  private pumping = false;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private saveFailingSince: number | null = null; // clock.now() offsets first failed to save; null while they save
  /** Drops the buffers kept for reuse once the agent has been quiet for a while (memory.ts). */
  private readonly idleTrim: IdleTrim;
  private finishOnce: (() => void) | null = null;
  /** --once: resolves when everything matched at start is acknowledged and saved. */
  readonly finished: Promise<void>;

  private constructor(
    private config: AgentConfig,
    private readonly opts: AgentOptions,
    private publisher: Publisher,
    private readonly store: Store,
    events: AgentEvents,
    private readonly clock: Clock,
    watch: boolean,
  ) {
    this.events = events;
    this.idleTrim = new IdleTrim(clock, () => this.buffers.slabs.seal());
    this.watcher = watch && !opts.once ? new DirWatcher({ changed: () => this.poll(), renamed: () => void this.scan().catch(() => {}) }, 20, clock) : null;
    const currentConfig = () => this.config;
    this.index = new FileIndex(this.checkpoint, currentConfig, opts.once, clock);
    this.fds = new Descriptors(this.index, this.checkpoint, events, this.buffers, currentConfig, {
      replacedUnder: (t) => this.life.replacedUnder(t),
      letGo: (t) => this.life.letGo(t),
    });
    this.copies = new Copies(this.index, this.checkpoint, events, this.fds, currentConfig, (t, now) => this.life.look(t, now), clock);
    this.life = new FileLifecycle(this.index, this.checkpoint, events, this.fds, this.copies, currentConfig, opts.once, (t, span) => this.ship(t, span));
    this.sender = new Sender(publisher, this.checkpoint, events, this.senderOptions(config), clock);
    this.sender.onAcked = () => this.onAcked();
    this.finished = new Promise((r) => (this.finishOnce = r));
  }

  /** Opens the store and the Kafka client, loads saved offsets and starts following files. */
  static async start(config: AgentConfig, opts: AgentOptions, deps: AgentDeps = {}): Promise<Agent> {
    const events = deps.events ?? new LogEvents();
    const store = deps.store ?? openStore(config.state.path);
    const publisher = deps.publisher ?? new KafkaPublisher(config.kafka);
    const agent = new Agent(config, opts, publisher, store, events, deps.clock ?? systemClock, deps.watch ?? true);
    const saved = store.all();
    agent.firstStart = saved.length === 0;
    agent.checkpoint.load(saved);
    events.started({ inputs: config.inputs.length, brokers: config.kafka.brokers, state: config.state.path, once: opts.once });
    for (const w of config.warnings ?? []) events.configWarning(config.file, w);
    agent.sender.start();
    await agent.scan();
    agent.startTimers();
    agent.checkDone();
    return agent;
  }

  /** Stops reading, drains what was read for up to `timeoutMs`, saves offsets and releases everything. */
  stop(timeoutMs: number): Promise<void> {
    this.stopped ??= this.shutdown(this.clock.now() + timeoutMs);
    return this.stopped;
  }

  /** Exits without draining (second signal): saves what is acknowledged, nothing more. */
  stopNow(): void {
    this.stopping = true;
    this.watcher?.close();
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
    for (const t of [...this.index.files.values()]) if (!t.matched && t.deletedAt === null && caughtUp(t)) this.life.release(t);
    this.events.configReloaded(next.file);
    for (const w of next.warnings ?? []) this.events.configWarning(next.file, w);
  }

  /** Resolves once a scan under way, if any, has finished (tests on a manual clock wait for it). */
  async settled(): Promise<void> {
    await this.scanning?.catch(() => {});
  }

  /** The followed files and their acknowledged offsets (for tests and diagnostics). */
  status(): { path: string; file: string; offset: number; size: number; open: boolean }[] {
    return [...this.index.files.values()].map((t) => ({ path: t.source.path, file: t.id, offset: this.checkpoint.offsetOf(t.id) ?? 0, size: t.size, open: t.tail !== null }));
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
    this.copies.duringScan(candidates.map((c) => c.path), () => this.scanCandidates(candidates));
    this.forgetAbsent(this.present);
    this.index.markGone();
    this.firstScan = false;
    this.index.expireState();
    this.watchDirs();
    this.pump();
  }

  /** Watches the directories of the followed files and the fixed part of every glob. */
  private watchDirs(): void {
    if (!this.watcher || this.stopping) return;
    const dirs = new Set<string>();
    for (const t of this.index.files.values()) dirs.add(dirname(t.source.path));
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
    const now = this.clock.now();
    for (const t of [...this.index.files.values()]) if (t.tail) this.life.look(t, now);
    for (const t of this.index.files.values()) t.matched = false;
    const present = (this.present = new Set<string>());
    const fresh: [Candidate, Stats][] = [];
    for (const c of candidates) {
      const st = this.statCandidate(c.path);
      if (!st) continue;
      present.add(inodeKey(st.dev, st.ino));
      if (this.index.byInode.has(inodeKey(st.dev, st.ino)) || this.index.savedRow(st.dev, st.ino)) this.consider(c, st);
      else fresh.push([c, st]);
    }
    // Closed files no longer matched are let go before new inodes are judged: a copy of one
    // of them may carry it on.
    this.life.dropUnmatched();
    // New inodes last: by then every original is followed and its truncation noticed, so a
    // copy of it is judged against what it holds now.
    this.copies.relist();
    for (const [c, st] of fresh) {
      this.consider(c, st);
    }
    this.copies.relist();
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
    const known = this.index.byInode.get(key);
    const t = known === undefined ? undefined : this.index.files.get(known);
    if (t && st.birthtimeMs === t.born) return this.seenAgain(t, c, st);
    if (t) this.life.vanished(t); // deleted while closed, and its inode number reused by the file here now
    if (this.opts.once && !this.firstScan) return;
    if (sameLook(this.skipped.get(key), st)) return;
    const held = this.copies.held.get(key);
    if (held && sameLook(held, st) && !this.copies.releaseHeld(held)) return;
    let opened: { fd: number; seen: Observed };
    try {
      opened = openIdentified(c.path, st); // st: this scan's look at the path, moments ago
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
    const saved = this.index.savedRow(seen.dev, seen.ino);
    if (saved && this.checkpoint.waiting(saved.id) > 0) {
      // Let go (or moved into a copy) while lines it sent still wait for Kafka: its offset is
      // not final yet. Judged again at the next scan, so it never resumes behind them.
      closeSync(fd);
      return;
    }
    if (saved && sameFile(saved, seen)) return this.follow(c, fd, seen, { saved });
    if (saved) this.life.orphaned(saved, c, seen); // then judged like any new file
    const verdict = this.copies.verdict(fd, seen);
    switch (verdict.kind) {
      case "none":
        this.copies.held.delete(key);
        if (this.copies.copyOfGone(c, fd, seen)) return;
        return this.follow(c, fd, seen, {});
      case "own":
        this.copies.held.delete(key);
        return this.follow(c, fd, seen, { from: verdict.from });
      case "held":
        closeSync(fd);
        this.copies.held.set(key, verdict.copy);
        return;
      case "taken": {
        closeSync(fd);
        const taker = this.index.atInode(key);
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
      if (t.matched || existsAs(t.source.path, t.dev, t.ino)) {
        t.matched = true;
        return;
      }
      this.events.fileRenamed(t.source.path, c.path, t.id);
      t.formerPath = t.source.path;
      t.source = { ...t.source, path: c.path };
      this.checkpoint.renamed(t.id, c.path);
    }
    t.matched = true;
    t.input = c.input;
    const topic = inputOf(this.config, t).topic;
    if (t.source.topic !== topic) t.source = { ...t.source, topic };
    if (t.tail || t.deletedAt !== null) return;
    const changed = st.size !== t.size || st.mtimeMs !== t.mtimeMs;
    if (changed || t.size > t.resumeAt || this.life.partialDue(t, this.clock.now())) this.fds.want(t);
  }

  /** Starts following a file not followed now: resume its saved offset if it is a known file. */
  private follow(c: Candidate, fd: number, seen: Observed, how: { saved?: Readonly<SavedFile>; from?: number }): void {
    const input = this.config.inputs[c.input]!;
    let row = how.saved;
    let reason: FileAddReason;
    if (row) {
      // sameFile() held: the head still starts with the fingerprinted bytes, so lengthening is safe.
      this.checkpoint.lengthened(row.id, currentFingerprint(seen));
      this.checkpoint.seenAt(row.id, c.path, this.clock.wall());
      reason = "resumed";
    } else {
      // start_at applies on a first start only: on a later one, a file logship has never seen
      // was created (or rotated in) while it was stopped, and its lines are new.
      const startAtEnd = how.from === undefined && input.start_at === "end" && this.firstScan && this.firstStart;
      row = this.index.newRow(seen, c.path, how.from ?? (startAtEnd ? lastLineEnd(fd, seen.size) : 0));
      this.checkpoint.register(row);
      reason = startAtEnd ? "start_at_end" : "new";
    }
    const t = this.index.newTracked(row.id, c.input, c.path, seen, row.offset, true);
    this.events.fileAdded(c.path, t.id, row.offset, reason);
    this.fds.give(t, fd, false);
  }

  /** Held copies and skipped files whose inode no scan lists any more are forgotten. */
  private forgetAbsent(present: Set<string>): void {
    this.copies.forgetAbsent(present);
    for (const key of this.skipped.keys()) if (!present.has(key)) this.skipped.delete(key);
  }

  // --- poll: what happened to the open files -------------------------------------------

  private poll(): void {
    if (this.stopping) return;
    const now = this.clock.now();
    for (const t of [...this.index.files.values()]) {
      if (!t.tail || !this.life.look(t, now)) continue;
      this.life.flushIdlePartial(t, now);
      this.life.closeIfDone(t, now);
    }
    this.fds.share(true);
    this.pump();
    this.trimIfIdle();
  }

  /** Drops the buffers kept for reuse once nothing was read or sent for a while (memory.ts' IdleTrim). */
  private trimIfIdle(): void {
    if (this.idleTrim.check(this.config.poll_interval, this.sender.inflightBytes > 0 || this.sender.queued > 0)) this.events.buffersDropped();
  }

  // --- pump: read while there is room --------------------------------------------------

  private pump(): void {
    if (this.pumping || this.stopping || this.saveFailingSince !== null) return;
    this.pumping = true;
    try {
      const cap = this.config.max_inflight_bytes;
      // Ends: a read that gives nothing takes its file out of `ready`, and every read that
      // gives something moves an offset forward (or fills the in-flight cap). The set is
      // walked live, not copied: with thousands ready and room for a few dozen reads, a copy
      // per pump was a tenth of the CPU of shipping 10,000 files.
      while (this.index.ready.size > 0 && this.sender.inflightBytes < cap) {
        for (const id of this.index.ready) {
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
    const t = this.index.files.get(id);
    if (!t?.tail || (t.stopAt !== null && t.tail.offset >= t.stopAt)) {
      this.index.ready.delete(id);
      if (t?.tail && this.opts.once) this.doneOnce(t);
      return false;
    }
    const now = this.clock.now();
    if (!this.life.look(t, now)) return true; // replaced: the new identity is ready instead
    let span: Span | null;
    try {
      span = t.tail.read(this.config.max_inflight_bytes - this.sender.inflightBytes);
    } catch (err) {
      this.events.fileUnreadable(t.source.path, errorText(err));
      this.index.ready.delete(id);
      return false;
    }
    if (!span) {
      this.index.ready.delete(id);
      if (this.opts.once) this.doneOnce(t);
      else {
        this.life.flushIdlePartial(t, now);
        this.fds.yieldTurn(t, false);
      }
      return false;
    }
    t.turnBytes += span.end - span.start;
    this.ship(t, span);
    if (t.turnBytes >= TURN_BYTES) this.fds.yieldTurn(t, true);
    return true;
  }

  /** --once: a file read to its size at start is closed, and its descriptor goes to a waiting file. */
  private doneOnce(t: Tracked): void {
    this.fds.close(t);
    this.fds.share(false);
  }

  private ship(t: Tracked, span: Span): void {
    if (span.longLine) this.events.lineTooLong(t.source.path, span.longLine.offset, span.end - span.start, span.longLine.action);
    const k = this.config.kafka;
    const chunks = pack(span, t.source, { maxMessageBytes: k.max_message_bytes, targetMessageBytes: k.target_message_bytes });
    this.idleTrim.active();
    if (span.hold) {
      const release = span.hold(chunks.length);
      for (const c of chunks) c.release = release;
    }
    this.sender.enqueue(chunks);
  }

  private onAcked(): void {
    if (this.config.state.flush_interval === 0) this.saveOffsets();
    this.index.forgetRetired();
    this.pump();
  }

  /** --once: finished when every file is read to its size at start and all of it is acknowledged. */
  private checkDone(): void {
    if (!this.opts.once || this.stopping || this.scanning || !this.finishOnce) return;
    if (this.index.ready.size > 0 || this.fds.waitingCount > 0 || this.sender.queued > 0) return;
    const done = this.finishOnce;
    this.finishOnce = null;
    done();
  }

  // --- timers and shutdown -------------------------------------------------------------

  private startTimers(): void {
    const c = this.config;
    const every = (ms: number, fn: () => void) => this.timers.push(this.clock.every(ms, fn));
    every(c.scan_interval, () => void this.scan().catch((err) => this.events.fileUnreadable("(scan)", errorText(err))));
    every(c.poll_interval, () => this.poll());
    // flush_interval 0: offsets are saved after every acknowledged send (onAcked); the timer
    // then only retries a save that failed, since reading, and so acks, pause meanwhile.
    every(c.state.flush_interval || 1_000, () => {
      if (c.state.flush_interval > 0 || this.saveFailingSince !== null) this.saveOffsets();
    });
    if (c.stats_interval > 0) every(c.stats_interval, () => this.events.summary({ filesTracked: this.index.files.size, filesOpen: this.fds.open, inflightBytes: this.sender.inflightBytes }));
  }

  private stopTimers(): void {
    for (const cancel of this.timers.splice(0)) cancel();
  }

  /**
   * Writes acknowledged offsets. While writing fails (disk full), reading pauses: shipping on
   * would only grow what a crash re-sends. Offsets stay in memory and the flush timer retries.
   */
  saveOffsets(): boolean {
    try {
      if (this.store.reopenIfReplaced()) {
        this.events.stateFileReplaced(this.store.path, this.checkpoint.size);
        this.checkpoint.dirtyAll();
      }
      this.checkpoint.flush(this.store);
    } catch (err) {
      this.saveFailingSince ??= this.clock.now();
      this.events.stateError(errorText(err));
      return false;
    }
    if (this.saveFailingSince !== null) {
      this.events.stateRecovered(this.clock.now() - this.saveFailingSince);
      this.saveFailingSince = null;
      this.pump();
    }
    return true;
  }

  private async shutdown(deadline: number): Promise<void> {
    this.stopping = true;
    this.stopTimers();
    this.watcher?.close();
    await this.scanning?.catch(() => {});
    await this.sender.drain(deadline);
    // A last look at the open files: truncations are handled (a copy carries its original on)
    // and short fingerprints lengthened, so what is saved identifies each file as well as it can.
    const now = this.clock.now();
    for (const t of [...this.index.files.values()]) if (t.tail) this.life.look(t, now);
    this.saveOffsets();
    for (const t of this.index.files.values()) this.fds.close(t);
    let cancel: Cancel = () => {};
    await Promise.race([this.publisher.close(), new Promise((r) => (cancel = this.clock.after(Math.max(100, deadline - this.clock.now()), () => r(undefined))))]);
    cancel();
    this.store.close();
    this.events.stopped({ unacknowledgedBytes: this.sender.inflightBytes });
  }

  // --- small helpers -------------------------------------------------------------------

  private senderOptions(c: AgentConfig) {
    return { maxMessageBytes: c.kafka.max_message_bytes, maxSendBytes: Math.max(MAX_SEND_BYTES, c.kafka.max_message_bytes), retryBackoffMs: c.kafka.retry_backoff, retryBackoffMaxMs: c.kafka.retry_backoff_max };
  }
}

/** True when a remembered size and mtime are those of `st`: the file did not change. */
function sameLook(was: { size: number; mtimeMs: number } | undefined, st: Stats): boolean {
  return was !== undefined && was.size === st.size && was.mtimeMs === st.mtimeMs;
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
