// The snappy, lz4 and zstd codecs, registered through kafkajs' public CompressionCodecs
// registry (kafkajs itself ships only gzip). They must work inside the compiled binary, so no
// native addons: zstd is Bun's built-in (node:zlib's zstdCompressSync, libzstd inside Bun),
// snappy and lz4 are pure JavaScript (snappyjs 0.7.0, lz4js 0.2.0). Measured CPU and speed are
// in the README's codec table (scripts/codec-bench.ts) and bench/.
//
// Invariants, each checked by the real broker (which decompresses and validates every batch
// it stores) and by kcat decoding what was sent (tests/kafka-real-broker.test.ts, tests/e2e-codecs.test.ts):
// - snappy: raw Snappy (no xerial framing), which the Java broker and librdkafka both read;
// - lz4: an LZ4 *frame* of independent 64 KiB blocks, written by lz4.ts (its own block
//   compressor: lz4js' compressBlock breaks LZ4's end-of-block rules, which liblz4 enforces,
//   and lz4js' compress() marks its blocks as dependent, which Kafka's Lz4BlockInputStream
//   refuses); lz4js decompresses;
// - zstd: a standard zstd frame (level 3, zstd's default).

import { zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { CompressionCodecs, CompressionTypes } from "kafkajs";
import * as lz4 from "lz4js";
import snappy from "snappyjs";
import { lz4Frame } from "./lz4.ts";

type Codec = () => { compress(encoder: { buffer: Buffer }): Promise<Buffer>; decompress(buffer: Buffer): Promise<Buffer> };

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.length);

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
