import { expect, test } from "bun:test";
import { CompressionCodecs, CompressionTypes } from "kafkajs";
import { gunzipSync } from "node:zlib";
import { checkKafkajsVersion, installKafkajsPatches, PATCHED_KAFKAJS_VERSION, withEncoderArena } from "../lib/kafka/patches/index.ts";
// @ts-expect-error kafkajs ships no types for its internals
import ProduceV3 from "kafkajs/src/protocol/requests/produce/v3/request.js";
// @ts-expect-error kafkajs ships no types for its internals
import createRequest from "kafkajs/src/protocol/request.js";
import Encoder from "kafkajs/src/protocol/encoder.js";

installKafkajsPatches();
installKafkajsPatches(); // a second call does nothing

// Deterministic produce requests around the rope threshold (1 KiB): values referenced and
// copied, several records and partitions per batch, headers, keys. Stands alone, so the same
// source builds the same request in a process where kafkajs is not patched.
function fixture(sizes: number[][], compression = 0) {
  let seed = 7;
  const bytes = (n: number) => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    return b;
  };
  const partitions = sizes.map((values, partition) => ({
    partition,
    firstSequence: 0,
    messages: values.map((n, i) => ({
      key: `/var/log/app-${partition}.log`,
      value: bytes(n),
      timestamp: 1_700_000_000_000 + i,
      headers: { file: "2049:1234:abcd", offset: String(i * 1000), host: "h" },
    })),
  }));
  return {
    acks: -1,
    timeout: 30_000,
    compression,
    topicData: [
      { topic: "logs", partitions },
      { topic: "other", partitions: partitions.slice(0, 1) },
    ],
  };
}

const SIZES = [[100, 1023, 1024, 300, 16 * 1024], [256 * 1024, 256 * 1024, 70_000], [1_000_000], [0, 5], Array.from({ length: 400 }, (_, i) => 200 + i * 7)];

async function encodeHere(sizes: number[][], compression = 0): Promise<Buffer> {
  const request = ProduceV3(fixture(sizes, compression));
  const encoder = await createRequest({ correlationId: 42, clientId: "logship", request });
  return encoder.buffer;
}

/** The same request encoded by kafkajs as shipped, in a process that never loads the patches. */
function encodeByKafkajs(sizes: number[][], compression = 0): Buffer {
  // logship compresses gzip with libdeflate (lib/kafka/patches/gzip.ts); kafkajs gets the same codec,
  // so what is compared is the encoding around the compressed bytes.
  const script = `
    const { CompressionCodecs, CompressionTypes } = require("kafkajs");
    CompressionCodecs[CompressionTypes.GZIP] = () => ({
      compress: async (e) => Buffer.from(Bun.gzipSync(e.buffer, { library: "libdeflate" })),
    });
    const ProduceV3 = require("kafkajs/src/protocol/requests/produce/v3/request.js");
    const createRequest = require("kafkajs/src/protocol/request.js");
    const fixture = ${fixture.toString()};
    createRequest({ correlationId: 42, clientId: "logship", request: ProduceV3(fixture(${JSON.stringify(sizes)}, ${compression})) })
      .then((e) => process.stdout.write(e.buffer));
  `;
  const run = Bun.spawnSync([process.execPath, "-e", script], { cwd: `${import.meta.dir}/..`, stderr: "pipe" });
  if (run.exitCode !== 0) throw new Error(run.stderr.toString());
  return Buffer.from(run.stdout);
}

test("produce requests are byte for byte what kafkajs itself encodes, CRCs included", async () => {
  const expected = encodeByKafkajs(SIZES);
  expect(expected.length).toBeGreaterThan(1_600_000);
  expect((await encodeHere(SIZES)).equals(expected)).toBe(true);
  const pooled = await withEncoderArena(() => encodeHere(SIZES));
  expect(pooled.equals(expected)).toBe(true);
});

test("gzip-compressed produce requests are what kafkajs itself encodes", async () => {
  const sizes = [[100, 300_000], [70_000]];
  const expected = encodeByKafkajs(sizes, 1);
  expect((await withEncoderArena(() => encodeHere(sizes, 1))).equals(expected)).toBe(true);
});

test("gzip record batches are standard gzip: zlib inflates them to the records", async () => {
  const records = Buffer.from("2026-11-24T10:00:00Z INFO app started\n".repeat(10_000));
  const codec = CompressionCodecs[CompressionTypes.GZIP]!();
  const compressed: Buffer = await codec.compress({ buffer: records } as never);
  expect(Buffer.isBuffer(compressed)).toBe(true);
  expect(compressed.length).toBeLessThan(records.length / 20);
  expect(gunzipSync(compressed).equals(records)).toBe(true);
  expect((await codec.decompress(compressed)).equals(records)).toBe(true);
});

test("a request stays intact until its send is answered, though the next send reuses its buffers", async () => {
  const expected = encodeByKafkajs(SIZES);
  let first: Buffer | undefined;
  await withEncoderArena(async () => {
    first = await encodeHere(SIZES);
    expect(first.equals(expected)).toBe(true);
  });
  const second = await withEncoderArena(() => encodeHere(SIZES));
  expect(second.buffer).toBe(first!.buffer); // the first send's request buffer came back to the pool
});

test("overlapping sends (one per topic lane): a request encoded during another send's arena is never reused while it may be unanswered", async () => {
  let outer: Buffer | undefined;
  let inner: Buffer | undefined;
  let answerInner: () => void = () => {};
  let innerSend: Promise<void> | undefined;
  await withEncoderArena(async () => {
    outer = await encodeHere(SIZES);
    // a second lane's send starts while the first is under way, and is answered only later
    innerSend = withEncoderArena(async () => {
      inner = await encodeHere([[300_000]]);
      await new Promise<void>((r) => (answerInner = r));
    });
    await Bun.sleep(0);
  });
  const innerCopy = Buffer.from(inner!);
  const outerCopy = Buffer.from(outer!);
  // the first send was answered; the inner one is still pending: later sends must not take either's buffers
  for (let i = 0; i < 3; i++) await withEncoderArena(() => encodeHere([[300_001], [70_001]]));
  expect(inner!.equals(innerCopy)).toBe(true);
  expect(outer!.equals(outerCopy)).toBe(true);
  answerInner();
  await innerSend;
  // alone again, sends are pooled as before
  const a = await withEncoderArena(() => encodeHere(SIZES));
  const b = await withEncoderArena(() => encodeHere(SIZES));
  expect(b.buffer).toBe(a.buffer);
});

test("a failed send's buffers are never handed out again", async () => {
  let failed: Buffer | undefined;
  await withEncoderArena(async () => {
    failed = await encodeHere(SIZES);
    throw new Error("no answer");
  }).catch(() => {});
  const copy = Buffer.from(failed!);
  for (let i = 0; i < 3; i++) await withEncoderArena(() => encodeHere(SIZES.map((p) => p.map((n) => n + 1))));
  expect(failed!.equals(copy)).toBe(true);
});

test("an encoder that references large buffers reports their size and joins them on demand", () => {
  const big = Buffer.alloc(20_000, 1);
  const e = new Encoder().writeInt8(7).writeBuffer(big).writeInt16(-1);
  expect(e.size()).toBe(20_003);
  const outer = new Encoder().writeInt32(e.size()).writeEncoder(e);
  expect(outer.size()).toBe(20_007);
  big[0] = 2; // referenced, not copied: the join sees the buffer as it is when asked
  const joined: Buffer = outer.buffer;
  expect([...joined.subarray(0, 6)]).toEqual([0, 0, 0x4e, 0x23, 7, 2]);
  expect(joined.readInt16BE(20_005)).toBe(-1);
  expect(outer.buffer.buffer).toBe(joined.buffer); // joined once
  expect(() => new Encoder().writeEncoder({})).toThrow("instance of Encoder");
});

test("varints and varlongs are written as Kafka's zigzag LEB128, at the 32-bit edges and beyond", () => {
  const reference = (v: bigint): number[] => {
    let z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
    const out: number[] = [];
    while (z >= 0x80n) {
      out.push(Number(z & 0x7fn) | 0x80);
      z >>= 7n;
    }
    out.push(Number(z));
    return out;
  };
  const values = [0, 1, -1, 63, -64, 64, -65, 300, -300, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2 ** 40, -(2 ** 40), Number.MAX_SAFE_INTEGER];
  for (const v of values) {
    const bytes = [...new Encoder().writeVarLong(v).buffer];
    expect(bytes).toEqual(reference(BigInt(v)));
    if (v >= -(2 ** 31) && v < 2 ** 31) expect([...new Encoder().writeVarInt(v).buffer]).toEqual(reference(BigInt(v)));
  }
});

test("the patches accept the pinned kafkajs version and refuse any other, naming both and where to look", () => {
  expect(PATCHED_KAFKAJS_VERSION).toBe("2.2.4");
  expect(() => checkKafkajsVersion("2.2.4")).not.toThrow();
  expect(() => checkKafkajsVersion(require("kafkajs/package.json").version)).not.toThrow(); // what node_modules holds
  for (const other of ["2.2.5", "3.0.0", "2.2.4-beta.1"]) {
    let message = "";
    try {
      checkKafkajsVersion(other);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("kafkajs 2.2.4");
    expect(message).toContain(`kafkajs ${other}`);
    expect(message).toContain("lib/kafka/patches/");
  }
});
