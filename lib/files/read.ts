// Reading: a Tail reads one open file forward from an offset and hands out Spans of
// complete lines, byte for byte (CRLF, NUL and invalid UTF-8 included). Bytes after the
// last "\n" stay unread until their newline arrives, or until the agent decides the line
// has been idle long enough and calls flushPartial(). A line longer than max_line_bytes
// (its "\n" not counted) is always handled alone, wherever it falls in a read: split into
// max_line_bytes pieces, truncated to its first max_line_bytes bytes plus "\n", or dropped,
// as configured. Reads land in one buffer shared by all Tails (reading is synchronous) and
// each span's bytes are copied out of it, so a span holds exactly its own bytes: what waits
// for Kafka is what max_inflight_bytes counts, however many files have a short line waiting.
// Memory is bounded whatever a line's length: the rest of a truncated or dropped line is
// read into the same shared buffer and never handed out.
// With a BufferPool (the agent's), ordinary reads land in a pooled buffer instead: a span
// that fills at least a quarter of it is handed out in place (no copy), a shorter one is
// copied into a shared slab (e.g. the lines of many small files); either way the span's
// `hold` ties the buffer to the chunks cut from it, and it returns to the pool once every
// one of them is released (acknowledged or dropped).
// The Tail never decides what is acknowledged: its offset is the read position only.

import { closeSync } from "node:fs";
import { lease, type BufferPool, type Slabs } from "../memory.ts";
import type { LongLines } from "../config.ts";
import { readAt } from "./identify.ts";

const NL = 0x0a;

/** Where a file's records come from and go to: what every chunk cut from its spans carries. */
export interface Source {
  file: string; // stable file identity (the `file` header)
  path: string;
  topic: string;
  host: string;
}

/** A span of one file's lines, and where they come from: what the agent packs and sends. */
export interface Shipment {
  source: Source;
  span: Span;
  input?: number; // the index of the input the file belongs to (its format, filters); absent: the first
}

/** Bytes of one file ready to pack, and the file range they account for. */
export interface Span {
  bytes: Buffer; // complete lines; or one piece of an over-long line; or empty (skipped bytes)
  start: number; // file offset of the first byte accounted for
  end: number; // file offset just past the bytes accounted for (> start + bytes.length when bytes were skipped)
  longLine?: { action: LongLines; offset: number }; // set when this span began handling an over-long line
  hold?: (pieces: number) => () => void; // bytes lie in a pooled buffer: call once with the number of chunks cut from them; each chunk calls the returned release once
}

export interface TailOptions {
  maxLineBytes: number;
  longLines: LongLines;
  readBytes: number; // bytes asked of the OS per read
  pool?: BufferPool; // where read buffers come from and go back to
  slabs?: Slabs; // where short spans are copied to (with pool)
}

/**
 * The smallest read asked for, as a share of readBytes, however little room the in-flight
 * cap leaves: half a buffer, so a full read is handed out in place (see handOut) rather
 * than copied, and the cap is passed by at most half a read.
 */
const MIN_READ_SHARE = 0.5;

export class Tail {
  /** Next byte to read; always the start of a line, or of the rest of a split line. */
  offset: number;
  /** How far bytes are known to hold no "\n" (offset ≤ scanned): the pending partial line ends here. */
  private scanned: number;
  /** Inside an over-long line whose rest is being truncated or dropped. */
  private skipping = false;
  /** Inside an over-long line being split: its next pieces are not another long line. */
  private splitting = false;

  constructor(
    public fd: number,
    offset: number,
    private readonly opts: TailOptions,
  ) {
    this.offset = offset;
    this.scanned = offset;
  }

  /** Bytes of an unfinished last line already seen (waiting for "\n"). */
  get partialBytes(): number {
    return this.scanned - this.offset;
  }


  /** True when the file holds bytes this Tail has not looked at yet. */
  hasNewBytes(size: number): boolean {
    return size > this.scanned;
  }

  /**
   * Reads the next span of complete lines, or null when nothing complete is available.
   * Never returns more than max(readBytes, maxLineBytes + 1) bytes. A span never holds a
   * line longer than maxLineBytes (its "\n" not counted): such a line is handled alone.
   * `limit` asks for less than readBytes (the room left under the in-flight cap), down to
   * half of readBytes; a line that does not fit is still read whole.
   */
  read(limit = this.opts.readBytes): Span | null {
    const start = this.offset;
    const max = this.opts.maxLineBytes;
    if (this.skipping) return this.skip(start);
    let want = Math.min(this.opts.readBytes, Math.max(Math.ceil(this.opts.readBytes * MIN_READ_SHARE), limit));
    for (;;) {
      const pool = want <= this.opts.readBytes ? this.opts.pool : undefined;
      const buf = pool ? pool.take(this.opts.readBytes) : readBuffer(want);
      const n = readAt(this.fd, buf, want, start);
      const end = n === 0 ? 0 : this.completeLines(buf, n);
      if (end > 0) {
        this.splitting = false;
        this.offset = start + end;
        this.scanned = Math.max(this.scanned, this.offset);
        return handOut(buf, end, pool, this.opts.slabs, { start, end: this.offset });
      }
      const nl = n === 0 ? -1 : buf.subarray(0, n).indexOf(NL);
      const overLong = nl > max || (nl < 0 && n > max) ? this.overLong(buf, start, nl) : null;
      pool?.give(buf); // nothing below keeps a view of it
      if (n === 0) return null;
      if (overLong) return overLong;
      // No newline in n bytes: a partial line, or a line longer than we looked at.
      if (n < want) {
        this.scanned = start + n;
        return null;
      }
      want = max + 1; // look at the whole allowed line at once
    }
  }

  /** Length of the leading complete lines of buf[0, n) that are each within maxLineBytes. */
  private completeLines(buf: Buffer, n: number): number {
    const max = this.opts.maxLineBytes;
    const last = buf.lastIndexOf(NL, n - 1);
    if (last < 0) return 0;
    if (last <= max) return last + 1; // no line in here can be too long
    let pos = 0;
    while (pos <= last) {
      const nl = buf.indexOf(NL, pos);
      if (nl - pos > max) return pos; // an over-long line starts at pos: stop before it
      pos = nl + 1;
    }
    return last + 1;
  }

  /** Hands out a pending partial line (no "\n" yet) as it is; the next line starts after it. */
  flushPartial(): Span | null {
    const len = this.scanned - this.offset;
    if (len <= 0 || this.skipping) return null;
    const buf = Buffer.allocUnsafe(len);
    const n = readAt(this.fd, buf, len, this.offset);
    if (n === 0) return null;
    const start = this.offset;
    this.offset += n;
    this.scanned = Math.max(this.scanned, this.offset);
    this.splitting = false;
    return { bytes: buf.subarray(0, n), start, end: this.offset };
  }

  /** Starts the file again from `offset` (after truncation). */
  rewind(offset: number): void {
    this.offset = offset;
    this.scanned = offset;
    this.skipping = false;
    this.splitting = false;
  }

  close(): void {
    if (this.fd < 0) return;
    try {
      closeSync(this.fd);
    } catch {
      // already closed: nothing to release
    }
    this.fd = -1;
  }

  /**
   * Handles the over-long line at the start of buf, of which at least maxLineBytes + 1 bytes
   * are in buf; `nl` is its newline's index in buf, or -1 when the newline is further on.
   */
  private overLong(buf: Buffer, start: number, nl: number): Span {
    const max = this.opts.maxLineBytes;
    const action = this.opts.longLines;
    const longLine = this.splitting ? undefined : { action, offset: start };
    // Past the kept part: the line's end when its newline is in sight, else skip until it comes.
    const past = nl >= 0 ? start + nl + 1 : start + max + 1; // byte max is known not to be "\n"
    switch (action) {
      case "split":
        this.splitting = true;
        this.offset = start + max;
        this.scanned = this.offset;
        return { bytes: Buffer.from(buf.subarray(0, max)), start, end: this.offset, ...(longLine && { longLine }) };
      case "truncate": {
        this.skipping = nl < 0;
        this.offset = past;
        this.scanned = this.offset;
        const bytes = Buffer.allocUnsafe(max + 1);
        buf.copy(bytes, 0, 0, max);
        bytes[max] = NL;
        return { bytes, start, end: this.offset, ...(longLine && { longLine }) };
      }
      case "drop":
        this.skipping = nl < 0;
        this.offset = past;
        this.scanned = this.offset;
        return { bytes: Buffer.alloc(0), start, end: this.offset, ...(longLine && { longLine }) };
      default: {
        const never: never = action;
        throw new Error(`unknown long_lines ${String(never)}`);
      }
    }
  }

  /** Discards the rest of an over-long line up to and including its "\n" (read into one reused buffer). */
  private skip(start: number): Span | null {
    const want = this.opts.readBytes;
    const buf = readBuffer(want);
    const n = readAt(this.fd, buf, want, start);
    if (n === 0) return null;
    const nl = buf.subarray(0, n).indexOf(NL);
    if (nl >= 0) this.skipping = false;
    const through = nl >= 0 ? nl + 1 : n;
    this.offset = start + through;
    this.scanned = Math.max(this.scanned, this.offset);
    return { bytes: Buffer.alloc(0), start, end: this.offset };
  }
}

/**
 * Bytes [0, end) of buf as a span: in place when they fill a quarter of a pooled buffer or
 * more (so what waits for Kafka pins at most 4× its size), else copied out (into a slab).
 */
function handOut(buf: Buffer, end: number, pool: BufferPool | undefined, slabs: Slabs | undefined, range: { start: number; end: number }): Span {
  if (!pool) return { bytes: Buffer.from(buf.subarray(0, end)), ...range };
  if (end * 4 >= buf.length) return { bytes: buf.subarray(0, end), ...range, hold: (pieces) => lease(pool, buf, pieces) };
  const copied = slabs ? slabs.copy(buf.subarray(0, end)) : { bytes: Buffer.from(buf.subarray(0, end)) };
  pool.give(buf);
  return { ...copied, ...range };
}

/** The buffer every read lands in, grown to the largest read asked for; nothing handed out points into it. */
let shared = Buffer.allocUnsafe(0);

function readBuffer(size: number): Buffer {
  if (shared.length < size) shared = Buffer.allocUnsafe(size);
  return shared;
}
