// Reading: a Tail reads one open file forward from an offset and hands out Spans of
// complete lines, byte for byte (CRLF, NUL and invalid UTF-8 included). Bytes after the
// last "\n" stay unread until their newline arrives, or until the agent decides the line
// has been idle long enough and calls flushPartial(). A line longer than max_line_bytes is
// split, truncated or dropped as configured, with memory bounded by max_line_bytes.
// The Tail never decides what is acknowledged: its offset is the read position only.

import { closeSync, fstatSync, readSync } from "node:fs";
import type { LongLines } from "./config.ts";

const NL = 0x0a;

/** Bytes of one file ready to pack, and the file range they account for. */
export interface Span {
  bytes: Buffer; // complete lines; or one piece of an over-long line; or empty (skipped bytes)
  start: number; // file offset of the first byte accounted for
  end: number; // file offset just past the bytes accounted for (> start + bytes.length when bytes were skipped)
  longLine?: { action: LongLines; offset: number }; // set when this span began handling an over-long line
}

export interface TailOptions {
  maxLineBytes: number;
  longLines: LongLines;
  readBytes: number; // bytes asked of the OS per read
}

export class Tail {
  /** Next byte to read; always the start of a line, or of the rest of a split line. */
  offset: number;
  /** How far bytes are known to hold no "\n" (offset ≤ scanned): the pending partial line ends here. */
  private scanned: number;
  /** Inside an over-long line whose rest is being truncated or dropped. */
  private skipping = false;

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

  /** Current size of the file behind the descriptor. */
  size(): number {
    return fstatSync(this.fd).size;
  }

  /** True when the file holds bytes this Tail has not looked at yet. */
  hasNewBytes(size: number): boolean {
    return size > this.scanned;
  }

  /**
   * Reads the next span of complete lines, or null when nothing complete is available.
   * Never returns more than max(readBytes, maxLineBytes + 1) bytes.
   */
  read(): Span | null {
    const start = this.offset;
    let want = this.opts.readBytes;
    for (;;) {
      const buf = Buffer.allocUnsafe(want);
      const n = readFull(this.fd, buf, start);
      if (n === 0) return null;
      if (this.skipping) return this.skip(buf, n, start);
      const last = buf.lastIndexOf(NL, n - 1);
      if (last >= 0) {
        this.offset = start + last + 1;
        this.scanned = Math.max(this.scanned, this.offset);
        return { bytes: buf.subarray(0, last + 1), start, end: this.offset };
      }
      // No newline in n bytes: a partial line, or a line longer than we looked at.
      if (n < want) {
        this.scanned = start + n;
        return null;
      }
      if (n > this.opts.maxLineBytes) return this.overLong(buf, start);
      want = this.opts.maxLineBytes + 1; // look at the whole allowed line at once
    }
  }

  /** Hands out a pending partial line (no "\n" yet) as it is; the next line starts after it. */
  flushPartial(): Span | null {
    const len = this.scanned - this.offset;
    if (len <= 0 || this.skipping) return null;
    const buf = Buffer.allocUnsafe(len);
    const n = readFull(this.fd, buf, this.offset);
    if (n === 0) return null;
    const start = this.offset;
    this.offset += n;
    this.scanned = Math.max(this.scanned, this.offset);
    return { bytes: buf.subarray(0, n), start, end: this.offset };
  }

  /** Starts the file again from `offset` (after truncation). */
  rewind(offset: number): void {
    this.offset = offset;
    this.scanned = offset;
    this.skipping = false;
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

  private overLong(buf: Buffer, start: number): Span {
    const max = this.opts.maxLineBytes;
    const action = this.opts.longLines;
    const longLine = { action, offset: start };
    switch (action) {
      case "split":
        this.offset = start + max;
        this.scanned = this.offset;
        return { bytes: buf.subarray(0, max), start, end: this.offset, longLine };
      case "truncate": {
        this.skipping = true;
        this.offset = start + max + 1; // byte max is known not to be "\n"
        this.scanned = this.offset;
        const bytes = Buffer.allocUnsafe(max + 1);
        buf.copy(bytes, 0, 0, max);
        bytes[max] = NL;
        return { bytes, start, end: this.offset, longLine };
      }
      case "drop":
        this.skipping = true;
        this.offset = start + max + 1;
        this.scanned = this.offset;
        return { bytes: Buffer.alloc(0), start, end: this.offset, longLine };
      default: {
        const never: never = action;
        throw new Error(`unknown long_lines ${String(never)}`);
      }
    }
  }

  /** Discards the rest of an over-long line up to and including its "\n". */
  private skip(buf: Buffer, n: number, start: number): Span {
    const nl = buf.subarray(0, n).indexOf(NL);
    if (nl >= 0) this.skipping = false;
    const through = nl >= 0 ? nl + 1 : n;
    this.offset = start + through;
    this.scanned = Math.max(this.scanned, this.offset);
    return { bytes: Buffer.alloc(0), start, end: this.offset };
  }
}

/** Reads into buf from `position` until full or EOF; returns the byte count. */
function readFull(fd: number, buf: Buffer, position: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
