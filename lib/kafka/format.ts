// Formatting (pure): the `line` and `json` formats, the per-event counterpart of pack.ts.
// A Span of lines becomes one record per line, in order, each with the offset of its line's
// first byte (so dedup by host, file and offset stays exact). Lines an input filters out
// (include_lines / exclude_lines) become empty chunks in their place: the checkpoint counts
// them as handled only once every line before them is acknowledged, as it does for the
// skipped bytes of a dropped long line. Redaction runs before anything is encoded.
// Consecutive records of one read are gathered into runs: one chunk (one object, one
// checkpoint range, acknowledged as a whole) for up to RUN_RECORDS lines or events, each
// still its own record with its own offset (pack.ts' Chunk.run; records.ts encodes them one
// by one). A run's records are in one partition and one send, so they are acknowledged
// together, and the checkpoint's invariant holds for runs as it did for single records.
// A filtered line ends the run before it (its empty chunk sits between two runs). units.ts
// records the units (lines, events) this module finds.
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
// A file name that is not valid UTF-8 (lib/names.ts) follows the same rule in `json`: `path`
// has U+FFFD for each byte that is not UTF-8, and "path_invalid_utf8": true; the exact bytes
// are in the record's `path` header (and key), as in every format.

import type { InputConfig } from "../config.ts";
import type { Chunk, PackLimits, Source } from "./pack.ts";
import type { Span } from "../files/read.ts";
import { decode, Units } from "./units.ts";
import { collector } from "../memory.ts";

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
  multiline: Multiline | null; // join continuation lines into one event
}

/** An input's `multiline`, compiled: exactly one of start and cont is set. */
export interface Multiline {
  start: RegExp | null; // a line matching this starts an event
  cont: RegExp | null; // a line matching this continues the event before it
  maxLines: number;
  maxBytes: number;
  timeout: number; // ms an event may stay open, from its first line
}

/**
 * A file's multiline event still open at the end of a read: the next line may continue it.
 * Its bytes are a copy (the read buffer goes back), and no offset moves over its start until
 * it is sent and acknowledged (the agent tracks a placeholder range for it).
 */
export interface OpenEvent {
  start: number; // file offset of its first byte: the record's offset
  end: number; // just past what it accounts for
  bytes: Buffer; // its lines so far
  lines: number;
  since: number; // clock.now() of its first line (timeout)
  wall: number; // read time of its first line (@timestamp)
  fmt: EventFormat;
}

/** What formatting tells the agent: each shipped line whose bytes are not valid UTF-8, and the lines the filters dropped. */
export interface FormatReport {
  invalidUtf8(source: Source, offset: number): void;
  filtered(source: Source, lines: number): void;
  /** A multiline event was cut at max_lines or max_bytes (the rest starts a new event). */
  eventCut?(source: Source, offset: number, reason: "max_lines" | "max_bytes"): void;
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
    multiline: input.multiline
      ? {
          start: input.multiline.start === undefined ? null : new RegExp(input.multiline.start),
          cont: input.multiline.continue === undefined ? null : new RegExp(input.multiline.continue),
          maxLines: input.multiline.max_lines,
          maxBytes: input.multiline.max_bytes,
          timeout: input.multiline.timeout,
        }
      : null,
  };
}

/**
 * One chunk per shipped line of `span` (a line too large for one record is cut in pieces,
 * each with its own offset), empty chunks for the lines filtered out; `wall` (Unix ms) is
 * the read time (`@timestamp`). Throws UnshippableError when the key and headers alone fill a
 * record, before anything else. With multiline, see formatEvents.
 */
export function formatSpan(span: Span, source: Source, fmt: EventFormat, limits: PackLimits, wall: number, report?: FormatReport): Chunk[] {
  return formatEvents(span, source, fmt, limits, wall, 0, null, report).chunks;
}

/**
 * formatSpan, with multiline events when the input has them: lines join the event `open`
 * (a file's event left open by its previous read) as the patterns say; a completed event is
 * one record with the offset of its first byte; the last event of the span stays open and is
 * returned (a copy), unless `close` (end of a --once read, a timeout) ships it too.
 */
export function formatEvents(span: Span, source: Source, fmt: EventFormat, limits: PackLimits, wall: number, now: number, open: OpenEvent | null, report?: FormatReport): { chunks: Chunk[]; open: OpenEvent | null } {
  const out = new Units(source, fmt, limits, report);
  const bytes = span.bytes;
  if (bytes.length > 0 || open) out.capacity(span.end); // throws UnshippableError before anything changes
  const ml = fmt.multiline;
  if (bytes.length === 0 && !open) return { chunks: [{ source, value: EMPTY, start: span.start, end: span.end, lines: 0, size: 0 }], open: null };
  out.timestamp(wall);
  let ev = open;
  // Where the event being built starts in `bytes`; -1: it began in an earlier read (its first lines are in ev.bytes).
  // Its lines in this span are contiguous, so a closed event is a view of them, not a copy.
  let evFrom = -1;
  let evBytes = ev ? ev.bytes.length : 0;
  let decoded = 0; // lines decoded for the multiline pattern
  let pos = 0;
  while (pos < bytes.length) {
    const nl = bytes.indexOf(NL, pos);
    const lineEnd = nl === -1 ? bytes.length : nl + 1;
    const at = pos;
    const offset = span.start + pos;
    pos = lineEnd;
    if (!ml) {
      out.unit(bytes, at, lineEnd, offset, offset + lineEnd - at);
      continue;
    }
    const raw = bytes.subarray(at, lineEnd);
    if (ev) {
      const text = decode(raw);
      decoded++;
      const joins = ml.start ? !ml.start.test(text) : ml.cont!.test(text);
      const cut = !joins ? null : ev.lines >= ml.maxLines ? "max_lines" : evBytes + raw.length > ml.maxBytes ? "max_bytes" : null;
      if (joins && !cut) {
        evBytes += raw.length;
        ev.lines++;
        ev.end = offset + raw.length;
        continue;
      }
      if (cut) report?.eventCut?.(source, ev.start, cut);
      if (evFrom >= 0) out.event(ev, bytes, evFrom, at);
      else {
        const whole = at === 0 ? ev.bytes : Buffer.concat([ev.bytes, bytes.subarray(0, at)]);
        out.event(ev, whole, 0, whole.length);
      }
    }
    ev = { start: offset, end: offset + raw.length, bytes: EMPTY, lines: 1, since: now, wall, fmt };
    evFrom = at;
    evBytes = raw.length;
  }
  if (ev) {
    if (span.end > span.start + bytes.length) ev.end = span.end; // skipped bytes of its last line (or a dropped long line after it)
    ev.bytes = evFrom >= 0 ? Buffer.from(bytes.subarray(evFrom)) : Buffer.concat([ev.bytes, bytes]); // a copy: the read buffer goes back
  }
  const chunks = out.finish(ev ? null : span.end);
  collector.decoded(decoded + out.decoded);
  return { chunks, open: ev };
}

/** Ships an open event now (its timeout passed, the read ended, the config changed). */
export function closeEvent(ev: OpenEvent, source: Source, limits: PackLimits, report?: FormatReport): Chunk[] {
  const out = new Units(source, ev.fmt, limits, report);
  out.event(ev, ev.bytes, 0, ev.bytes.length);
  return out.finish(null);
}
