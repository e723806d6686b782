// The snappy, lz4 and zstd codecs logship registers with kafkajs (lib/kafka/patches/codecs.ts):
// round trips, and the LZ4 frame Kafka's Java reader accepts (independent blocks) whose blocks
// liblz4 (librdkafka, kcat) accepts too (LZ4's end-of-block rules). The real broker and kcat
// check them end to end in tests/kafka-real-broker.test.ts and tests/e2e-codecs.test.ts.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { CompressionCodecs, CompressionTypes } from "kafkajs";
import * as lz4 from "lz4js";
import { lz4Frame } from "../lib/kafka/patches/lz4.ts";
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

/**
 * Decodes an LZ4 frame (no checksums, no content size) holding each block to the block
 * format's end-of-block rules as liblz4 does for a full block (against the block's own end):
 * the last sequence is literals only, the last match starts at least 12 bytes before the end,
 * and at least 5 literal bytes follow it. Throws naming the block and the rule.
 */
function strictLz4Decode(frame: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 7;
  for (let b = 0; ; b++) {
    const word = frame.readUInt32LE(at);
    at += 4;
    if (word === 0) break;
    const n = word & 0x7fffffff;
    if (word >>> 31) {
      out.push(frame.subarray(at, at + n));
      at += n;
      continue;
    }
    const dst: number[] = [];
    const end = at + n;
    let matchStart = -1;
    let matchEnd = -1;
    while (true) {
      const token = frame[at++]!;
      let lit = token >> 4;
      if (lit === 15) for (let x = 255; x === 255; lit += x) x = frame[at++]!;
      for (let i = 0; i < lit; i++) dst.push(frame[at++]!);
      if (at === end) break; // the last sequence: literals only
      if (at > end - 2) throw new Error(`block ${b}: a sequence runs past the block's end`);
      const offset = frame[at++]! | (frame[at++]! << 8);
      let len = token & 15;
      if (len === 15) for (let x = 255; x === 255; len += x) x = frame[at++]!;
      if (offset === 0 || offset > dst.length) throw new Error(`block ${b}: offset ${offset} outside the block`);
      matchStart = dst.length;
      for (let i = 0; i < len + 4; i++) dst.push(dst[dst.length - offset]!);
      matchEnd = dst.length;
    }
    const size = dst.length;
    if (matchStart >= 0 && size - matchStart < 12) throw new Error(`block ${b} (${size} bytes): its last match starts ${size - matchStart} bytes before its end (at least 12)`);
    if (matchEnd >= 0 && size - matchEnd < 5) throw new Error(`block ${b} (${size} bytes): ${size - matchEnd} literal bytes after its last match (at least 5)`);
    out.push(Buffer.from(dst));
  }
  return Buffer.concat(out);
}

/** Many short, similar lines, as `format: line` batches them: "...Z INFO req=N ok\n". */
const shortLines = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => `2026-11-30T12:00:${String(i % 60).padStart(2, "0")}Z INFO req=${i} ok\n`).join(""));

test("lz4: every block keeps LZ4's end-of-block rules, so liblz4 (librdkafka, the broker) decodes full 64 KiB blocks", () => {
  const cases: [string, Buffer][] = [
    ...inputs,
    ["short similar lines, 2.3 MB", shortLines(60_000)],
    ...Array.from({ length: 40 }, (_, k): [string, Buffer] => [`short similar lines from ${k * 37}, 70 KiB`, shortLines(2000).subarray(k * 37, k * 37 + 70 * 1024)]),
    ...Array.from({ length: 60 }, (_, k): [string, Buffer] => [`"abcd" repeated, ${13 + k} bytes`, Buffer.from("abcd".repeat(20).slice(0, 13 + k))]),
    ["one byte repeated, 64 KiB", Buffer.alloc(64 * 1024, 0x61)],
  ];
  for (const [what, input] of cases) {
    const frame = lz4Frame(input);
    let decoded: Buffer;
    try {
      decoded = strictLz4Decode(frame);
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message}`);
    }
    expect({ what, same: decoded.equals(input) }).toEqual({ what, same: true });
  }
});
