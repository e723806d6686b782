// The rope Encoder: how logship changes kafkajs' Encoder prototype, and why.
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
//   - while a send is under way, buffers come from the encoder arena (encoder-arena.ts).
// Measured on the 250 MB backlog (8 files, compiled binary, medians of 3): the pooled
// copying encoder took 1.14 s wall, 1.31 CPU s, 116 MB peak RSS; the rope 0.83 s, 0.95 CPU s,
// 110 MB; same bytes (tests/kafkajsPatches.test.ts compares with kafkajs' own encoding).
// Small records (10,000 files of 2 KB, one record each, 1,000 per send) mostly cost per
// record: the 1 KiB rope threshold (was 16 KiB), the cut small buffers and in-place varints
// took that run's peak RSS from 160 to 133 MB.
//
// Invariant: an encoder's bytes are its parts, in order, then buf[0, offset); every byte
// string it produces equals what kafkajs 2.2.4's own Encoder produces for the same calls.

import Encoder from "kafkajs/src/protocol/encoder.js";
import { encoderArena } from "./encoder-arena.ts";

/** kafkajs' Encoder with the rope's own fields (kafkajs' constructor sets none of them). */
interface RopeEncoder extends Encoder {
  parts?: Buffer[] | null; // content before buf[0, offset): large buffers held by reference
  partsLength?: number;
  headroom?: number; // free bytes in front of buf, left by a join for the next encoder's header
}

const ROOM = 4096; // room left after a large write, for the small fields that follow it
const ROPE_MIN = 1024; // buffers this large are referenced, not copied (a record value of a small file, say)
const HEADROOM = 64; // > the 9 bytes kafkajs writes in front of a record batch body
const SMALL_FIRST = 128; // an encoder's first buffer: a header, or a record's small fields, fits

function ensureAvailable(this: RopeEncoder, length: number): void {
  const need = this.offset + length;
  if (need <= this.buf.length) return;
  const next = encoderArena.take(Math.max(need + Math.min(ROOM, need), this.buf.length * 2, SMALL_FIRST));
  this.buf.copy(next, 0, 0, this.offset);
  this.buf = next;
  this.headroom = 0;
}

/** Ends the current run of small writes: it becomes a part, and writing goes on after it. */
function sealTail(e: RopeEncoder): Buffer[] {
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

function writeBufferInternal(this: RopeEncoder, buffer: Buffer): void {
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
function adopt(e: RopeEncoder, v: RopeEncoder): void {
  if (!v.parts) {
    const view = v.buf.subarray(0, v.offset);
    if (v.headroom && view.length >= ROPE_MIN) {
      encoderArena.roomBefore.set(view, v.headroom); // the first adopter may use the room, no other
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
function joined(this: RopeEncoder): Buffer {
  const parts = this.parts;
  if (!parts) return this.buf.subarray(0, this.offset);
  const total = (this.partsLength ?? 0) + this.offset;
  const last = parts[parts.length - 1]!;
  const prefix = total - last.length;
  const roomBefore = encoderArena.roomBefore;
  let all: Buffer;
  if (this.offset === 0 && prefix <= (roomBefore.get(last) ?? 0)) {
    roomBefore.delete(last);
    all = Buffer.from(last.buffer, last.byteOffset - prefix, total);
    let at = 0;
    for (let i = 0; i < parts.length - 1; i++) at += parts[i]!.copy(all, at);
    this.headroom = 0;
  } else {
    const block = encoderArena.take(HEADROOM + total);
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

function isEncoder(v: unknown): v is RopeEncoder {
  return v != null && Buffer.isBuffer((v as RopeEncoder).buf);
}

function writeEncoder(this: RopeEncoder, value: unknown): RopeEncoder {
  if (!isEncoder(value)) throw new Error("value should be an instance of Encoder");
  adopt(this, value);
  return this;
}

function writeEncoderArray(this: RopeEncoder, value: unknown): RopeEncoder {
  if (!Array.isArray(value) || !value.every(isEncoder)) throw new Error("all values should be an instance of Encoder[]");
  for (const v of value) adopt(this, v);
  return this;
}

// kafkajs' writeBytes first makes room for the whole value, which a referenced value never uses.
// (kafkajs' own methods, read before installRopeEncoder replaces them.)
const originalWriteBytes = Encoder.prototype.writeBytes;

function writeBytes(this: RopeEncoder, value: unknown): RopeEncoder {
  if (!Buffer.isBuffer(value) || value.length < ROPE_MIN) return originalWriteBytes.call(this, value);
  this.writeInt32(value.length);
  writeBufferInternal.call(this, value);
  return this;
}

// kafkajs writes a varint by building an array and a Buffer of its bytes, and a varlong
// through Long objects: several objects per field, a dozen per record. Written in place here.
function writeUVarInt(this: RopeEncoder, value: number): RopeEncoder {
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

const originalWriteVarLong = Encoder.prototype.writeVarLong;

/** A varlong of a value within 32 bits is its zigzag-32 as a varint (e.g. a record's timestamp delta). */
function writeVarLong(this: RopeEncoder, value: unknown): RopeEncoder {
  if (typeof value !== "number" || !Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) return originalWriteVarLong.call(this, value);
  return writeUVarInt.call(this, ((value << 1) ^ (value >> 31)) >>> 0);
}

function size(this: RopeEncoder): number {
  return (this.partsLength ?? 0) + this.offset;
}

/** Makes every kafkajs Encoder a rope. Called once, by installKafkajsPatches (index.ts). */
export function installRopeEncoder(): void {
  const proto = Encoder.prototype;
  Object.assign(proto, { ensureAvailable, writeBufferInternal, writeBytes, writeEncoder, writeEncoderArray, writeUVarInt, writeVarLong, size });
  // A new Encoder starts with Buffer.alloc(nextPowerOfTwo(511)): 512 zeroed bytes, most of a
  // header's or record's never used. It starts empty instead; the first write takes what it needs.
  Encoder.nextPowerOfTwo = () => 0;
  Object.defineProperty(proto, "buffer", { get: joined, configurable: true });
}
