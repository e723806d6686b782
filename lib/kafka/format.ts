// Formatting (pure): the `line` and `json` formats, the per-event counterpart of pack.ts.
// A Span of lines becomes one record per line, in order, each with the offset of its line's
// first byte (so dedup by host, file and offset stays exact). Lines an input filters out
// (include_lines / exclude_lines) become empty chunks in their place: the checkpoint counts
// them as handled only once every line before them is acknowledged, as it does for the
// skipped bytes of a dropped long line. Redaction runs before anything is encoded.
//
// What a regex sees: one line, decoded as UTF-8 (an invalid sequence as U+FFFD), without its
// final "\n", never longer than the input's max_line_bytes (read.ts cuts longer ones first).
// Patterns are JavaScript RegExps, run by Bun's engine (JavaScriptCore's Yarr, a
// backtracking engine): a pathological pattern costs time per line, bounded by that length.
//
// Invalid UTF-8: in `json`, the line's invalid sequences become U+FFFD in `message` and the
// object gets "invalid_utf8": true (the exact bytes stay in the file, at the record's
// offset); in `line`, the bytes are shipped as they are, unless redaction changed the line
// (then the redacted text is encoded as UTF-8, with U+FFFD too). Either way it is counted.

import { isUtf8 } from "node:buffer";
import type { InputConfig } from "../config.ts";
import { BATCH_OVERHEAD, compressionSlack, recordOverhead, UnshippableError, type Chunk, type PackLimits, type Source } from "./pack.ts";
import type { Span } from "../files/read.ts";

const NL = 0x0a;
const EMPTY = Buffer.alloc(0);

/** An input's event settings, compiled once (per loaded config). */
export interface EventFormat {
  format: "line" | "json";
  fields: Record<string, string>;
  include: RegExp[];
  exclude: RegExp[];
  redact: { re: RegExp; replace: string }[];
  key: string | null | undefined; // undefined: the path (as packed); null: no key; else this value
  fieldsJson: string; // the static fields as `,"k":"v"` (json)
  fieldHeaderBytes: number; // what the fields add to a record as headers (line)
}

/** What formatting tells the agent: each shipped line whose bytes are not valid UTF-8, and the lines the filters dropped. */
export interface FormatReport {
  invalidUtf8(source: Source, offset: number): void;
  filtered(source: Source, lines: number): void;
}

/** The event settings of an input, or null when it ships packed. */
export function compileFormat(input: InputConfig): EventFormat | null {
  if (input.format === "packed") return null;
  const fields = input.fields;
  let fieldsJson = "";
  let fieldHeaderBytes = 0;
  for (const [k, v] of Object.entries(fields)) {
    fieldsJson += `,${JSON.stringify(k)}:${JSON.stringify(v)}`;
    fieldHeaderBytes += 10 + Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  const key = input.key === "path" ? undefined : input.key === "none" ? null : (fields[input.key.slice("field:".length)] ?? null);
  return {
    format: input.format,
    fields,
    include: input.include_lines.map((p) => new RegExp(p)),
    exclude: input.exclude_lines.map((p) => new RegExp(p)),
    redact: input.redact.map((r) => ({ re: new RegExp(r.pattern, "g"), replace: r.replace })),
    key,
    fieldsJson,
    fieldHeaderBytes: input.format === "line" ? fieldHeaderBytes : 0,
  };
}

/** Record framing of a chunk of `source` at `offset` under `fmt`: today's, with its key and the field headers. */
function overheadOf(fmt: EventFormat, source: Source, offset: number): number {
  const keyBytes = fmt.key === undefined ? Buffer.byteLength(source.path) : fmt.key === null ? 0 : Buffer.byteLength(fmt.key);
  return recordOverhead(source, offset) - Buffer.byteLength(source.path) + keyBytes + fmt.fieldHeaderBytes;
}

/**
 * One chunk per shipped line of `span` (a line too large for one record is cut in pieces,
 * each with its own offset), empty chunks for the lines filtered out; `wall` (Unix ms) is
 * the read time (`@timestamp`). Throws UnshippableError when the key and headers alone fill a record.
 */
export function formatSpan(span: Span, source: Source, fmt: EventFormat, limits: PackLimits, wall: number, report?: FormatReport): Chunk[] {
  const bytes = span.bytes;
  const chunks: Chunk[] = [];
  const room = limits.maxMessageBytes - BATCH_OVERHEAD;
  const capacity = (offset: number) => {
    const overhead = overheadOf(fmt, source, offset);
    const cap = room - compressionSlack(room) - overhead;
    if (cap < 1) throw new UnshippableError(`kafka.max_message_bytes (${limits.maxMessageBytes}) leaves no room for a line: the key and headers of a record of this file take ${overhead} bytes (its path is ${Buffer.byteLength(source.path)} bytes)`);
    return { overhead, cap };
  };
  if (bytes.length === 0) return [{ source, value: EMPTY, start: span.start, end: span.end, lines: 0, size: 0 }];
  const filtering = fmt.include.length > 0 || fmt.exclude.length > 0;
  const needText = fmt.format === "json" || filtering || fmt.redact.length > 0;
  const ctx: LineCtx = { source, fmt, wall, timestamp: fmt.format === "json" ? new Date(wall).toISOString() : "", report, envelope: "" };
  if (fmt.format === "json") ctx.envelope = `,"host":${JSON.stringify(source.host)},"path":${JSON.stringify(source.path)},"offset":`;
  let skipFrom = -1; // start of a run of filtered-out lines not yet accounted for
  let dropped = 0;
  let pos = 0;
  while (pos < bytes.length) {
    const nl = bytes.indexOf(NL, pos);
    const lineEnd = nl === -1 ? bytes.length : nl + 1;
    const raw = bytes.subarray(pos, lineEnd);
    const offset = span.start + pos;
    pos = lineEnd;
    let text: string | undefined;
    if (needText) {
      text = decode(raw);
      if (filtering && !wanted(fmt, text)) {
        dropped++;
        if (skipFrom < 0) skipFrom = offset;
        continue;
      }
    }
    if (skipFrom >= 0) {
      chunks.push({ source, value: EMPTY, start: skipFrom, end: offset, lines: 0, size: 0 });
      skipFrom = -1;
    }
    emit(ctx, chunks, raw, offset, text, capacity);
  }
  if (skipFrom >= 0) chunks.push({ source, value: EMPTY, start: skipFrom, end: span.end, lines: 0, size: 0 });
  chunks[chunks.length - 1]!.end = span.end; // the last chunk also accounts for skipped bytes
  if (dropped > 0) report?.filtered(source, dropped);
  return chunks;
}

interface LineCtx {
  source: Source;
  fmt: EventFormat;
  wall: number;
  timestamp: string;
  envelope: string;
  report?: FormatReport;
}

const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** A line as text: without its final "\n", invalid sequences as U+FFFD. */
function decode(raw: Uint8Array): string {
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

/** Pushes the record(s) of one line (`text`: its decoded form, when needed); a value too large for a record is cut in halves, each its own event. */
function emit(ctx: LineCtx, chunks: Chunk[], raw: Buffer, offset: number, text: string | undefined, capacity: (offset: number) => { overhead: number; cap: number }): void {
  const { fmt, source } = ctx;
  const { overhead, cap } = capacity(offset);
  let value: Buffer;
  let bad = false;
  if (text !== undefined) {
    bad = isInvalid(raw, text);
    let red = text;
    for (const r of fmt.redact) red = red.replace(r.re, r.replace);
    if (fmt.format === "json") {
      value = Buffer.from(`{"@timestamp":"${ctx.timestamp}","message":${JSON.stringify(red)}${bad ? ',"invalid_utf8":true' : ""}${ctx.envelope}${offset},"file":${JSON.stringify(source.file)}${fmt.fieldsJson}}`);
    } else if (red !== text) {
      value = Buffer.from(raw[raw.length - 1] === NL ? `${red}\n` : red);
    } else {
      value = raw;
    }
  } else {
    value = raw;
  }
  if (value.length > cap && raw.length > 1) {
    // Too large for one record: two events, each with the offset of its first byte.
    let half = fmt.format === "line" && value === raw ? Math.min(cap, raw.length - 1) : raw.length >> 1;
    if (half < 1) half = 1;
    const a = raw.subarray(0, half);
    const b = raw.subarray(half);
    emit(ctx, chunks, a, offset, text === undefined ? undefined : decodeWhole(a), capacity);
    emit(ctx, chunks, b, offset + half, text === undefined ? undefined : decode(b), capacity);
    return;
  }
  if (bad) ctx.report?.invalidUtf8(source, offset);
  const record = overhead + value.length;
  const c: Chunk = { source, value, start: offset, end: offset + raw.length, lines: raw[raw.length - 1] === NL ? 1 : 0, size: record + compressionSlack(record) };
  if (value !== raw) c.raw = raw;
  if (fmt.key !== undefined) c.key = fmt.key;
  if (fmt.format === "line" && fmt.fieldHeaderBytes > 0) c.fields = fmt.fields;
  chunks.push(c);
}

/** The first piece of a cut line: all of it is text (it has no final "\n"). */
function decodeWhole(raw: Uint8Array): string {
  return decoder.decode(raw);
}
