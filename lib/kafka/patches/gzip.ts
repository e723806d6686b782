// The gzip codec, registered through kafkajs' public CompressionCodecs registry.
//
// kafkajs compresses gzip with node:zlib's streaming gzip (a stream, its output in 16 KiB
// pieces joined at the end). Bun's one-shot gzip with libdeflate writes the same format in
// one call. Measured on the 250 MB backlog with compression gzip (medians of 3, same run as
// kcat): 39 → 56 MB/s, 26 → 19 CPU s per GB, peak RSS 104 → 90 MB.
//
// Invariant: the output is standard gzip (RFC 1952), which any Kafka consumer inflates;
// tests/kafkajsPatches.test.ts inflates it with node:zlib.

import { CompressionCodecs, CompressionTypes } from "kafkajs";

/** Makes kafkajs compress (and decompress) gzip record batches with Bun's libdeflate. Called once, by installKafkajsPatches (index.ts). */
export function installGzipCodec(): void {
  CompressionCodecs[CompressionTypes.GZIP] = () => ({
    compress: async (encoder: { buffer: Buffer<ArrayBuffer> }) => {
      const gz = Bun.gzipSync(encoder.buffer, { library: "libdeflate" } as Parameters<typeof Bun.gzipSync>[1]);
      return Buffer.from(gz.buffer, gz.byteOffset, gz.length);
    },
    decompress: async (buffer: Buffer<ArrayBuffer>) => Buffer.from(Bun.gunzipSync(buffer)),
  });
}
