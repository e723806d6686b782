// The snappy, lz4 and zstd codecs, registered through kafkajs' public CompressionCodecs
// registry (kafkajs itself ships only gzip). They must work inside the compiled binary, so no
// native addons: zstd is Bun's built-in (node:zlib's zstdCompressSync, libzstd inside Bun),
// snappy and lz4 are pure JavaScript (snappyjs 0.7.0, lz4js 0.2.0). Measured CPU and speed are
// in the README's codec table (scripts/codec-bench.ts) and bench/.
//
// Invariants, each checked by the real broker (which decompresses and validates every batch
// it stores) and by kcat decoding what was sent (tests/kafka-real-codecs.test.ts):
// - snappy: raw Snappy (no xerial framing), which the Java broker and librdkafka both read;
// - lz4: an LZ4 *frame* with independent blocks. lz4js' own compress() marks its blocks as
//   dependent, which Kafka's Lz4BlockInputStream refuses ("Dependent block stream is
//   unsupported"), so the frame is written here: magic, FLG 0x60 (version 1, block
//   independence, no checksums), BD for 64 KiB blocks, the header checksum (xxhash32 >> 8),
//   each block compressed on its own (stored raw when it would not shrink), the end mark;
// - zstd: a standard zstd frame (level 3, zstd's default).

import { zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { CompressionCodecs, CompressionTypes } from "kafkajs";
import * as lz4 from "lz4js";
import * as xxh32 from "lz4js/xxh32.js";
import snappy from "snappyjs";

type Codec = () => { compress(encoder: { buffer: Buffer }): Promise<Buffer>; decompress(buffer: Buffer): Promise<Buffer> };

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.length);

const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK = 64 * 1024; // BD 4
const LZ4_UNCOMPRESSED = 0x80000000;
const hashTable = new Uint32Array(1 << 16);

/** An LZ4 frame of independent 64 KiB blocks, as Kafka's Lz4BlockInputStream reads it. */
export function lz4Frame(src: Uint8Array): Buffer {
  const blocks = Math.ceil(src.length / LZ4_BLOCK);
  const out = Buffer.allocUnsafe(7 + blocks * (4 + lz4.compressBound(LZ4_BLOCK)) + 4);
  out.writeUInt32LE(LZ4_MAGIC, 0);
  out[4] = 0x60; // version 01, block independence
  out[5] = 4 << 4; // 64 KiB blocks
  out[6] = (xxh32.hash(0, out, 4, 2) >> 8) & 0xff;
  let at = 7;
  const scratch = Buffer.allocUnsafe(lz4.compressBound(LZ4_BLOCK));
  for (let start = 0; start < src.length; start += LZ4_BLOCK) {
    const block = src.subarray(start, Math.min(src.length, start + LZ4_BLOCK));
    hashTable.fill(0);
    const n = lz4.compressBlock(block, scratch, 0, block.length, hashTable);
    if (n > 0 && n < block.length) {
      out.writeUInt32LE(n, at);
      scratch.copy(out, at + 4, 0, n);
      at += 4 + n;
    } else {
      out.writeUInt32LE((LZ4_UNCOMPRESSED | block.length) >>> 0, at);
      out.set(block, at + 4);
      at += 4 + block.length;
    }
  }
  out.writeUInt32LE(0, at);
  return out.subarray(0, at + 4);
}

const snappyCodec: Codec = () => ({
  compress: async (encoder) => asBuffer(snappy.compress(encoder.buffer)),
  decompress: async (buffer) => asBuffer(snappy.uncompress(buffer)),
});

const lz4Codec: Codec = () => ({
  compress: async (encoder) => lz4Frame(encoder.buffer),
  decompress: async (buffer) => asBuffer(lz4.decompress(buffer)),
});

const zstdCodec: Codec = () => ({
  compress: async (encoder) => zstdCompressSync(encoder.buffer),
  decompress: async (buffer) => zstdDecompressSync(buffer),
});

/** Registers snappy, lz4 and zstd with kafkajs. Called once, by installKafkajsPatches (index.ts). */
export function installCodecs(): void {
  CompressionCodecs[CompressionTypes.Snappy] = snappyCodec;
  CompressionCodecs[CompressionTypes.LZ4] = lz4Codec;
  CompressionCodecs[CompressionTypes.ZSTD] = zstdCodec;
}
