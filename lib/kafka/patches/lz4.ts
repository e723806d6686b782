// LZ4 frames for Kafka's lz4 codec (codecs.ts registers them): the frame of independent
// 64 KiB blocks that Kafka's Lz4BlockInputStream and librdkafka both read, and the block
// compressor that fills it. Input: the bytes of a record batch's records; output: one frame.
//
// Invariant: every block keeps the LZ4 block format's end-of-block rules
// (lz4_Block_format.md, "End of block conditions"): the last sequence is literals only, the
// last 5 bytes are literals, and the last match starts at least 12 bytes before the block's
// end. liblz4 (librdkafka, kcat, the lz4 tool, the Java broker through lz4-java's JNI) decodes
// a block into a buffer of the frame's block size and enforces them against that buffer's end,
// so a full 64 KiB block that breaks them is refused ("ERROR_decompressionFailed"; the broker:
// "Failed to decompress record stream"), while lenient decoders (lz4js) read it. lz4js 0.2.0's
// compressBlock lets the last match start 9 bytes before the end; many similar short lines
// (`format: line`) made that common. The compressor here is lz4js' greedy one (a 64 Ki-entry
// hash table of 4-byte sequences, skipping ahead faster while nothing matches) with liblz4's
// limits, tests/codecs.test.ts holds every block to the rules.

import * as xxh32 from "lz4js/xxh32.js";

const MAGIC = 0x184d2204;
const BLOCK = 64 * 1024; // BD 4
const STORED = 0x80000000; // block size flag: the block is stored uncompressed
const MIN_MATCH = 4;
const LAST_LITERALS = 5; // the last 5 bytes of a block are literals
const MF_LIMIT = 12; // the last match starts at least this many bytes before the block's end
const SKIP_TRIGGER = 6; // after 2^6 misses, step 2 bytes; after 2^7, 3; ...
const MAX_OFFSET = 65535;

/** The largest a block of `n` bytes can grow to: literals only (a token, 255-byte length runs). */
const blockBound = (n: number): number => n + Math.ceil(n / 255) + 16;

const table = new Int32Array(1 << 16); // hash of 4 bytes → (position in the block + 1); 0 = none

const read32 = (b: Uint8Array, i: number): number => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);

/** LZ4's multiplicative hash of 4 bytes, to 16 bits. */
const hash = (seq: number): number => Math.imul(seq, 2654435761) >>> 16;

/** Writes a length's 255-runs after its token nibble (which said 15); returns the position after them. */
function putLength(dst: Uint8Array, at: number, n: number): number {
  for (; n >= 255; n -= 255) dst[at++] = 255;
  dst[at++] = n;
  return at;
}

/**
 * Compresses `src[start, end)` as one independent LZ4 block into `dst` from `at`; returns the
 * position after it. `dst` must hold blockBound(end - start) bytes from `at`.
 */
export function compressBlock(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): number {
  let anchor = start; // first byte not yet written (as literals or a match)
  if (end - start > MF_LIMIT) {
    table.fill(0);
    const lastMatchStart = end - MF_LIMIT; // matches start at or before this ...
    const matchLimit = end - LAST_LITERALS; // ... and end at or before this
    let misses = (1 << SKIP_TRIGGER) + 3;
    let ip = start;
    while (ip <= lastMatchStart) {
      const seq = read32(src, ip);
      const h = hash(seq);
      const ref = table[h]! - 1 + start;
      table[h] = ip - start + 1;
      if (ref < start || ip - ref > MAX_OFFSET || read32(src, ref) !== seq) {
        ip += misses++ >> SKIP_TRIGGER;
        continue;
      }
      misses = (1 << SKIP_TRIGGER) + 3;
      let mEnd = ip + MIN_MATCH;
      for (let r = ref + MIN_MATCH; mEnd < matchLimit && src[mEnd] === src[r]; r++) mEnd++;
      // The sequence: token, literal length, literals, offset, match length.
      const literals = ip - anchor;
      const matchLen = mEnd - ip - MIN_MATCH;
      const token = at++;
      dst[token] = ((literals < 15 ? literals : 15) << 4) | (matchLen < 15 ? matchLen : 15);
      if (literals >= 15) at = putLength(dst, at, literals - 15);
      for (let i = anchor; i < ip; i++) dst[at++] = src[i]!; // short runs: a loop beats subarray + set
      const offset = ip - ref;
      dst[at++] = offset & 0xff;
      dst[at++] = offset >> 8;
      if (matchLen >= 15) at = putLength(dst, at, matchLen - 15);
      ip = anchor = mEnd;
    }
  }
  // The last sequence: literals only, to the end of the block.
  const literals = end - anchor;
  dst[at++] = (literals < 15 ? literals : 15) << 4;
  if (literals >= 15) at = putLength(dst, at, literals - 15);
  dst.set(src.subarray(anchor, end), at);
  return at + literals;
}

/**
 * An LZ4 frame of independent 64 KiB blocks: magic, FLG 0x60 (version 1, block independence,
 * no checksums, no content size), BD 0x40 (64 KiB blocks), the header checksum (xxhash32 >> 8),
 * each block compressed on its own (stored raw when it would not shrink), the end mark.
 */
export function lz4Frame(src: Uint8Array): Buffer {
  const blocks = Math.ceil(src.length / BLOCK);
  const out = Buffer.allocUnsafe(7 + blocks * (4 + blockBound(BLOCK)) + 4);
  out.writeUInt32LE(MAGIC, 0);
  out[4] = 0x60;
  out[5] = 4 << 4;
  out[6] = (xxh32.hash(0, out, 4, 2) >> 8) & 0xff;
  let at = 7;
  for (let start = 0; start < src.length; start += BLOCK) {
    const end = Math.min(src.length, start + BLOCK);
    const n = compressBlock(src, start, end, out, at + 4) - (at + 4);
    if (n < end - start) {
      out.writeUInt32LE(n, at);
      at += 4 + n;
    } else {
      out.writeUInt32LE((STORED | (end - start)) >>> 0, at);
      out.set(src.subarray(start, end), at + 4);
      at += 4 + end - start;
    }
  }
  out.writeUInt32LE(0, at);
  return out.subarray(0, at + 4);
}
