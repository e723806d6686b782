// The records of one span (or one event) in the `line` and `json` formats: Units turns lines
// and events into chunks in order, gathering consecutive records of one read into runs (up to
// RUN_RECORDS records or RUN_BYTES), cutting a value too large for a record in halves, leaving
// filtered-out lines as empty ranges, and redacting before anything is encoded. format.ts
// decides what the units are (lines, multiline events); this module only records them.
//
// Invariant: the chunks cover the span's bytes in order, without gap or overlap (a filtered
// line is an empty chunk over its bytes), so the checkpoint moves over a line only once every
// record before it is acknowledged; a run never holds a filtered line.

import { isUtf8 } from "node:buffer";
import { isBytesName, lossyName } from "../names.ts";
import { BATCH_OVERHEAD, compressionSlack, countLines, recordOverhead, UnshippableError, type Chunk, type PackLimits, type Source } from "./pack.ts";
import type { EventFormat, FormatReport, OpenEvent } from "./format.ts";
import { JsonValues, jsonSlabs } from "./json-value.ts";
import { digitsOf } from "./records.ts";

const NL = 0x0a;
const EMPTY = Buffer.alloc(0);

/** Record framing of a chunk of `source` at `offset` under `fmt`: today's, with its key and the field headers. */
function overheadOf(fmt: EventFormat, source: Source, offset: number): number {
  const keyBytes = fmt.key === undefined ? Buffer.byteLength(source.path) : fmt.key === null ? 0 : Buffer.byteLength(fmt.key);
  return recordOverhead(source, offset) - Buffer.byteLength(source.path) + keyBytes + fmt.fieldHeaderBytes;
}

/** The records of one span (or one event): units in order, filtered ones as empty ranges. */
export class Units {
  readonly chunks: Chunk[] = [];
  private skipFrom = -1; // start of a run of filtered-out units not yet accounted for
  private skipEnd = -1;
  private dropped = 0;
  decoded = 0; // lines decoded for filters or redaction
  private readonly ctx: LineCtx;
  private readonly needText: boolean;
  private readonly filtering: boolean;
  private readonly room: number;

  constructor(
    private readonly source: Source,
    private readonly fmt: EventFormat,
    private readonly limits: PackLimits,
    report?: FormatReport,
  ) {
    this.filtering = fmt.include.length > 0 || fmt.exclude.length > 0;
    this.needText = this.filtering || fmt.redact.length > 0; // json decodes only lines that are not plain ASCII (emit)
    this.ctx = { source, fmt, timestamp: "", report, envelope: "", capacity: (o) => this.capacity(o), json: null, add: (b, f, t, o, vb, vf, vt, l, s) => this.add(b, f, t, o, vb, vf, vt, l, s) };
    this.runs = fmt.multiline === null || fmt.format === "line"; // json's multiline events stay a chunk each
    this.byEnds = fmt.multiline !== null || fmt.format === "json";
    this.json = fmt.format === "json";
    if (fmt.format === "json") {
      this.ctx.envelope = `,"host":${JSON.stringify(source.host)},"path":${JSON.stringify(lossyName(source.path))}${isBytesName(source.path) ? ',"path_invalid_utf8":true' : ""},"offset":`;
      this.ctx.json = new JsonValues(this.ctx.envelope, source.file, fmt.fieldsJson);
    }
    this.room = limits.maxMessageBytes - BATCH_OVERHEAD;
    this.runCap = Math.min(RUN_BYTES, this.room);
    this.base = overheadOf(fmt, source, 0) - 1; // the framing but the offset's digits
  }

  // The run being gathered (see RUN_RECORDS): records whose file bytes, and json values, lie one
  // after another, each line ending in "\n" but perhaps the last.
  private readonly runs: boolean; // records are gathered in runs
  private readonly byEnds: boolean; // a run keeps where each record's value ends (json; multiline events)
  private readonly json: boolean;
  private readonly runCap: number;
  private runBytes: Buffer | null = null; // the read its lines lie in, from runFrom
  private runFrom = 0;
  private runSlab: Buffer | null = null; // json: the slab its values lie in, from runVFrom
  private runVFrom = 0;
  private runRawLen = 0;
  private runValLen = 0;
  private runN = 0;
  private runSize = 0;
  private runLines = 0;
  private runStart = 0;
  private runEnd = 0;
  private runOpen = false; // the last record's line has no "\n": nothing may follow it in the run
  private runRelease: (() => void) | undefined = undefined; // json: lets go of the slab its values lie in

  /**
   * One record: the file bytes bytes[from, to) at `offset`, its value vbuf[vfrom, vto) (json's
   * slab, or a redacted line; null: the bytes themselves), its lines and size.
   */
  private add(bytes: Buffer, from: number, to: number, offset: number, vbuf: Buffer | null, vfrom: number, vto: number, lines: number, size: number): void {
    const json = this.json;
    const len = to - from;
    if (!this.runs || (!json && vbuf !== null)) {
      this.flushRun();
      const raw = from === 0 && to === bytes.length ? bytes : bytes.subarray(from, to); // an event is all of its bytes
      const value = vbuf === null ? raw : vbuf.subarray(vfrom, vto);
      this.chunks.push(this.chunk(value, offset, offset + len, lines, size, vbuf === null ? undefined : raw, undefined, undefined, json ? jsonSlabs.hold() : undefined));
      return;
    }
    if (
      this.runN > 0 &&
      !this.runOpen &&
      this.runN < RUN_RECORDS &&
      this.runSize + size <= this.runCap &&
      offset === this.runEnd &&
      this.runEnd === this.runStart + this.runRawLen &&
      bytes === this.runBytes &&
      from === this.runFrom + this.runRawLen &&
      (!json || (vbuf === this.runSlab && vfrom === this.runVFrom + this.runValLen))
    ) {
      this.runRawLen += len;
      if (json) this.runValLen += vto - vfrom;
      if (this.byEnds) RUN_ENDS[this.runN] = json ? this.runValLen : this.runRawLen;
      this.runN++;
      this.runSize += size;
      this.runLines += lines;
      this.runEnd = offset + len;
      this.runOpen = bytes[to - 1] !== NL;
      return;
    }
    this.flushRun();
    this.runRelease = json ? jsonSlabs.hold() : undefined; // now: the slab may be sealed before the run is complete
    this.runBytes = bytes;
    this.runFrom = from;
    this.runRawLen = len;
    this.runSlab = vbuf;
    this.runVFrom = vfrom;
    this.runValLen = vto - vfrom;
    RUN_ENDS[0] = json ? this.runValLen : len;
    this.runN = 1;
    this.runSize = size;
    this.runLines = lines;
    this.runStart = offset;
    this.runEnd = offset + len;
    this.runOpen = len === 0 || bytes[to - 1] !== NL;
  }

  /** The run gathered so far becomes a chunk (a plain one for a single record). */
  private flushRun(): void {
    const n = this.runN;
    if (n === 0) return;
    const raw = this.runBytes!.subarray(this.runFrom, this.runFrom + this.runRawLen);
    const value = this.json ? this.runSlab!.subarray(this.runVFrom, this.runVFrom + this.runValLen) : raw;
    const many = n > 1;
    this.chunks.push(this.chunk(value, this.runStart, this.runEnd, this.runLines, this.runSize, this.json ? raw : undefined, many ? n : undefined, many && this.byEnds ? RUN_ENDS.slice(0, n) : undefined, this.runRelease));
    this.runRelease = undefined;
    this.runN = 0;
    this.runBytes = null;
    this.runSlab = null;
  }

  private chunk(value: Buffer, start: number, end: number, lines: number, size: number, raw: Buffer | undefined, run: number | undefined, ends: Int32Array | undefined, release: (() => void) | undefined): Chunk {
    const fmt = this.fmt;
    // Every field a chunk ever gets, set here: one object shape, no storage added later (sender's queuedAt).
    return {
      source: this.source, value, start, end, lines, size,
      release, queuedAt: undefined,
      key: fmt.key,
      fields: fmt.format === "line" && fmt.fieldHeaderBytes > 0 ? fmt.fields : undefined,
      raw, run, ends,
    };
  }

  /** The end of the latest record (a run's or a chunk's) moves to `end` (skipped bytes after its line). */
  private setEnd(end: number): void {
    if (this.runN > 0) this.runEnd = end;
    else this.chunks[this.chunks.length - 1]!.end = end;
  }

  timestamp(wall: number): void {
    if (this.fmt.format !== "json") return;
    this.ctx.timestamp = new Date(wall).toISOString();
    this.ctx.json!.timestamp(this.ctx.timestamp);
  }

  private readonly base: number;
  /** capacity()'s answers by the offset's number of digits (it asked per line; they only differ by digits). */
  private readonly byDigits: ({ overhead: number; cap: number } | undefined)[] = [];

  capacity(offset: number): { overhead: number; cap: number } {
    const digits = digitsOf(offset);
    const known = this.byDigits[digits];
    if (known) return known;
    const overhead = this.base + digits;
    const cap = this.room - compressionSlack(this.room) - overhead;
    if (cap < 1) throw new UnshippableError(`kafka.max_message_bytes (${this.limits.maxMessageBytes}) leaves no room for a line: the key and headers of a record of this file take ${overhead} bytes (its path is ${Buffer.byteLength(this.source.path)} bytes)`);
    return (this.byDigits[digits] = { overhead, cap });
  }

  /** One line or event: bytes[from, to), at file offset `offset`, accounting for [offset, end). */
  unit(bytes: Buffer, from: number, to: number, offset: number, end: number): void {
    let text: string | undefined;
    if (this.needText) {
      text = decode(bytes.subarray(from, to));
      this.decoded++;
      if (this.filtering && !wanted(this.fmt, text)) {
        this.dropped++;
        if (this.skipFrom < 0) this.skipFrom = offset;
        this.skipEnd = end;
        return;
      }
    }
    if (this.skipFrom >= 0) {
      this.flushRun();
      this.chunks.push({ source: this.source, value: EMPTY, start: this.skipFrom, end: offset, lines: 0, size: 0 });
      this.skipFrom = -1;
    }
    emit(this.ctx, bytes, from, to, offset, text);
    if (end !== offset + to - from) this.setEnd(end);
  }

  /** A multiline event: its bytes bytes[from, to). */
  event(ev: OpenEvent, bytes: Buffer, from: number, to: number): void {
    const saved = this.ctx.timestamp;
    this.timestamp(ev.wall);
    this.unit(bytes, from, to, ev.start, ev.end);
    this.ctx.timestamp = saved;
    this.ctx.json?.timestamp(saved);
  }

  /** The chunks; `end`: the span's end, which the last one also accounts for (null: an event stays open, or none). */
  finish(end: number | null): Chunk[] {
    this.flushRun();
    if (this.skipFrom >= 0) this.chunks.push({ source: this.source, value: EMPTY, start: this.skipFrom, end: this.skipEnd, lines: 0, size: 0 });
    if (end !== null && this.chunks.length > 0) this.chunks[this.chunks.length - 1]!.end = end; // skipped bytes of the last line
    if (this.dropped > 0) this.ctx.report?.filtered(this.source, this.dropped);
    return this.chunks;
  }
}

interface LineCtx {
  source: Source;
  fmt: EventFormat;
  timestamp: string;
  envelope: string;
  report?: FormatReport;
  capacity: (offset: number) => { overhead: number; cap: number };
  json: JsonValues | null; // json: where values are written
  add: (bytes: Buffer, from: number, to: number, offset: number, vbuf: Buffer | null, vfrom: number, vto: number, lines: number, size: number) => void; // a record: into the run, or a chunk of its own
}

/**
 * Records a run holds at most, and the bytes of its records (sizes as pack.ts counts them).
 * A run is one chunk for many lines: one object and one checkpoint range instead of one per
 * line (kept until Kafka acknowledges them, they made `line` spend a fifth of its CPU on full
 * collections, memory.ts). A run stays within one record batch, and a send is 2,048 records.
 */
const RUN_RECORDS = 128;
const RUN_BYTES = 64 * 1024;
/** The json values' ends of the run being gathered (one run at a time: one thread formats). */
const RUN_ENDS = new Int32Array(RUN_RECORDS);

const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** A line as text: without its final "\n", invalid sequences as U+FFFD. */
export function decode(raw: Uint8Array): string {
  const n = raw.length > 0 && raw[raw.length - 1] === NL ? raw.length - 1 : raw.length;
  return decoder.decode(raw.subarray(0, n));
}

function wanted(fmt: EventFormat, text: string): boolean {
  if (fmt.include.length > 0 && !fmt.include.some((re) => re.test(text))) return false;
  return !fmt.exclude.some((re) => re.test(text));
}

/** Whether the bytes of a line (its "\n" aside) are not UTF-8; checked only when the text holds U+FFFD. */
function isInvalid(raw: Uint8Array, text: string): boolean {
  if (!text.includes("\uFFFD")) return false;
  const n = raw.length > 0 && raw[raw.length - 1] === NL ? raw.length - 1 : raw.length;
  return !isUtf8(raw.subarray(0, n));
}

/** Adds the record(s) of the line bytes[from, to) (`text`: its decoded form, when needed); a value too large for a record is cut in halves, each its own event. */
function emit(ctx: LineCtx, bytes: Buffer, from: number, to: number, offset: number, text: string | undefined): void {
  const { fmt, source } = ctx;
  const { overhead, cap } = ctx.capacity(offset);
  const len = to - from;
  const json = fmt.format === "json";
  let vbuf: Buffer | null = null; // null: the value is the line itself
  let vfrom = 0;
  let vto = 0;
  let bad = false;
  if (json) {
    // A plain ASCII line is escaped byte by byte; any other is decoded (and redacted) first.
    let at = text === undefined ? ctx.json!.plain(bytes, from, to, offset) : -1;
    if (at < 0) {
      const raw = bytes.subarray(from, to);
      if (text === undefined) text = decode(raw);
      bad = isInvalid(raw, text);
      at = ctx.json!.fromJson(JSON.stringify(redact(fmt, text)), bad ? ',"invalid_utf8":true' : "", offset);
    }
    vbuf = jsonSlabs.buf;
    vfrom = at;
    vto = jsonSlabs.at;
  } else if (text !== undefined) {
    const raw = bytes.subarray(from, to);
    bad = isInvalid(raw, text);
    const red = redact(fmt, text);
    if (red !== text) {
      vbuf = Buffer.from(raw[raw.length - 1] === NL ? `${red}\n` : red);
      vto = vbuf.length;
    }
  }
  const vlen = vbuf === null ? len : vto - vfrom;
  if (vlen > cap && len > 1) {
    // Too large for one record: two events, each with the offset of its first byte.
    let half = !json && vbuf === null ? Math.min(cap, len - 1) : len >> 1;
    if (half < 1) half = 1;
    // json's pieces always take the decoding path (the first one keeps a final "\n" in its message)
    emit(ctx, bytes, from, from + half, offset, text === undefined && !json ? undefined : decodeWhole(bytes.subarray(from, from + half)));
    emit(ctx, bytes, from + half, to, offset + half, text === undefined && !json ? undefined : decode(bytes.subarray(from + half, to)));
    return;
  }
  if (bad) ctx.report?.invalidUtf8(source, offset);
  const record = overhead + vlen;
  const lines = fmt.multiline ? countLines(bytes.subarray(from, to)) : bytes[to - 1] === NL ? 1 : 0;
  ctx.add(bytes, from, to, offset, vbuf, vfrom, vto, lines, record + compressionSlack(record));
}

function redact(fmt: EventFormat, text: string): string {
  let red = text;
  for (const r of fmt.redact) red = red.replace(r.re, r.replace);
  return red;
}

/** The first piece of a cut line: all of it is text (it has no final "\n"). */
function decodeWhole(raw: Uint8Array): string {
  return decoder.decode(raw);
}
