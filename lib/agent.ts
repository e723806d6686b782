// The agent: wires the steps together and is the single owner of every long-lived resource
// (the state store, the Kafka publisher, open file descriptors, timers). Each tick is a
// named step:
//   scan()   expand the globs, identify new paths, notice renames         (every scan_interval)
//   poll()   look at open files: growth, truncation, deletion, idleness   (every poll_interval)
//   pump()   read ready files round-robin while in-flight bytes are under the cap
//   flush()  write acknowledged offsets to the store                      (every state.flush_interval)
// Reading pauses whenever max_inflight_bytes are read but not acknowledged: the log file
// itself is the buffer while Kafka is slow or down.

import { closeSync, fstatSync, readSync, statSync } from "node:fs";
import { Checkpoint } from "./checkpoint.ts";
import type { AgentConfig, InputConfig } from "./config.ts";
import { discover, type Candidate } from "./discover.ts";
import { errorText } from "./errors.ts";
import { LogEvents, type AgentEvents } from "./events.ts";
import { compressedFormat, currentFingerprint, FINGERPRINT_BYTES, inodeKey, observeFd, openIdentified, sameFile, type Observed } from "./identify.ts";
import { pack, type Source } from "./pack.ts";
import { KafkaPublisher, type Publisher } from "./publish.ts";
import { Tail, type Span } from "./read.ts";
import { Sender } from "./sender.ts";
import { openStore, type FileState, type Store } from "./store.ts";

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
  tail: Tail | null; // null while closed (inactive, or waiting for a descriptor)
  resumeAt: number; // read position kept while the tail is closed
  size: number; // size at the last look
  lastGrowth: number; // ms epoch new bytes last appeared
  matched: boolean; // found by the latest scan
  deletedAt: number | null; // ms epoch its last link was removed
  stopAt: number | null; // --once: read up to this size, then the file is done
}

export class Agent {
  readonly events: AgentEvents;
  private readonly checkpoint = new Checkpoint();
  private readonly sender: Sender;
  private readonly files = new Map<string, Tracked>();
  private readonly byInode = new Map<string, string>(); // inodeKey → tracked id
  private readonly ready = new Set<string>(); // tracked ids that may have bytes to read
  private readonly waitingForFd = new Set<string>(); // tracked ids that want a descriptor
  private readonly retiring = new Set<string>(); // ids to forget once their chunks are acked
  private readonly skipped = new Set<string>(); // inodeKeys of compressed files, warned once
  private readonly timers: Timer[] = [];
  private openFds = 0;
  private firstScan = true;
  private scanning: Promise<void> | null = null;
  private pumping = false;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private lastExpiry = 0;
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
    // Files whose input is gone stop being read now; their offsets stay saved.
    for (const t of [...this.files.values()]) if (!t.matched) this.dropTracked(t);
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
    for (const t of this.files.values()) t.matched = false;
    for (const c of candidates) this.consider(c);
    this.markGone();
    this.firstScan = false;
    this.expireState();
    this.pump();
  }

  /** Decides what a matched path is: a file already followed, a known file back again, or new. */
  private consider(c: Candidate): void {
    let st;
    try {
      st = statSync(c.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.events.fileUnreadable(c.path, errorText(err));
      return;
    }
    const key = inodeKey(st.dev, st.ino);
    const known = this.byInode.get(key);
    const t = known === undefined ? undefined : this.files.get(known);
    if (t) return this.seenAgain(t, c, st.size);
    if (this.skipped.has(key) || (this.opts.once && !this.firstScan)) return;
    let opened: { fd: number; seen: Observed };
    try {
      opened = openIdentified(c.path);
    } catch (err) {
      this.events.fileUnreadable(c.path, errorText(err));
      return;
    }
    const format = compressedFormat(opened.seen);
    if (format) {
      closeSync(opened.fd);
      this.skipped.add(key);
      this.events.fileSkippedCompressed(c.path, format);
      return;
    }
    this.follow(c, opened.fd, opened.seen);
  }

  /** A followed file was matched again: note a rename and whether it grew. */
  private seenAgain(t: Tracked, c: Candidate, size: number): void {
    t.matched = true;
    t.input = c.input;
    const topic = this.config.inputs[c.input]!.topic;
    if (t.source.path !== c.path && !this.stillAt(t.source.path, t)) {
      this.events.fileRenamed(t.source.path, c.path, t.id);
      t.source = { ...t.source, path: c.path, topic };
      this.checkpoint.row(t.id)!.path = c.path;
      this.checkpoint.touch(t.id);
    } else if (t.source.topic !== topic) {
      t.source = { ...t.source, topic };
    }
    if (t.tail) {
      this.verifyIdentity(t);
      if (size !== t.size) this.ready.add(t.id);
    } else if (size > t.resumeAt && t.deletedAt === null) {
      this.wantFd(t);
    }
  }

  /** Starts following a file not followed now: resume its saved offset if it is a known file. */
  private follow(c: Candidate, fd: number, seen: Observed): void {
    const input = this.config.inputs[c.input]!;
    const now = Date.now();
    const saved = this.checkpoint.byInode(seen.dev, seen.ino);
    let row: FileState;
    let reason: "new" | "resumed" | "start_at_end" = "new";
    if (saved && sameFile(saved, seen)) {
      row = saved;
      row.path = c.path;
      row.gone_since = null;
      reason = "resumed";
    } else {
      if (saved) this.checkpoint.forget(saved.id); // inode reused by a new file
      const startAtEnd = input.start_at === "end" && this.firstScan;
      row = { id: this.newId(seen), dev: seen.dev, ino: seen.ino, ...currentFingerprint(seen), path: c.path, offset: startAtEnd ? lastLineEnd(fd, seen.size) : 0, seen_at: now, gone_since: null };
      if (startAtEnd) reason = "start_at_end";
    }
    Object.assign(row, currentFingerprint(seen), { seen_at: now });
    if (reason === "new" || reason === "start_at_end") this.checkpoint.register(row);
    else this.checkpoint.touch(row.id);
    const t: Tracked = {
      id: row.id, input: c.input, source: { file: row.id, path: c.path, topic: input.topic, host: this.config.host },
      dev: seen.dev, ino: seen.ino, tail: null, resumeAt: row.offset, size: seen.size, lastGrowth: now,
      matched: true, deletedAt: null, stopAt: this.opts.once ? seen.size : null,
    };
    this.files.set(t.id, t);
    this.byInode.set(inodeKey(t.dev, t.ino), t.id);
    this.events.fileAdded(c.path, t.id, row.offset, reason);
    if (this.openFds < this.config.max_open_files) this.attachTail(t, fd);
    else {
      closeSync(fd);
      this.wantFd(t);
    }
  }

  /** Files no scan matched any more keep being read; their state rows start ageing. */
  private markGone(): void {
    const now = Date.now();
    const followed = new Set(this.files.keys());
    for (const row of this.checkpoint.rows()) {
      if (followed.has(row.id) || row.gone_since !== null) continue;
      row.gone_since = now;
      this.checkpoint.touch(row.id);
    }
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
      } else {
        this.checkpoint.forget(row.id);
      }
    }
  }

  // --- poll: what happened to the open files -------------------------------------------

  private poll(): void {
    if (this.stopping) return;
    const now = Date.now();
    for (const t of [...this.files.values()]) {
      if (!t.tail) continue;
      let st;
      try {
        st = fstatSync(t.tail.fd);
      } catch (err) {
        this.events.fileUnreadable(t.source.path, errorText(err));
        continue;
      }
      if (st.size < t.tail.offset) {
        this.truncated(t, st.size);
        continue;
      }
      if (st.size > t.size || t.tail.hasNewBytes(st.size)) {
        if (st.size > t.size) t.lastGrowth = now;
        this.ready.add(t.id);
      }
      t.size = st.size;
      if (st.nlink === 0 && t.deletedAt === null) {
        t.deletedAt = now;
        this.events.fileRemoved(t.source.path, t.id, st.size - t.tail.offset);
      }
      this.flushIdlePartial(t, now);
      this.closeIfDone(t, now);
    }
    this.shareFds();
    this.pump();
  }

  /** A last line without "\n" that has waited partial_line_timeout ships as it is. */
  private flushIdlePartial(t: Tracked, now: number): void {
    const timeout = this.input(t).partial_line_timeout;
    if (!t.tail || timeout === 0 || this.opts.once || t.tail.partialBytes === 0 || now - t.lastGrowth < timeout) return;
    if (t.tail.hasNewBytes(t.size)) return; // more bytes arrived: read them first
    const span = t.tail.flushPartial();
    if (span) this.ship(t, span);
  }

  /** Closes a caught-up file that was deleted, renamed out of the globs, or idle too long. */
  private closeIfDone(t: Tracked, now: number): void {
    const tail = t.tail!;
    const caughtUp = t.size === tail.offset && tail.partialBytes === 0;
    const input = this.input(t);
    if (t.deletedAt !== null) {
      if (caughtUp || t.size <= tail.offset) return this.finish(t);
      if (now - t.deletedAt >= input.close_removed && input.close_removed > 0) {
        this.events.dataLost(t.source.path, t.id, tail.offset, t.size, `deleted and not read within close_removed (${input.close_removed} ms)`);
        return this.finish(t);
      }
      return;
    }
    if (!caughtUp || input.close_inactive === 0 || now - t.lastGrowth < input.close_inactive) return;
    if (!t.matched) return this.dropTracked(t); // renamed out of the globs: its row ages out
    this.closeTail(t);
    this.events.fileClosedInactive(t.source.path, t.id);
  }

  /** Truncated in place: the bytes are new, so they get a new identity and start at 0. */
  private truncated(t: Tracked, size: number): void {
    const tail = t.tail!;
    this.events.fileTruncated(t.source.path, t.id, tail.offset, size);
    let seen: Observed;
    try {
      seen = observeFd(tail.fd, t.source.path);
    } catch (err) {
      this.events.fileUnreadable(t.source.path, errorText(err));
      return;
    }
    this.retire(t.id);
    const row: FileState = { id: this.newId(seen), dev: seen.dev, ino: seen.ino, ...currentFingerprint(seen), path: t.source.path, offset: 0, seen_at: Date.now(), gone_since: null };
    this.checkpoint.register(row);
    this.files.delete(t.id);
    this.ready.delete(t.id);
    const next: Tracked = { ...t, id: row.id, source: { ...t.source, file: row.id }, size, resumeAt: 0, lastGrowth: Date.now() };
    tail.rewind(0);
    this.files.set(next.id, next);
    this.byInode.set(inodeKey(next.dev, next.ino), next.id);
    this.ready.add(next.id);
  }

  /** Checks an open file's first bytes still match its fingerprint, lengthening a short one. */
  private verifyIdentity(t: Tracked): void {
    const row = this.checkpoint.row(t.id);
    if (!row || !t.tail) return;
    if (row.fp_len >= FINGERPRINT_BYTES && t.size >= row.offset) return;
    let seen: Observed;
    try {
      seen = observeFd(t.tail.fd, t.source.path);
    } catch {
      return;
    }
    if (!sameFile({ ...row, offset: Math.min(row.offset, t.tail.offset) }, seen)) return this.truncated(t, seen.size);
    if (seen.head.length > row.fp_len) {
      Object.assign(row, currentFingerprint(seen));
      this.checkpoint.touch(row.id);
    }
  }

  // --- pump: read while there is room --------------------------------------------------

  private pump(): void {
    if (this.pumping || this.stopping) return;
    this.pumping = true;
    try {
      const cap = this.config.max_inflight_bytes;
      let progressed = true;
      while (progressed && this.sender.inflightBytes < cap && this.ready.size > 0) {
        progressed = false;
        for (const id of [...this.ready]) {
          if (this.sender.inflightBytes >= cap) break;
          if (this.readOnce(id)) progressed = true;
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
      if (t?.tail && this.opts.once) this.closeTail(t);
      return false;
    }
    let span: Span | null;
    try {
      span = t.tail.read();
    } catch (err) {
      this.events.fileUnreadable(t.source.path, errorText(err));
      this.ready.delete(id);
      return false;
    }
    if (!span) {
      this.ready.delete(id);
      if (this.opts.once) this.closeTail(t);
      return false;
    }
    t.lastGrowth = Date.now();
    this.ship(t, span);
    return true;
  }

  private ship(t: Tracked, span: Span): void {
    if (span.longLine) this.events.lineTooLong(t.source.path, span.longLine.offset, span.end - span.start, span.longLine.action);
    const k = this.config.kafka;
    this.sender.enqueue(pack(span, t.source, { maxMessageBytes: k.max_message_bytes, targetMessageBytes: k.target_message_bytes }));
  }

  private onAcked(): void {
    for (const id of this.retiring) {
      if (this.checkpoint.waiting(id) > 0) continue;
      this.retiring.delete(id);
      this.checkpoint.forget(id);
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
    t.tail = new Tail(fd, t.resumeAt, { maxLineBytes: input.max_line_bytes, longLines: input.long_lines, readBytes: READ_BYTES });
    this.openFds++;
    this.waitingForFd.delete(t.id);
    this.ready.add(t.id);
  }

  private closeTail(t: Tracked): void {
    if (!t.tail) return;
    t.resumeAt = t.tail.offset;
    t.tail.close();
    t.tail = null;
    this.openFds--;
    this.ready.delete(t.id);
  }

  private wantFd(t: Tracked): void {
    this.waitingForFd.add(t.id);
    this.shareFds();
  }

  /** Opens waiting files while descriptors are free; caught-up files give theirs up to waiting ones. */
  private shareFds(): void {
    if (this.waitingForFd.size === 0) return;
    const max = this.config.max_open_files;
    if (this.openFds >= max) {
      const idle = [...this.files.values()]
        .filter((t) => t.tail && t.size === t.tail.offset && t.tail.partialBytes === 0 && t.deletedAt === null)
        .sort((a, b) => a.lastGrowth - b.lastGrowth);
      for (const t of idle.slice(0, this.waitingForFd.size)) this.closeTail(t);
    }
    for (const id of [...this.waitingForFd]) {
      if (this.openFds >= max) break;
      const t = this.files.get(id);
      if (!t) {
        this.waitingForFd.delete(id);
        continue;
      }
      this.reopen(t);
    }
  }

  /** Opens a closed file again by its path, if the path still holds the same file. */
  private reopen(t: Tracked): void {
    this.waitingForFd.delete(t.id);
    let opened: { fd: number; seen: Observed };
    try {
      opened = openIdentified(t.source.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.events.fileUnreadable(t.source.path, errorText(err));
      return;
    }
    if (opened.seen.dev !== t.dev || opened.seen.ino !== t.ino) {
      closeSync(opened.fd); // the path holds another file now; the next scan finds both
      return;
    }
    t.size = opened.seen.size;
    this.attachTail(t, opened.fd);
  }

  /** Stops reading a file for good (finished, or no longer wanted); its row stays until acked. */
  private finish(t: Tracked): void {
    this.events.fileFinished(t.source.path, t.id, t.tail?.offset ?? t.resumeAt);
    this.dropTracked(t);
    this.retire(t.id);
  }

  /** Stops reading a file but keeps its saved offset (input removed, renamed out of the globs). */
  private dropTracked(t: Tracked): void {
    this.closeTail(t);
    this.files.delete(t.id);
    this.waitingForFd.delete(t.id);
    if (this.byInode.get(inodeKey(t.dev, t.ino)) === t.id) this.byInode.delete(inodeKey(t.dev, t.ino));
  }

  private retire(id: string): void {
    if (this.checkpoint.waiting(id) === 0) this.checkpoint.forget(id);
    else this.retiring.add(id);
  }

  // --- timers and shutdown -------------------------------------------------------------

  private startTimers(): void {
    const c = this.config;
    const every = (ms: number, fn: () => void) => this.timers.push(setInterval(fn, ms));
    every(c.scan_interval, () => void this.scan().catch((err) => this.events.fileUnreadable("(scan)", errorText(err))));
    every(c.poll_interval, () => this.poll());
    if (c.state.flush_interval > 0) every(c.state.flush_interval, () => this.saveOffsets());
    if (c.stats_interval > 0) every(c.stats_interval, () => this.events.summary({ filesTracked: this.files.size, filesOpen: this.openFds, inflightBytes: this.sender.inflightBytes }));
  }

  private stopTimers(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  /** Writes acknowledged offsets; on failure (disk full) they stay in memory and are tried again. */
  saveOffsets(): boolean {
    try {
      this.checkpoint.flush(this.store);
      return true;
    } catch (err) {
      this.events.stateError(errorText(err));
      return false;
    }
  }

  private async shutdown(deadline: number): Promise<void> {
    this.stopping = true;
    this.stopTimers();
    await this.scanning?.catch(() => {});
    await this.sender.drain(deadline);
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
  private newId(seen: Observed): string {
    return `${seen.dev}:${seen.ino}:${Date.now().toString(36)}${(this.idSeq++ % 1296).toString(36).padStart(2, "0")}`;
  }

  private stillAt(path: string, t: Tracked): boolean {
    return this.existsAs(path, t.dev, t.ino);
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

/** Where a file's last complete line ends (start_at: end), looking back at most 64 KiB. */
function lastLineEnd(fd: number, size: number): number {
  const look = Math.min(size, 64 * 1024);
  if (look === 0) return size;
  const buf = Buffer.allocUnsafe(look);
  const n = readSync(fd, buf, 0, look, size - look);
  const nl = buf.subarray(0, n).lastIndexOf(0x0a);
  return nl === -1 ? size : size - look + nl + 1;
}
