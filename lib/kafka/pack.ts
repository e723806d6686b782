// Packing (pure): cuts a Span of lines into Chunks, one Kafka record each, cut only at line
// ends. A record aims at target_message_bytes and never exceeds max_message_bytes, counting
// its key, headers, the Kafka record and batch framing, and gzip's worst-case growth. Only
// a single line too long for one record is cut inside (each piece carries its own offset).
// Values are views of the read buffer, never copies.
// The `path` header (and the key, records.ts) carry the file name's exact bytes, also when it
// is not valid UTF-8 (exactName, lib/names.ts); sizes count such a byte as 3 (U+FFFD's UTF-8),
// an upper bound.

import type { Source, Span } from "../files/read.ts";
import { exactName } from "../names.ts";

export type { Source };

const NL = 0x0a;

/** Kafka v2 record-batch header: the fixed bytes a batch adds around its records. */
export const BATCH_OVERHEAD = 61;

/** One Kafka record's worth of one file, with its provenance. */
export interface Chunk {
  source: Source;
  value: Buffer; // whole lines, byte for byte; empty when the span only skipped bytes
  start: number; // file offset of value[0]: the `offset` header
  end: number; // file offset just past what this chunk accounts for
  lines: number; // "\n" count in value
  size: number; // upper bound of the encoded record, gzip's worst case included (without the batch header)
  release?: () => void; // called once when the chunk is acknowledged or dropped (returns its read buffer, and its json values' slab)
  queuedAt?: number; // clock.now() it entered the send queue (set by the sender; for the send latency)
  // Set by format.ts only (line and json); a packed chunk has none of them.
  key?: string | null; // the record key: undefined = the path; null = none
  fields?: Record<string, string>; // headers after today's four (the input's static fields)
  raw?: Uint8Array; // the file's bytes [start, end) when value is not them (json, redacted): the checkpoint's mark
  // A run (format.ts: line, json, line with multiline): consecutive lines (or events) of one
  // read, each its own record, in one chunk: `run` records. Without `ends` (line) the records
  // are the lines of `value`: each "\n" ends one, bytes after the last "\n" are one more. With
  // `ends` (where each record's value ends in `value`) and `raw` (json), the k-th record comes
  // from the k-th line of raw; with `ends` and no raw (line, multiline), the records are the
  // value's bytes up to each end. A record's offset header is where its bytes start in the file.
  // Unset: the chunk is one record (none if empty).
  run?: number;
  ends?: Int32Array;
}

/** Where a run's k-th record ends, in its value and in its file bytes (see Chunk.run), given where it starts (where the one before ended; 0, 0 for the first). */
export function runRecord(c: Chunk, k: number, vfrom: number, rfrom: number): { vto: number; rto: number } {
  const ends = c.ends;
  if (ends !== undefined && c.raw === undefined) return { vto: ends[k]!, rto: ends[k]! };
  const raw = c.raw ?? c.value;
  const nl = raw.indexOf(NL, rfrom);
  const rto = nl === -1 ? raw.length : nl + 1;
  return { vto: ends === undefined ? rto : ends[k]!, rto };
}

/** Kafka records a chunk becomes: a run's count, else one (none for an empty chunk). */
export function recordsOf(c: Chunk): number {
  return c.run ?? (c.value.length > 0 ? 1 : 0);
}

/**
 * The records of a chunk, one chunk each (a run's as views of its bytes, each with its own
 * offset and the run's key and fields; the first starts where the run does, the last accounts
 * for its end): what a consumer receives, for tests and diagnostics.
 */
export function recordChunks(c: Chunk): Chunk[] {
  if (c.run === undefined) return [c];
  const raw = c.raw ?? c.value;
  const out: Chunk[] = [];
  let vpos = 0;
  let rpos = 0;
  const per = Math.floor((c.size - c.value.length) / c.run);
  for (let k = 0; k < c.run; k++) {
    const { vto: vend, rto: rnext } = runRecord(c, k, vpos, rpos);
    const value = c.value.subarray(vpos, vend);
    out.push({
      source: c.source, value, start: c.start + rpos, end: k === c.run - 1 ? c.end : c.start + rnext,
      lines: countLines(raw.subarray(rpos, rnext)), size: per + value.length, release: undefined, queuedAt: c.queuedAt,
      key: c.key, fields: c.fields, raw: c.raw ? raw.subarray(rpos, rnext) : undefined, run: undefined, ends: undefined,
    });
    vpos = vend;
    rpos = rnext;
  }
  return out;
}

export interface PackLimits {
  maxMessageBytes: number;
  targetMessageBytes: number;
}

/** Record framing beyond key and value, counted with the widest varints (see Kafka's DefaultRecord). */
export function recordOverhead(source: Source, offset: number): number {
  const headerBytes =
    10 + 4 + Buffer.byteLength(source.host) +
    10 + 4 + Buffer.byteLength(source.path) +
    10 + 6 + String(offset).length +
    10 + 4 + Buffer.byteLength(source.file);
  // length(5) attributes(1) timestampDelta(10) offsetDelta(5) keyLength(5) valueLength(5) headerCount(5)
  return 36 + Buffer.byteLength(source.path) + headerBytes;
}

/**
 * Worst-case growth of `n` record bytes under gzip: zlib's deflateBound for its default
 * settings plus the 18-byte gzip wrapper (incompressible data is stored in blocks with a
 * 5-byte header each). Kafka checks the compressed batch against max.message.bytes, so a
 * record of random-looking bytes near the limit would otherwise be refused and, if it is
 * a single line, dropped. Reserved whatever the codec (pack does not know it): about
 * 0.03% of a record, plus 25 bytes.
 */
export function compressionSlack(n: number): number {
  return Math.ceil(n / 4096) + Math.ceil(n / 16384) + Math.ceil(n / 33_554_432) + 25;
}

/** Kafka headers of a chunk: where its bytes come from, for consumers that drop duplicates. The path is its exact bytes (a Buffer when it is no text). */
export function chunkHeaders(c: Chunk): Record<string, string | Buffer> {
  const h = { host: c.source.host, path: exactName(c.source.path), offset: String(c.start), file: c.source.file };
  return c.fields ? { ...h, ...c.fields } : h;
}

/** The record key of a chunk: its path, unless format.ts chose another (or none). */
export function chunkKey(c: Chunk): string | null {
  return c.key === undefined ? c.source.path : c.key;
}

/** Largest value that fits one record at `offset` on its own in a batch, compressed or not. */
export function hardCapacity(source: Source, offset: number, limits: PackLimits): number {
  const room = limits.maxMessageBytes - BATCH_OVERHEAD;
  return room - compressionSlack(room) - recordOverhead(source, offset);
}

/** A file whose key and headers alone fill a record of max_message_bytes: none of its lines can be shipped. */
export class UnshippableError extends RangeError {
  override name = "UnshippableError";
}

/** A file id as long as any (device:inode:time:random), for reckoning record overhead before a file is seen. */
export const LONGEST_FILE_ID = "0".repeat(64);

/** Bytes a line may take in a record of a file at `path` at a far offset (≤ 0: no line fits), before any file is seen. */
export function roomForLines(host: string, path: string, topic: string, limits: PackLimits): number {
  return hardCapacity({ host, path, topic, file: LONGEST_FILE_ID }, 10 ** 15, limits);
}

export function pack(span: Span, source: Source, limits: PackLimits): Chunk[] {
  const bytes = span.bytes;
  if (bytes.length === 0) {
    return [{ source, value: bytes, start: span.start, end: span.end, lines: 0, size: 0 }];
  }
  const chunks: Chunk[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const offset = span.start + pos;
    const overhead = recordOverhead(source, offset);
    const hard = hardCapacity(source, offset, limits);
    if (hard < 1) throw new UnshippableError(`kafka.max_message_bytes (${limits.maxMessageBytes}) leaves no room for a line: the key and headers of a record of this file take ${overhead} bytes (its path is ${Buffer.byteLength(source.path)} bytes)`);
    const soft = Math.max(1, Math.min(hard, limits.targetMessageBytes - overhead));
    const take = cutLength(bytes, pos, soft, hard);
    const value = bytes.subarray(pos, pos + take);
    const record = overhead + take;
    chunks.push({ source, value, start: offset, end: offset + take, lines: countLines(value), size: record + compressionSlack(record) });
    pos += take;
  }
  chunks[chunks.length - 1]!.end = span.end; // the last chunk also accounts for skipped bytes
  return chunks;
}

/** How many bytes from `pos` form the next record: whole lines up to `soft`, or one line up to `hard`. */
function cutLength(bytes: Buffer, pos: number, soft: number, hard: number): number {
  const left = bytes.length - pos;
  if (left <= soft) return left;
  const cut = bytes.lastIndexOf(NL, pos + soft - 1);
  if (cut >= pos) return cut + 1 - pos;
  // The first line alone is longer than `soft`: keep it whole if it fits a record at all.
  const nl = bytes.indexOf(NL, pos);
  const lineLen = nl === -1 ? left : nl + 1 - pos;
  return Math.min(lineLen, hard);
}

export function countLines(buf: Uint8Array): number {
  let n = 0;
  let i = buf.indexOf(NL);
  while (i !== -1) {
    n++;
    i = buf.indexOf(NL, i + 1);
  }
  return n;
}
