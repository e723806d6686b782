// The agent: wires the parts together and is the single owner of every long-lived resource
// (the state store, the Kafka publisher, the followed files and their descriptors, watches,
// timers). Each tick is a named step:
//   scan()   expand the globs; the follower identifies new paths, renames, copies  (every scan_interval)
//   poll()   the follower looks at open files: growth, truncation, deletion, idleness (every poll_interval)
//            (inotify on the watched directories triggers poll() and scan() sooner; the
//            intervals remain the fallback for whatever a watch misses; while the watches see
//            everything, periodic scans are skipped but for one every few: files/pacing.ts)
//   pump()   read ready files round-robin while in-flight bytes are under the cap
//   flush()  write acknowledged offsets to the store                          (every state.flush_interval)
// Reading pauses whenever max_inflight_bytes are read but not acknowledged: the log file
// itself is the buffer while Kafka is slow or down.
//
// The file lifecycle (identity, rotation, copies, descriptors) is files/follow.ts', which
// hands back shipments (a file's source and a span of its lines); the agent packs them and
// hands the chunks to the sender, which moves the checkpoint on acknowledgement.

import { settledWithin, systemClock, type Cancel, type Clock } from "./clock.ts";
import type { AgentConfig } from "./config.ts";
import { errorText } from "./errors.ts";
import { LogEvents, type AgentEvents } from "./events.ts";
import { READ_BYTES } from "./files/descriptors.ts";
import { discover } from "./files/discover.ts";
import { Follower } from "./files/follow.ts";
import type { Shipment } from "./files/read.ts";
import { Scanner } from "./files/scan.ts";
import { ScanPacer } from "./files/pacing.ts";
import { pack, UnshippableError, type Chunk } from "./kafka/pack.ts";
import { KafkaPublisher, type Publisher } from "./kafka/publish.ts";
import { Sender } from "./kafka/sender.ts";
import { jsonSlabs } from "./kafka/json-value.ts";
import { Shaper } from "./kafka/shape.ts";
import { Metrics } from "./http/metrics.ts";
import { OpsServer, type FileStatus } from "./http/server.ts";
import { BufferPool, IdleTrim, Slabs } from "./memory.ts";
import { Checkpoint } from "./state/checkpoint.ts";
import type { SavedFile, Store } from "./state/store.ts";
import { OffsetSaver } from "./state/saver.ts";
import { openState, type StateWriter } from "./state/writer.ts";

export interface AgentOptions {
  once: boolean; // ship what the files hold now, then finish
}

export interface AgentDeps {
  publisher?: Publisher;
  events?: AgentEvents;
  /** A store read and written in this thread (tests); by default a writer process does the writes (state/writer.ts). */
  store?: Store;
  /** Who writes the offsets (tests: one that never answers); the rows are then read from `store`. */
  writer?: StateWriter;
  /** Time (tests pass a manual clock). */
  clock?: Clock;
  /** inotify hints (default on); in-process tests on a manual clock turn them off, so only the clock drives the agent. */
  watch?: boolean;
}

/** Free read buffers kept for reuse. */
const READ_POOL_BYTES = 8 * READ_BYTES;
/** Largest total of one send across partitions. */
const MAX_SEND_BYTES = 8 * 1024 * 1024;
/**
 * Chunks read but not acknowledged at most (healthy topics): this bounds the chunks' own
 * objects, alive until acknowledged (see memory.ts). A chunk is a record of many lines
 * (packed), a run of up to 128 lines of a record each (`line`, `json`: format.ts), or one
 * multiline event. When a chunk was a record per line, on the backlog set as `line`, 4096
 * gave 1.30 CPU s and 142 MB peak RSS, 16,384 1.36 s and 168 MB (no full collections; 40-byte
 * lines: the same speed); with runs, `line` and `json` are held by max_inflight_bytes alone
 * (as a cap of 16,384 records: `line` 0.79 s wall instead of 0.97 at 4,096). A send takes at most half of the bytes and records that may be in
 * flight, so the next half is read while Kafka answers (with a send holding all of it,
 * reading and sending took turns: wall 2.6 s for 1.9 CPU s).
 */
const MAX_INFLIGHT_CHUNKS = 4096;
const sendShare = (inflight: number) => Math.floor(inflight / 2);

export class Agent {
  readonly events: AgentEvents;
  private readonly checkpoint: Checkpoint;
  /** Read buffers (and slabs of short spans), reused once Kafka acknowledged every chunk cut from them. */
  private readonly readPool = new BufferPool(READ_POOL_BYTES);
  private readonly buffers = { pool: this.readPool, slabs: new Slabs(this.readPool, READ_BYTES) };
  private readonly sender: Sender;
  private readonly files: Follower;
  private readonly scanner: Scanner;
  private readonly timers: Cancel[] = [];
  /** The operations endpoint (http.listen), when configured; closed on shutdown. */
  private ops: OpsServer | null = null;
  /** When periodic scans run; inotify on the directories of followed files and of the globs: look (or scan) now, not at the next tick. */
  readonly pacer: ScanPacer;
  private scanning: Promise<void> | null = null;
  private pumping = false;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  /** Writes the checkpoint's changes to the state writer; failingSince is set while they cannot be saved. */
  private readonly saver: OffsetSaver;
  /** Drops the buffers kept for reuse once the agent has been quiet for a while (memory.ts). */
  private readonly idleTrim: IdleTrim;
  private finishOnce: (() => void) | null = null;
  /** Spans → records, as each input's format says; owns the multiline events still open (kafka/shape.ts). */
  private readonly shaper: Shaper;
  /** --once: resolves when everything matched at start is acknowledged and saved. */
  readonly finished: Promise<void>;

  private constructor(
    private config: AgentConfig,
    private readonly opts: AgentOptions,
    private publisher: Publisher,
    writer: StateWriter,
    saved: SavedFile[],
    events: AgentEvents,
    private readonly clock: Clock,
    watch: boolean,
  ) {
    this.events = events;
    this.checkpoint = new Checkpoint();
    this.checkpoint.load(saved);
    this.saver = new OffsetSaver(writer, this.checkpoint, { clock, events, flushInterval: () => this.config.state.flush_interval, recovered: () => this.pump() });
    this.idleTrim = new IdleTrim(clock, () => (this.buffers.slabs.seal(), jsonSlabs.seal()));
    this.pacer = new ScanPacer(watch && !opts.once ? { changed: (paths) => this.written(paths), renamed: () => void this.scan().catch(() => {}) } : null, clock);
    const follow = { once: opts.once, firstStart: saved.length === 0 };
    this.files = new Follower(this.checkpoint, events, () => this.config, clock, this.buffers, follow);
    this.scanner = new Scanner(this.files, this.checkpoint, events, () => this.config, clock, follow);
    this.sender = new Sender(publisher, this.checkpoint, events, this.senderOptions(config), clock);
    this.shaper = new Shaper(this.checkpoint, {
      eventCut: (s, offset, reason) => events.eventCut(s.path, offset, reason),
      invalidUtf8: (s, offset) => events.invalidUtf8(s.path, offset),
      filtered: (s, lines) => events.linesFiltered(s.path, lines),
    });
    this.sender.onAcked = () => this.onAcked();
    this.finished = new Promise((r) => (this.finishOnce = r));
  }

  /** Opens the store and the Kafka client, loads saved offsets and starts following files. */
  static async start(config: AgentConfig, opts: AgentOptions, deps: AgentDeps = {}): Promise<Agent> {
    const clock = deps.clock ?? systemClock;
    const ops = config.http.listen ? OpsServer.listen(config.http.listen, clock) : null; // first: a taken port starts nothing
    const metrics = ops ? new Metrics(clock) : null;
    const log = deps.events ?? new LogEvents(undefined, undefined, config.log, clock);
    const events = metrics ? metrics.events(log) : log;
    let state: { saved: SavedFile[]; writer: StateWriter; warning?: string };
    try {
      state = await openState(config.state.path, deps);
    } catch (err) {
      ops?.close(); // nothing else is open yet
      throw err;
    }
    const publisher = deps.publisher ?? new KafkaPublisher(config.kafka, (reason) => events.producerReset(reason));
    const agent = new Agent(config, opts, publisher, state.writer, state.saved, events, clock, deps.watch ?? true);
    events.started({ inputs: config.inputs.length, brokers: config.kafka.brokers, state: config.state.path, once: opts.once });
    for (const w of config.warnings ?? []) events.configWarning(config.file, w);
    if (state.warning) events.configWarning(config.state.path, state.warning);
    if (ops && metrics) {
      agent.ops = ops;
      ops.serve(agent, metrics);
      events.httpListening(ops.address);
    }
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
    this.pacer.close();
    this.sender.abort();
    this.saveOffsets();
    this.ops?.close();
  }

  /** Applies a new, already validated config: inputs, intervals and Kafka settings. */
  async reload(next: AgentConfig): Promise<void> {
    this.closeEvents(true); // under the settings they were read with; new lines follow the new ones
    const kafkaChanged = JSON.stringify(next.kafka) !== JSON.stringify(this.config.kafka);
    this.config = next;
    this.sender.configure(this.senderOptions(next));
    if (kafkaChanged) {
      const fresh = new KafkaPublisher(next.kafka, (reason) => this.events.producerReset(reason));
      const old = this.sender.usePublisher(fresh);
      this.publisher = fresh;
      void old.close(); // a send still on it fails and is retried on the new one
    }
    this.stopTimers();
    this.startTimers();
    await this.scan();
    // Files no input matches any more stop being read once nothing of them is unread; their offsets stay saved.
    this.files.releaseUnmatched();
    this.events.configReloaded(next.file);
    for (const w of next.warnings ?? []) this.events.configWarning(next.file, w);
  }

  /** Resolves once a scan under way, if any, has finished (tests on a manual clock wait for it). */
  async settled(): Promise<void> {
    await this.scanning?.catch(() => {});
  }

  /** The followed files and their acknowledged offsets (for /status, tests and diagnostics). */
  status(): FileStatus[] {
    return this.files.registry.status(this.clock.wall() - this.clock.now()); // lastGrowth is on the monotonic clock
  }

  /** Bytes of the followed files not acknowledged yet (for /metrics, scraped often: no row per file). */
  unreadBytes(): number {
    return this.files.registry.unreadBytes();
  }

  /** Files followed and open, and bytes waiting for Kafka (for /metrics and /status). */
  load(): { filesTracked: number; filesOpen: number; inflightBytes: number } {
    const c = this.files.counts;
    return { filesTracked: c.tracked, filesOpen: c.open, inflightBytes: this.sender.inflightBytes };
  }

  // --- scan and poll: what the follower sees -------------------------------------------

  private scan(): Promise<void> {
    this.scanning ??= this.scanOnce().finally(() => (this.scanning = null));
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    this.pacer.started();
    const candidates = await discover(this.config.inputs, (pattern, reason) => this.events.fileUnreadable(pattern, reason), (path, reason) => this.events.fileRefused(path, reason));
    if (this.stopping) return;
    this.scanner.scan(candidates);
    this.pacer.watch(this.files.registry.dirs(), this.config.inputs);
    this.pump();
  }

  /** A watch saw these files written: closed ones among them are judged now (scan.ts), open ones at this poll. */
  private written(paths: readonly string[]): void {
    if (this.stopping) return;
    if (paths.length > 0) this.scanner.written(paths);
    this.poll();
  }

  private poll(): void {
    if (this.stopping) return;
    for (const s of this.files.poll(this.clock.now())) this.ship(s);
    if (this.shaper.openCount > 0) this.closeEvents(false);
    this.pump();
    this.trimIfIdle();
  }

  /** Drops the buffers kept for reuse once nothing was read or sent for a while (memory.ts' IdleTrim). */
  private trimIfIdle(): void {
    if (this.idleTrim.check(this.config.poll_interval, this.sender.inflightBytes > 0 || this.sender.queued > 0)) this.events.buffersDropped();
  }

  // --- pump: read while there is room --------------------------------------------------

  private pump(): void {
    if (this.pumping || this.stopping || this.saver.failingSince !== null) return;
    this.pumping = true;
    try {
      const cap = this.config.max_inflight_bytes;
      const ready = this.files.registry.ready;
      // Ends: a read that gives nothing takes its file out of `ready`, and every read that
      // gives something moves an offset forward (or fills the in-flight cap). The set is
      // walked live, not copied: with thousands ready and room for a few dozen reads, a copy
      // per pump was a tenth of the CPU of shipping 10,000 files.
      // A file whose topic is failing stays ready but is passed over (sender.readRoom): the
      // loop ends when a round reads nothing; an ack of that topic pumps again.
      for (let progress = true; progress && ready.size > 0 && this.sender.readRoom(cap) > 0; ) {
        progress = false;
        for (const id of ready) {
          if (this.sender.readRoom(cap) <= 0) break;
          if (this.readFrom(id, cap)) progress = true;
        }
      }
    } finally {
      this.pumping = false;
    }
    this.checkDone();
  }

  /** One read of one ready file, its spans shipped as they come; false when it gave nothing (or its topic is failing). */
  private readFrom(id: string, cap: number): boolean {
    const reads = this.files.read(id, (topic) => this.sender.readRoom(cap, topic));
    for (;;) {
      const r = reads.next();
      if (r.done) return r.value;
      this.ship(r.value);
    }
  }

  /** Packs a span of a file's lines into chunks and queues them for Kafka (tracked by the checkpoint in read order). */
  private ship(shipment: Shipment): void {
    const { source, span, input } = shipment;
    if (span.longLine) this.events.lineTooLong(source.path, span.longLine.offset, span.end - span.start, span.longLine.action);
    const limits = this.packLimits();
    let shaped: ReturnType<Shaper["shape"]>;
    try {
      shaped = this.shaper.shape(shipment, this.config.inputs[input ?? 0] ?? this.config.inputs[0]!, limits, this.clock.wall(), this.clock.now());
    } catch (err) {
      if (!(err instanceof UnshippableError)) throw err;
      // Key and headers alone fill max_message_bytes: skipped (an empty chunk moves the offset), counted and logged.
      this.events.fileUnshippable(source.path, source.file, span.end - span.start, errorText(err));
      shaped = { chunks: pack({ ...span, bytes: span.bytes.subarray(0, 0) }, source, limits), opened: null };
    }
    const chunks: Chunk[] = shaped.chunks;
    this.idleTrim.active();
    if (span.hold) {
      const release = span.hold(chunks.length);
      for (const c of chunks) {
        const own = c.release; // a json value's slab (format.ts)
        c.release = own ? () => (own(), release()) : release;
      }
    }
    this.sender.enqueue(chunks);
    this.shaper.queued(shaped.opened); // an event it opened: its placeholder after the chunks before it
  }

  /** Sends the open multiline events whose timeout passed (all of them with `all`: --once's end, a reload). */
  private closeEvents(all: boolean): void {
    for (const chunks of this.shaper.due(all, this.clock.now(), this.packLimits())) this.sender.enqueue(chunks);
  }

  private packLimits() {
    return { maxMessageBytes: this.config.kafka.max_message_bytes, targetMessageBytes: this.config.kafka.target_message_bytes };
  }

  private onAcked(): void {
    if (this.config.state.flush_interval === 0) this.saveOffsets();
    this.files.registry.forgetRetired();
    this.pump();
  }

  /** --once: finished when every file is read to its size at start and all of it is acknowledged. */
  private checkDone(): void {
    if (!this.opts.once || this.stopping || this.scanning || !this.finishOnce) return;
    if (this.files.registry.ready.size > 0 || this.files.counts.waiting > 0) return;
    if (this.shaper.openCount > 0) this.closeEvents(true); // everything is read: the last events are complete
    if (this.sender.queued > 0) return;
    const done = this.finishOnce;
    this.finishOnce = null;
    done();
  }

  // --- timers and shutdown -------------------------------------------------------------

  private startTimers(): void {
    const c = this.config;
    const every = (ms: number, fn: () => void) => this.timers.push(this.clock.every(ms, fn));
    every(c.scan_interval, () => {
      if (this.pacer.due(this.scanner.watchable, c.scan_interval)) void this.scan().catch((err) => this.events.fileUnreadable("(scan)", errorText(err)));
    });
    every(c.poll_interval, () => this.poll());
    // flush_interval 0: offsets are saved after every acknowledged send (onAcked); the timer
    // then only retries a save that failed, since reading, and so acks, pause meanwhile.
    every(c.state.flush_interval || 1_000, () => {
      if (c.state.flush_interval > 0 || this.saver.failingSince !== null || this.saver.busy) this.saveOffsets();
    });
    if (c.stats_interval > 0) every(c.stats_interval, () => this.events.summary({ filesTracked: this.files.counts.tracked, filesOpen: this.files.counts.open, inflightBytes: this.sender.inflightBytes }));
  }

  private stopTimers(): void {
    for (const cancel of this.timers.splice(0)) cancel();
  }

  /**
   * Writes acknowledged offsets, without waiting for the disk (state/saver.ts). While writing
   * fails (disk full, a disk not answering), reading pauses: shipping on would only grow what a
   * crash re-sends. Offsets stay in memory and the flush timer retries.
   */
  private saveOffsets(): void {
    this.saver.save();
  }

  private async shutdown(deadline: number): Promise<void> {
    this.stopping = true;
    this.ops?.draining();
    this.stopTimers();
    this.pacer.close();
    await this.scanning?.catch(() => {});
    await this.sender.drain(deadline);
    // A last look at the open files: truncations are handled (a copy carries its original on)
    // and short fingerprints lengthened, so what is saved identifies each file as well as it can.
    this.files.lookAll(this.clock.now());
    await this.saver.finalSave(deadline);
    this.files.closeAll();
    await settledWithin(this.clock, this.publisher.close(), deadline);
    await this.saver.close(deadline);
    this.ops?.close();
    this.events.stopped({ unacknowledgedBytes: this.sender.inflightBytes });
  }

  // --- small helpers -------------------------------------------------------------------

  private senderOptions(c: AgentConfig) {
    return { maxMessageBytes: c.kafka.max_message_bytes, maxSendBytes: Math.max(Math.min(MAX_SEND_BYTES, sendShare(c.max_inflight_bytes)), c.kafka.max_message_bytes), maxSendChunks: sendShare(MAX_INFLIGHT_CHUNKS), maxInflightChunks: MAX_INFLIGHT_CHUNKS, retryBackoffMs: c.kafka.retry_backoff, retryBackoffMaxMs: c.kafka.retry_backoff_max };
  }
}
