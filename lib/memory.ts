// Memory policy, in one place: buffer reuse (pools, leases, slabs) and when to ask Bun's
// garbage collector for a collection, with the measurements that justify each constant.
// Nothing else in logship calls Bun.gc or keeps free buffers of its own.
//
// Buffer reuse. Bun frees a large Buffer only when the garbage collector gets to it, so a
// stream of fresh 1 MiB buffers makes the process grow far beyond the data it holds (a
// 250 MB backlog: about 70 MB more peak RSS than with reuse). A BufferPool keeps free
// buffers, up to a byte cap, for the next taker; lease() gives a buffer back once every
// piece cut from it has been released (acknowledged by Kafka, or dropped); a Slab packs
// many small copies (short spans, e.g. of many small files) into one pooled buffer.

import { edenGC, heapSize } from "bun:jsc";
import type { Clock } from "./clock.ts";

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private held = 0;

  constructor(private readonly maxHeldBytes: number) {
    pools.add(new WeakRef(this));
  }

  /** A buffer of exactly `size` bytes, reused when one is free; its contents are garbage. */
  take(size: number): Buffer {
    const list = this.free.get(size);
    const b = list?.pop();
    if (b) {
      this.held -= b.length;
      return b;
    }
    return Buffer.allocUnsafe(size);
  }

  /** Hands a buffer back; nothing may use it afterwards. Kept only while under the cap. */
  give(b: Buffer): void {
    if (this.held + b.length > this.maxHeldBytes) return;
    const list = this.free.get(b.length) ?? [];
    list.push(b);
    this.free.set(b.length, list);
    this.held += b.length;
  }

  get heldBytes(): number {
    return this.held;
  }

  /** Drops every free buffer (to the garbage collector): an idle agent gives its memory back. */
  clear(): void {
    this.free.clear();
    this.held = 0;
  }
}

/** Gives `buffer` back to `pool` after `count` release() calls (one per piece cut from it). */
export function lease(pool: BufferPool, buffer: Buffer, count: number): () => void {
  let left = count;
  if (left <= 0) {
    pool.give(buffer);
    return () => {};
  }
  return () => {
    if (--left === 0) pool.give(buffer);
  };
}

/**
 * Small copies packed one after another into pooled buffers. Each copy holds its slab until
 * every piece cut from it is released; a full slab goes back to the pool when its last
 * holder lets go.
 */
export class Slabs {
  private current: Slab | null = null;

  constructor(
    private readonly pool: BufferPool,
    private readonly slabBytes: number,
  ) {}

  /** Copies `bytes` into a slab; `hold(pieces)` must then be called once, by whoever cuts it. */
  copy(bytes: Uint8Array): { bytes: Buffer; hold: (pieces: number) => () => void } {
    if (bytes.length > this.slabBytes) return { bytes: Buffer.from(bytes), hold: () => () => {} };
    let slab = this.current;
    if (!slab || slab.used + bytes.length > slab.buf.length) {
      slab?.seal();
      slab = this.current = new Slab(this.pool, this.pool.take(this.slabBytes));
    }
    const at = slab.used;
    slab.buf.set(bytes, at);
    slab.used += bytes.length;
    const s = slab;
    return { bytes: slab.buf.subarray(at, at + bytes.length), hold: (pieces) => s.retain(pieces) };
  }

  /** Stops filling the current slab; it goes back to the pool once its holders let go. */
  seal(): void {
    this.current?.seal();
    this.current = null;
  }
}

/**
 * Slabs written in place (format json's values, kafka/json-value.ts): values are written one
 * after another into the current slab (`buf`, from `at`); whoever cuts a record from what was
 * written calls hold() at once, before the next room(); a full slab goes back to the pool
 * when its last holder lets go (measured below, at the json figures).
 */
export class WriteSlabs {
  private current: Slab | null = null;
  buf: Buffer = Buffer.alloc(0);
  at = 0;

  constructor(
    private readonly pool: BufferPool,
    private readonly slabBytes: number,
  ) {}

  /** The slab to write `n` bytes into from `at` now (a fresh one when the current one has no room; the full one is sealed). */
  room(n: number): Buffer {
    if (this.current && this.at + n <= this.buf.length) return this.buf;
    this.current?.seal();
    const next = new Slab(this.pool, this.pool.take(Math.max(this.slabBytes, n)));
    this.current = next;
    this.buf = next.buf;
    this.at = 0;
    return next.buf;
  }

  /** One more holder of the current slab (what was just written in it); call the result once to let go. */
  hold(): () => void {
    return this.current!.retain(1);
  }

  /** Stops filling the current slab; it goes back to the pool once its holders let go. */
  seal(): void {
    this.current?.seal();
    this.current = null;
    this.buf = Buffer.alloc(0);
    this.at = 0;
  }
}

class Slab {
  used = 0;
  private holders = 0;
  private sealed = false;

  constructor(
    private readonly pool: BufferPool,
    readonly buf: Buffer,
  ) {}

  /** Counts `pieces` more holders; the returned function releases one each time it is called. */
  retain(pieces: number): () => void {
    this.holders += pieces;
    return () => {
      this.holders--;
      this.freeIfDone();
    };
  }

  seal(): void {
    this.sealed = true;
    this.freeIfDone();
  }

  private freeIfDone(): void {
    if (this.sealed && this.holders === 0) this.pool.give(this.buf);
  }
}

// --- When to collect -------------------------------------------------------------------

/** Every pool made, so an idle process can drop what they all keep (the pools live as long as their owner). */
const pools = new Set<WeakRef<BufferPool>>();

/**
 * A scan that finds thousands of new (or, at start, remembered) files identifies them all in
 * one go, and so does the first pass over them for reading; Bun collects little meanwhile:
 * the garbage of identifying (stat results, heads, hashes) piles up. A young-generation
 * collection after every this many files observed keeps that pile small, at no measurable
 * cost: a restart with 10,000 remembered files peaked at 88 MB instead of 106, a first run
 * over 10,000 new files at 114 instead of 119 (a full collection took that to 106, but
 * cost 20% more time).
 */
const GC_OBSERVATIONS = 500;
/**
 * Bytes sent between two hints to the garbage collector. Bun collects only when the JS
 * heap grows, and counts a Buffer's bytes late, so the read and encode garbage of a backlog
 * piles up: measured on the 250 MB backlog, a collection every 32 MiB: about 20 MB less peak
 * RSS, no measurable CPU. A hint is a young collection (bun:jsc edenGC, synchronous, of what
 * was allocated since the last): Bun.gc(false), which it replaced, schedules a collection of
 * its own choosing, and 100,000 files of 1 KB took 8.5 CPU s under it, 6.5 under edenGC, at the
 * same peak RSS (the backlog, many-files and short-lines sets: the same or less CPU).
 */
const GC_HINT_BYTES = 32 * 1024 * 1024;
/**
 * Small records leave garbage too: 10,000 files of 20 KB peaked at 190 MB without a hint per
 * 64 records, 149 MB with it, when kafkajs made objects per record. Records cost no objects
 * in the encoding now (kafka/records.ts), and a hint per send of thousands of records (a
 * record per line) was 12% of `format: line`'s CPU; what a record per line leaves behind is
 * handled by the heap check below.
 */
const GC_HINT_RECORDS = 65_536;
/**
 * Chunks kept until Kafka acknowledges them outlive young collections, and Bun's collector
 * lets the old generation grow to several times what is alive. When `format: line` and `json`
 * made a chunk per line (three small objects: chunk, value view, checkpoint range), the 250 MB
 * backlog as `line` peaked at 175 MB (68 MB anonymous, at a JS heap of 50-76 MB). So sends of
 * many chunks bring a full collection every FULL_GC_RECORDS of their lines (a few ms each:
 * what is alive is the chunks in flight, agent.ts' MAX_INFLIGHT_CHUNKS). Since format.ts
 * gathers a read's lines into runs (up to 128 records a chunk), a send of `line` or `json`
 * holds a few dozen chunks and never comes here; multiline `json` events (a chunk each) do.
 * The measurements, from the chunk-per-line days:
 * Measured on the backlog set (bench line and json, medians of 3, same runs as kcat; 4,096
 * records in flight): no full collections: line 1.30 CPU s, peak RSS 142 MB, json 182 MB;
 * every 65,536 records: 1.55 CPU s, 110 MB, json 132 MB; every 32,768: 1.61 CPU s, 96 MB,
 * json 123 MB. (Asking bun:jsc's heapSize() after each send instead, with a 24 MB limit, gave
 * about the same, but heapSize() itself showed up in the profile.) The memory target (100 MB)
 * chose the last; it costs `line` about a fifth of its speed.
 */
const FULL_GC_RECORDS = 32_768;
/**
 * Lines decoded to text between two collection hints (Collector.decoded): on the backlog set
 * as `line` + multiline, every 16,384 decoded lines: 93 MB peak RSS, 4.7 CPU s/GB; every
 * 65,536: 114 MB, 4.4 CPU s/GB (one run each, at a load average near 4).
 */
const DECODED_LINES = 16_384;
/** Sends of fewer records (packed) leave no such pile: the heap is not even looked at (heapSize() costs about 12 µs). */
const HEAP_CHECK_RECORDS = 256;
/**
 * A full collection when the JS heap has grown by this share, plus FULL_GC_SLACK, since the
 * last one (checked, cheaply, at each young-collection hint above). Bun's own policy lets the
 * heap grow to about twice what is live before a full collection; what waits for Kafka lives
 * across young collections, so it dies in the old generation. With 100,000 files followed
 * (about 150 MB of them live) `run --once` peaked at 384 MB; at 1.25 + 16 MB, 300 MB; at
 * 1.2 + 8 MB, 285 MB; at 1.15 + 8 MB, 270 MB (bench --scenario many-files-100k, whose longer
 * paths add about 20 MB to each), no CPU difference above the noise (backlog, many-files and
 * short-lines alike). A small heap (a few files) is collected in full only every
 * FULL_GC_SLACK of growth, which costs a few milliseconds.
 */
const FULL_GC_GROWTH = 1.15;
const FULL_GC_SLACK = 8 * 1024 * 1024;

/**
 * After this many poll intervals with nothing read and nothing in flight, the buffers kept
 * for reuse (read buffers, slabs, encoder buffers) are dropped and collected: an idle agent
 * with 1,000 files holds about 5 MB less.
 */
export const IDLE_TRIM_POLLS = 10;

/** The process's collection hints. Bun's collector is one per process, and so are these counts. */
class Collector {
  private observedSince = 0;
  private heapAfterFull = -1; // heap size after the last full collection (-1: none yet)
  /** Collections asked for: young (edenGC) and full (for tests and diagnostics). */
  readonly counts = { young: 0, full: 0 };
  private bytesSince = 0;
  private recordsSince = 0;
  private decodedSince = 0;
  private manySince = 0; // lines of sends of many records since the last full collection

  /** A file was observed (stat and head read): a young collection every GC_OBSERVATIONS. */
  observed(): void {
    if (++this.observedSince < GC_OBSERVATIONS) return;
    this.observedSince = 0;
    this.collect();
  }

  /**
   * Lines were decoded to text (multiline patterns, filters, redaction): a collection hint
   * every DECODED_LINES of them. The texts die at once, but a backlog decodes millions: as
   * `line` + multiline on the backlog set, 114-116 MB peak RSS with only the hints per bytes sent.
   */
  decoded(lines: number): void {
    if (lines === 0 || (this.decodedSince += lines) < DECODED_LINES) return;
    this.decodedSince = 0;
    this.collect();
  }

  /** Chunks were sent to Kafka (`records`: the chunks, a run of lines counting once): a young collection every GC_HINT_BYTES or GC_HINT_RECORDS; a full one every FULL_GC_RECORDS lines of sends of many chunks. */
  sent(bytes: number, records: number, lines = records): void {
    this.bytesSince += bytes;
    this.recordsSince += records;
    // Counted in lines: a multiline event leaves each of its lines' garbage (the text its pattern saw).
    if (records >= HEAP_CHECK_RECORDS && (this.manySince += lines) >= FULL_GC_RECORDS) {
      this.manySince = 0;
      this.bytesSince = 0;
      this.recordsSince = 0;
      return this.full();
    }
    if (this.bytesSince < GC_HINT_BYTES && this.recordsSince < GC_HINT_RECORDS) return;
    this.bytesSince = 0;
    this.recordsSince = 0;
    this.collect();
  }

  /** A young collection, or a full one when the heap grew by FULL_GC_GROWTH since the last. */
  private collect(): void {
    const heap = heapSize();
    if (this.heapAfterFull < 0) this.heapAfterFull = heap; // the first hint: growth is counted from here
    if (heap > this.heapAfterFull * FULL_GC_GROWTH + FULL_GC_SLACK) return this.full();
    this.counts.young++;
    edenGC();
  }

  private full(): void {
    this.counts.full++;
    Bun.gc(true);
    this.heapAfterFull = heapSize();
  }

  /** Drops every pool's free buffers (buffers in use are not affected) and collects fully. */
  dropReusable(): void {
    for (const ref of pools) {
      const pool = ref.deref();
      if (pool) pool.clear();
      else pools.delete(ref);
    }
    Bun.gc(true);
    this.heapAfterFull = heapSize();
  }
}

export const collector = new Collector();

/**
 * Idle trimming: once nothing was read or sent for IDLE_TRIM_POLLS poll intervals, the
 * buffers kept for reuse are dropped, once per quiet spell. The agent reports activity and
 * asks at each poll; `seal` lets it close its own partly filled slab first.
 */
export class IdleTrim {
  private lastActive: number;
  private trimmed = false;

  constructor(
    private readonly clock: Clock,
    private readonly seal: () => void,
  ) {
    this.lastActive = clock.now();
  }

  /** Bytes were read to ship. */
  active(): void {
    this.lastActive = this.clock.now();
    this.trimmed = false;
  }

  /** At a poll: trims when quiet long enough and nothing waits for Kafka (`busy`). Returns true when it trimmed. */
  check(pollIntervalMs: number, busy: boolean): boolean {
    const quiet = this.clock.now() - this.lastActive >= IDLE_TRIM_POLLS * pollIntervalMs;
    if (this.trimmed || !quiet || busy) return false;
    this.trimmed = true;
    this.seal();
    collector.dropReusable();
    return true;
  }
}
