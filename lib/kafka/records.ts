// Record batches: a partition's chunks become one Kafka record batch (magic v2) written
// straight into a growable byte buffer: the 61-byte batch header, then per chunk one record
// (length, attributes, timestamp delta, offset delta, key, value, headers, varints written in
// place), compressed as a whole by the codec kafkajs has registered for it, and the header's
// CRC-32C over everything after the CRC. No object is made per record: what a record's key
// and headers hold besides its offset is the same for every record of a file, so it is
// encoded once per file (Source) and copied; the offset header's digits are written in place.
// A run (pack.ts' Chunk.run: many lines of a file, one record each, in one chunk) is written
// record by record, its line boundaries found again here.
//
// Invariant: the bytes are exactly those kafkajs 2.2.4 encodes for the same messages
// ({ key: exactName(chunkKey(c)), value: c.value, headers: chunkHeaders(c) } for each of
// recordChunks(chunk): a run's records one by one) with the same timestamp
// (its RecordBatch, Record and Header encoders, firstOffset 0, producer id -1, epoch 0,
// sequence 0, no transaction): tests/records.test.ts compares the two for every codec. With a
// producer stamp (the idempotent producer, idempotence.ts), the header's producer id, epoch
// and first sequence are the stamp's, as kafkajs writes them (tests/idempotence.test.ts).

import { CompressionCodecs, CompressionTypes } from "kafkajs";
import { crc32c } from "./patches/crc32c.ts";
import { exactName } from "../names.ts";
import { chunkHeaders, chunkKey, type Chunk, type Source } from "./pack.ts";
import type { ProducerStamp } from "./idempotence.ts";

/** A growable byte buffer written from the front; reused from send to send by its owner. */
export class Writer {
  buf: Buffer;
  at = 0;

  constructor(size = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Makes room for `n` more bytes. */
  room(n: number): void {
    const need = this.at + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  int16(v: number): void {
    this.room(2);
    this.buf.writeInt16BE(v, this.at);
    this.at += 2;
  }

  int32(v: number): void {
    this.room(4);
    this.buf.writeInt32BE(v, this.at);
    this.at += 4;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  /** The bytes written so far (a view: valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

/** Bytes of the zigzag varint of a non-negative 32-bit `v` (Kafka's varint of `v`). */
function varintSize(v: number): number {
  const z = v * 2;
  return z < 0x80 ? 1 : z < 0x4000 ? 2 : z < 0x200000 ? 3 : z < 0x10000000 ? 4 : 5;
}

/** Writes the zigzag varint of a 32-bit signed `v` at `at`; returns the position after it. */
function putVarint(buf: Buffer, at: number, v: number): number {
  let z = ((v << 1) ^ (v >> 31)) >>> 0;
  while (z >= 0x80) {
    buf[at++] = (z & 0x7f) | 0x80;
    z >>>= 7;
  }
  buf[at++] = z;
  return at;
}

/** Writes the `digits` decimal digits of a non-negative integer `n` at `at`. */
export function putDigits(buf: Uint8Array, at: number, n: number, digits: number): void {
  let d = digits - 1;
  for (; n >= 0x80000000 && d >= 0; d--) {
    buf[at + d] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  for (; d >= 0; d--) {
    const q = (n / 10) | 0; // 32-bit integer arithmetic from here
    buf[at + d] = 0x30 + n - q * 10;
    n = q;
  }
}

/** Decimal digits of a non-negative integer offset (what putDigits writes). */
export function digitsOf(n: number): number {
  let d = 1;
  for (let p = 10; n >= p; p *= 10) d++;
  return d;
}

/** A varint-length-prefixed byte string (kafkajs' writeVarIntBytes / writeVarIntString). */
function prefixed(text: string | Buffer): Buffer {
  const b = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const out = Buffer.allocUnsafe(varintSize(b.length) + b.length);
  b.copy(out, putVarint(out, 0, b.length));
  return out;
}

/** What every record of a file (with one key and one set of fields) holds besides its value and offset. */
interface Framing {
  key: string | null;
  fields: Record<string, string> | undefined;
  keyBytes: Buffer; // the key with its length, or varint -1 (no key)
  headerCount: Buffer; // varint of the number of headers
  before: Buffer; // the headers before the offset header, encoded
  dynamic: boolean; // false when a field named `offset` replaced the offset header's value
  after: Buffer; // the headers after it, encoded
  pre: Buffer; // headerCount, before and (dynamic) the offset header's key, one after another: what precedes the digits' length
}

const OFFSET_KEY = prefixed("offset");
const framings = new WeakMap<Source, Framing>();

/** The framing of `c`'s records, made once per source (again when its key or fields differ). */
function framingOf(c: Chunk): Framing {
  const key = chunkKey(c);
  const known = framings.get(c.source);
  if (known && known.key === key && known.fields === c.fields) return known;
  // The header order is kafkajs': Object.keys of the headers object, as chunkHeaders builds it.
  const headers = chunkHeaders(c);
  const dynamic = !(c.fields && Object.hasOwn(c.fields, "offset"));
  const before: Buffer[] = [];
  const after: Buffer[] = [];
  let seenOffset = false;
  const names = Object.keys(headers);
  for (const name of names) {
    if (name === "offset" && dynamic) {
      seenOffset = true;
      continue;
    }
    (seenOffset ? after : before).push(prefixed(name), prefixed(headers[name]!));
  }
  const count = Buffer.allocUnsafe(5);
  const f: Framing = {
    key,
    fields: c.fields,
    keyBytes: key === null ? Buffer.from([0x01]) : prefixed(exactName(key)), // a file name's exact bytes, also when it is no UTF-8
    headerCount: count.subarray(0, putVarint(count, 0, names.length)),
    before: Buffer.concat(before),
    dynamic,
    after: Buffer.concat(after),
    pre: Buffer.alloc(0),
  };
  f.pre = Buffer.concat(dynamic ? [f.headerCount, f.before, OFFSET_KEY] : [f.headerCount, f.before]);
  framings.set(c.source, f);
  return f;
}

const NL = 0x0a;

/**
 * Writes the records of `chunks` (all non-empty) into `w`, offset deltas from 0: one per
 * chunk, or a run's records one after another. Returns the number of records written.
 */
export function writeRecords(w: Writer, chunks: readonly Chunk[]): number {
  let f: Framing | null = null;
  let source: Source | null = null;
  let i = 0;
  for (let n = 0; n < chunks.length; n++) {
    const c = chunks[n]!;
    if (c.source !== source || f!.fields !== c.fields || f!.key !== (c.key === undefined ? c.source.path : c.key)) {
      f = framingOf(c);
      source = c.source;
    }
    const value = c.value;
    if (c.run === undefined) {
      writeRecord(w, f!, i++, value, 0, value.length, c.start);
      continue;
    }
    // A run: its records one after another (pack.ts' Chunk.run says where each one is).
    const raw = c.raw ?? value;
    const ends = c.ends;
    const byLines = ends === undefined || c.raw !== undefined; // else the ends are the records' (multiline events)
    let vpos = 0;
    let rpos = 0;
    for (let k = 0; k < c.run; k++) {
      let rnext: number;
      if (byLines) {
        const nl = raw.indexOf(NL, rpos);
        rnext = nl === -1 ? raw.length : nl + 1;
      } else {
        rnext = ends![k]!;
      }
      const vend = ends === undefined ? rnext : ends[k]!;
      writeRecord(w, f!, i++, value, vpos, vend, c.start + rpos);
      vpos = vend;
      rpos = rnext;
    }
  }
  return i;
}

/** One record: `value`[from, to) with the framing `f`, offset delta `i`, the offset header `offset`. */
function writeRecord(w: Writer, f: Framing, i: number, value: Buffer, from: number, to: number, offset: number): void {
  const vlen = to - from;
  const digits = f.dynamic ? digitsOf(offset) : 0;
  const offsetHeader = f.dynamic ? OFFSET_KEY.length + 1 + digits : 0; // digits < 64: a 1-byte length
  const headers = f.headerCount.length + f.before.length + offsetHeader + f.after.length;
  const body = 1 + 1 + varintSize(i) + f.keyBytes.length + varintSize(vlen) + vlen + headers;
  w.room(5 + body);
  const buf = w.buf;
  let at = putVarint(buf, w.at, body);
  buf[at++] = 0; // attributes
  buf[at++] = 0; // timestamp delta: every record has the batch's timestamp
  at = putVarint(buf, at, i);
  buf.set(f.keyBytes, at);
  at += f.keyBytes.length;
  at = putVarint(buf, at, vlen);
  value.copy(buf, at, from, to);
  at += vlen;
  buf.set(f.pre, at);
  at += f.pre.length;
  if (f.dynamic) {
    buf[at++] = digits * 2;
    putDigits(buf, at, offset, digits);
    at += digits;
  }
  buf.set(f.after, at);
  at += f.after.length;
  w.at = at;
}

/** Bytes of a record batch's header, before its records. */
export const BATCH_HEADER = 61;

/** kafkajs' codec registry entry for a compression type (logship's patches register all four). */
function codecOf(compression: CompressionTypes): { compress(encoder: { buffer: Buffer }): Promise<Buffer> } {
  const make = (CompressionCodecs as unknown as Record<number, () => { compress(encoder: { buffer: Buffer }): Promise<Buffer> }>)[compression];
  if (!make) throw new Error(`no codec registered for compression type ${compression}`);
  return make();
}

/**
 * Appends to `w` the record batch of `chunks` (non-empty values, one partition): timestamp
 * `now` (Unix ms) for every record, compressed with `compression`; `scratch` holds the
 * uncompressed records meanwhile (unused without compression). Returns the batch's length.
 */
export async function writeBatch(w: Writer, chunks: readonly Chunk[], compression: CompressionTypes, now: number, scratch: Writer, producer?: ProducerStamp): Promise<number> {
  const start = w.at;
  w.room(BATCH_HEADER);
  w.at += BATCH_HEADER;
  let records: number;
  if (compression === CompressionTypes.None) {
    records = writeRecords(w, chunks);
  } else {
    scratch.at = 0;
    records = writeRecords(scratch, chunks);
    w.bytes(await codecOf(compression).compress({ buffer: scratch.view() }));
  }
  const end = w.at;
  const b = w.buf;
  b.writeInt32BE(0, start); // first offset (int64): 0
  b.writeInt32BE(0, start + 4);
  b.writeInt32BE(end - start - 12, start + 8); // batch length: what follows it
  b.writeInt32BE(0, start + 12); // partition leader epoch
  b[start + 16] = 2; // magic
  b.writeInt16BE(compression & 0x7, start + 21); // attributes: the codec; create time, no transaction
  b.writeInt32BE(records - 1, start + 23); // last offset delta
  const hi = Math.floor(now / 0x100000000);
  const lo = now >>> 0;
  b.writeUInt32BE(hi, start + 27); // first timestamp
  b.writeUInt32BE(lo, start + 31);
  b.writeUInt32BE(hi, start + 35); // max timestamp
  b.writeUInt32BE(lo, start + 39);
  writeProducer(b, start, producer);
  b.writeInt32BE(records, start + 57); // records
  b.writeUInt32BE(crc32c(b.subarray(start + 21, end)), start + 17);
  return end - start;
}

/** The batch header's producer fields: the stamp's (idempotence), or none (-1, epoch 0, sequence 0). */
function writeProducer(b: Buffer, start: number, p: ProducerStamp | undefined): void {
  b.writeBigInt64BE(p ? p.producerId : -1n, start + 43); // producer id
  b.writeInt16BE(p ? p.epoch : 0, start + 51); // producer epoch
  b.writeInt32BE(p ? p.base : 0, start + 53); // first sequence
}
