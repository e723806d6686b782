// The snappy, lz4 and zstd codecs logship registers with kafkajs (lib/kafka/patches/codecs.ts):
// round trips, and the LZ4 frame Kafka's Java reader accepts (independent blocks). The real
// broker and kcat check them end to end in tests/kafka-real-broker.test.ts.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { CompressionCodecs, CompressionTypes } from "kafkajs";
import * as lz4 from "lz4js";
import { lz4Frame } from "../lib/kafka/patches/codecs.ts";
import { installKafkajsPatches } from "../lib/kafka/patches/index.ts";

installKafkajsPatches();
const inputs: [string, Buffer][] = [
  ["empty", Buffer.alloc(0)],
  ["one line", Buffer.from("hello\n")],
  ["log lines, 300 KiB (several lz4 blocks)", Buffer.from(Array.from({ length: 5000 }, (_, i) => `2026-11-30T12:00:${String(i % 60).padStart(2, "0")}Z INFO req=${i * 7919} path=/api/${i % 13}\n`).join(""))],
  ["random bytes, 200 KiB (incompressible: stored blocks)", randomBytes(200 * 1024)],
];

describe.each([["snappy", CompressionTypes.Snappy], ["lz4", CompressionTypes.LZ4], ["zstd", CompressionTypes.ZSTD]] as const)("%s", (_name, type) => {
  const codec = (CompressionCodecs as Record<number, () => { compress(e: { buffer: Buffer }): Promise<Buffer>; decompress(b: Buffer): Promise<Buffer> }>)[type]!();
  for (const [what, input] of inputs) {
    test(`round trip: ${what}`, async () => {
      const packed = await codec.compress({ buffer: input });
      expect((await codec.decompress(packed)).equals(input)).toBe(true);
      if (what.startsWith("log")) expect(packed.length).toBeLessThan(input.length / 2);
    });
  }
});

test("lz4: a frame with version 1 and independent blocks (FLG 0x60), 64 KiB blocks, end mark; lz4js reads it", () => {
  const input = inputs[2]![1];
  const frame = lz4Frame(input);
  expect(frame.readUInt32LE(0)).toBe(0x184d2204);
  expect(frame[4]).toBe(0x60);
  expect(frame[5]).toBe(0x40);
  expect(frame.readUInt32LE(frame.length - 4)).toBe(0);
  expect(Buffer.from(lz4.decompress(frame)).equals(input)).toBe(true);
  const stored = lz4Frame(inputs[3]![1]);
  expect(stored.readUInt32LE(7) >>> 31).toBe(1); // incompressible block stored raw, flagged
});
