// What logship changes inside kafkajs, and why. Imported once, by publish.ts, before the
// first record is encoded. Prototype patches and kafkajs' own codec registry only:
// node_modules stays as npm installs it.
//
// kafkajs encodes every record, record batch and request into a fresh Encoder, and each
// level copies the one below it in full (record, batch body, batch, `writeBytes(batch
// .buffer)`, partition, topic, request, request header: a value byte is copied about five
// times), into buffers grown by powers of two with Buffer.alloc (zero filled). Bun frees
// large buffers only when its garbage collector runs, so this costs CPU and makes the
// process grow by hundreds of MB while a backlog ships. Here:
//   - an Encoder is a rope: a buffer of 1 KiB or more (a record's value, another
//     encoder's content) is kept by reference as a part instead of being copied; size()
//     counts the parts, and `.buffer` joins them only when asked. kafkajs asks twice per
//     send: for a batch body (its CRC-32C needs contiguous bytes; `crc32C(batchBody
//     .buffer)` is evaluated before anything could intercept it) and for the whole request
//     (socket.write). The body's join leaves 64 free bytes in front, where the batch's
//     9-byte header (epoch, magic, CRC) is then written in place: `batch.buffer` costs no
//     copy. So a value byte is copied twice, never zero filled;
//   - a new Encoder starts empty (kafkajs gives each 512 zeroed bytes), and small buffers
//     grow to what is needed plus a little room (or double), not zero filled; varints are
//     written in place (kafkajs builds an array and a Buffer per varint, Longs per varlong);
//   - while a send is under way (withEncoderArena), buffers under 4 KiB (a record's or a
//     header's fields) are cut from 64 KiB blocks, and buffers of 64 KiB and more (the
//     joins above) come whole from a pool; all go back to the pool once Kafka answered
//     that send, when the request bytes are surely written. A failed send's buffers are left to the garbage
//     collector, since a timed-out request may still sit in the socket. The request is
//     still written as one joined buffer: writing the parts would leave read buffers (the
//     values) referenced by the socket after a failed send, when they may be reused.
// Measured on the 250 MB backlog (8 files, compiled binary, medians of 3): the pooled
// copying encoder took 1.14 s wall, 1.31 CPU s, 116 MB peak RSS; the rope 0.83 s, 0.95 CPU s,
// 110 MB; same bytes (tests/kafkajsPatches.test.ts compares with kafkajs' own encoding).
// Small records (10,000 files of 2 KB, one record each, 1,000 per send) mostly cost per
// record: the 1 KiB rope threshold (was 16 KiB), the cut small buffers and in-place varints
// took that run's peak RSS from 160 to 133 MB.

// kafkajs' RequestQueue, with nothing pending and no throttling, re-arms a timer with a
// negative delay (run as 1 ms) for ever: about 800 wake-ups a second per broker
// connection, 4.5% of a core on an idle agent (kafkajs issues #1556, #1704). With nothing
// pending there is nothing to check: a new request schedules its own check when it comes.
// (Those negative delays were also what made Bun print TimeoutNegativeWarning on stderr.)

import { CompressionCodecs, CompressionTypes } from "kafkajs";
// @ts-expect-error kafkajs ships no types for its internals
import Encoder from "kafkajs/src/protocol/encoder.js";
// @ts-expect-error kafkajs ships no types for its internals
import RequestQueue from "kafkajs/src/network/requestQueue/index.js";
import { BufferPool } from "../../memory.ts";

interface EncoderState {
  buf: Buffer;
  offset: number;
  parts?: Buffer[] | null; // content before buf[0, offset): large buffers held by reference
  partsLength?: number;
  headroom?: number; // free bytes in front of buf, left by a join for the next encoder's header
}

const proto = (Encoder as { prototype: Record<string, unknown> }).prototype;

const ROOM = 4096; // room left after a large write, for the small fields that follow it
const POOLED_MIN = 64 * 1024;
const ROPE_MIN = 1024; // buffers this large are referenced, not copied (a record value of a small file, say)
const HEADROOM = 64; // > the 9 bytes kafkajs writes in front of a record batch body
const SMALL_MAX = 4096; // smaller buffers are carved from SMALL_BLOCK blocks during a send
const SMALL_BLOCK = 64 * 1024;
const SMALL_FIRST = 128; // an encoder's first buffer: a header, or a record's small fields, fits
const pool = new BufferPool(48 * 1024 * 1024); // about what two 8 MiB sends use
let arena: Buffer[] | null = null;
/** Joined buffers (views) with free bytes in front of them, and how many. */
const roomBefore = new WeakMap<Buffer, number>();

/** The block small buffers are carved from during a send (a block of the arena). */
let small: { buf: Buffer; used: number } | null = null;

function take(size: number): Buffer {
  if (arena === null) return Buffer.allocUnsafe(size);
  if (size < SMALL_MAX) return carve(size);
  if (size < POOLED_MIN) return Buffer.allocUnsafe(size);
  let sizeClass = POOLED_MIN; // powers of two, so a freed buffer fits the next send's needs
  while (sizeClass < size) sizeClass *= 2;
  const b = pool.take(sizeClass);
  arena.push(b);
  return b;
}

/** A small buffer cut from the arena's current block: no allocation of its own. */
function carve(size: number): Buffer {
  if (small === null || small.used + size > small.buf.length) {
    const block = pool.take(SMALL_BLOCK);
    arena!.push(block);
    small = { buf: block, used: 0 };
  }
  const b = small.buf.subarray(small.used, small.used + size);
  small.used += size;
  return b;
}

function ensureAvailable(this: EncoderState, length: number): void {
  const need = this.offset + length;
  if (need <= this.buf.length) return;
  const next = take(Math.max(need + Math.min(ROOM, need), this.buf.length * 2, SMALL_FIRST));
  this.buf.copy(next, 0, 0, this.offset);
  this.buf = next;
  this.headroom = 0;
}

/** Ends the current run of small writes: it becomes a part, and writing goes on after it. */
function sealTail(e: EncoderState): Buffer[] {
  const parts = (e.parts ??= []);
  if (e.offset > 0) {
    parts.push(e.buf.subarray(0, e.offset));
    e.partsLength = (e.partsLength ?? 0) + e.offset;
    e.buf = e.buf.subarray(e.offset);
    e.offset = 0;
    e.headroom = 0;
  }
  return parts;
}

function writeBufferInternal(this: EncoderState, buffer: Buffer): void {
  const length = buffer.length;
  if (length >= ROPE_MIN) {
    sealTail(this).push(buffer);
    this.partsLength = (this.partsLength ?? 0) + length;
    return;
  }
  ensureAvailable.call(this, length);
  buffer.copy(this.buf, this.offset, 0);
  this.offset += length;
}

/** Appends another encoder's content: its large parts by reference, small content copied. */
function adopt(e: EncoderState, v: EncoderState): void {
  if (!v.parts) {
    const view = v.buf.subarray(0, v.offset);
    if (v.headroom && view.length >= ROPE_MIN) {
      roomBefore.set(view, v.headroom); // the first adopter may use the room, no other
      v.headroom = 0;
    }
    writeBufferInternal.call(e, view);
    return;
  }
  const parts = sealTail(e);
  for (const p of v.parts) parts.push(p);
  e.partsLength = (e.partsLength ?? 0) + (v.partsLength ?? 0);
  if (v.offset > 0) writeBufferInternal.call(e, v.buf.subarray(0, v.offset));
}

/**
 * The encoded bytes as one buffer. A rope is joined (into a pooled buffer during a send)
 * and becomes that buffer, with free room in front; when the rope is a few small bytes
 * followed by such a joined buffer (a record batch: 9 header bytes, then its body), the
 * small bytes are written into that room instead, without copying the body again.
 */
function joined(this: EncoderState): Buffer {
  const parts = this.parts;
  if (!parts) return this.buf.subarray(0, this.offset);
  const total = (this.partsLength ?? 0) + this.offset;
  const last = parts[parts.length - 1]!;
  const prefix = total - last.length;
  let all: Buffer;
  if (this.offset === 0 && prefix <= (roomBefore.get(last) ?? 0)) {
    roomBefore.delete(last);
    all = Buffer.from(last.buffer, last.byteOffset - prefix, total);
    let at = 0;
    for (let i = 0; i < parts.length - 1; i++) at += parts[i]!.copy(all, at);
    this.headroom = 0;
  } else {
    const block = take(HEADROOM + total);
    all = block.subarray(HEADROOM, HEADROOM + total);
    let at = 0;
    for (const p of parts) at += p.copy(all, at);
    this.buf.copy(all, at, 0, this.offset);
    this.headroom = HEADROOM;
  }
  this.parts = null;
  this.partsLength = 0;
  this.buf = all;
  this.offset = total;
  return all;
}

function isEncoder(v: unknown): v is EncoderState {
  return v != null && Buffer.isBuffer((v as EncoderState).buf);
}

function writeEncoder(this: EncoderState, value: unknown): EncoderState {
  if (!isEncoder(value)) throw new Error("value should be an instance of Encoder");
  adopt(this, value);
  return this;
}

function writeEncoderArray(this: EncoderState, value: unknown): EncoderState {
  if (!Array.isArray(value) || !value.every(isEncoder)) throw new Error("all values should be an instance of Encoder[]");
  for (const v of value) adopt(this, v);
  return this;
}

// kafkajs' writeBytes first makes room for the whole value, which a referenced value never uses.
const originalWriteBytes = (Encoder as { prototype: { writeBytes: (this: EncoderState, value: unknown) => EncoderState } }).prototype.writeBytes;

function writeBytes(this: EncoderState & { writeInt32(n: number): void }, value: unknown): EncoderState {
  if (!Buffer.isBuffer(value) || value.length < ROPE_MIN) return originalWriteBytes.call(this, value);
  this.writeInt32(value.length);
  writeBufferInternal.call(this, value);
  return this;
}

// kafkajs writes a varint by building an array and a Buffer of its bytes, and a varlong
// through Long objects: several objects per field, a dozen per record. Written in place here.
function writeUVarInt(this: EncoderState, value: number): EncoderState {
  ensureAvailable.call(this, 5);
  const buf = this.buf;
  let at = this.offset;
  while ((value & 0xffffff80) !== 0) {
    buf[at++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[at++] = value & 0x7f;
  this.offset = at;
  return this;
}

const originalWriteVarLong = proto.writeVarLong as (this: EncoderState, value: unknown) => EncoderState;

/** A varlong of a value within 32 bits is its zigzag-32 as a varint (e.g. a record's timestamp delta). */
function writeVarLong(this: EncoderState, value: unknown): EncoderState {
  if (typeof value !== "number" || !Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) return originalWriteVarLong.call(this, value);
  return writeUVarInt.call(this, ((value << 1) ^ (value >> 31)) >>> 0);
}

function size(this: EncoderState): number {
  return (this.partsLength ?? 0) + this.offset;
}

Object.assign(proto, { ensureAvailable, writeBufferInternal, writeBytes, writeEncoder, writeEncoderArray, writeUVarInt, writeVarLong, size });
// A new Encoder starts with Buffer.alloc(nextPowerOfTwo(511)): 512 zeroed bytes, most of a
// header's or record's never used. It starts empty instead; the first write takes what it needs.
(Encoder as { nextPowerOfTwo: (n: number) => number }).nextPowerOfTwo = () => 0;
Object.defineProperty(proto, "buffer", { get: joined, configurable: true });

/**
 * Runs one send with pooled encoder buffers; they return to the pool if it succeeds.
 * Sends must not overlap (the sender has one in flight); an overlapping one runs unpooled.
 * `answered` must be false when the send resolves without a broker response (acks=none):
 * its request may then still be queued in the socket, so its buffers are not reused.
 */
export async function withEncoderArena<T>(send: () => Promise<T>, answered = true): Promise<T> {
  if (arena !== null || !answered) return send();
  const mine: Buffer[] = [];
  arena = mine;
  let ok = false;
  try {
    const result = await send();
    ok = true;
    return result;
  } finally {
    arena = null;
    small = null;
    if (ok) for (const b of mine) pool.give(b);
  }
}

/** Drops the pooled encoder buffers (while no send is under way, the pool holds them all). */
export function releaseEncoderBuffers(): void {
  pool.clear();
}

// kafkajs compresses gzip with node:zlib's streaming gzip (a stream, its output in 16 KiB
// pieces joined at the end). Bun's one-shot gzip with libdeflate writes the same format in
// one call. Measured on the 250 MB backlog with compression gzip (medians of 3, same run as
// kcat): 39 → 56 MB/s, 26 → 19 CPU s per GB, peak RSS 104 → 90 MB.
CompressionCodecs[CompressionTypes.GZIP] = () => ({
  compress: async (encoder: { buffer: Buffer<ArrayBuffer> }) => {
    const gz = Bun.gzipSync(encoder.buffer, { library: "libdeflate" } as Parameters<typeof Bun.gzipSync>[1]);
    return Buffer.from(gz.buffer, gz.byteOffset, gz.length);
  },
  decompress: async (buffer: Buffer<ArrayBuffer>) => Buffer.from(Bun.gunzipSync(buffer)),
});

interface QueueState {
  throttledUntil: number;
  throttleCheckTimeoutId: Timer | null;
  pending: unknown[];
  checkPendingRequests(): void;
}

const CHECK_PENDING_MS = 10; // kafkajs' CHECK_PENDING_REQUESTS_INTERVAL

function scheduleCheckPendingRequests(this: QueueState): void {
  if (this.throttleCheckTimeoutId) return;
  let wait = this.throttledUntil - Date.now();
  if (this.pending.length > 0) wait = wait > 0 ? wait : CHECK_PENDING_MS;
  else if (wait <= 0) return; // nothing pending, not throttled: nothing to check
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, wait);
}

(RequestQueue as { prototype: { scheduleCheckPendingRequests: typeof scheduleCheckPendingRequests } }).prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
