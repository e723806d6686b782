// pack.ts: a span of lines becomes records that give back its bytes exactly, cut only at
// line ends (except a line too long for any record), each within max_message_bytes once
// key, headers and framing are counted — checked against kafkajs' own encoder.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { BATCH_OVERHEAD, chunkHeaders, compressionSlack, countLines, hardCapacity, pack, recordOverhead, type Chunk, type PackLimits, type Source } from "../lib/kafka/pack.ts";
import { nextBatch } from "../lib/kafka/publish.ts";
import type { Span } from "../lib/files/read.ts";

// kafkajs' record and record-batch encoders, exactly as its Produce request (v3+) uses them.
const kafkajs = createRequire(require.resolve("kafkajs"));
const encodeRecord = kafkajs("./src/protocol/recordBatch/record/v0/index.js") as (r: {
  key: string;
  value: Buffer;
  headers: Record<string, string | Buffer>;
  offsetDelta: number;
  timestampDelta: number;
}) => unknown;
const { RecordBatch } = kafkajs("./src/protocol/recordBatch/v0/index.js") as {
  RecordBatch: (b: { records: unknown[]; compression?: number; lastOffsetDelta?: number }) => Promise<{ size(): number }>;
};
const { Types: Codec } = kafkajs("./src/protocol/message/compression/index.js") as { Types: { None: number; GZIP: number } };

/** Encoded size of one partition's record batch holding these chunks, as kafkajs sends it. */
async function encodedBatchSize(chunks: Chunk[], compression = Codec.None): Promise<number> {
  const records = chunks.map((c, i) => encodeRecord({ key: c.source.path, value: c.value, headers: chunkHeaders(c), offsetDelta: i, timestampDelta: 0 }));
  const batch = await RecordBatch({ records, compression, lastOffsetDelta: records.length - 1 });
  return batch.size();
}

/** A small seeded PRNG (mulberry32), so a failing case can be replayed from its seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)); // inclusive
  return { next, int, pick: <T>(xs: readonly T[]) => xs[int(0, xs.length - 1)]! };
}

const SOURCE: Source = { file: "a3f9c2d1e8b7a6f5a3f9c2d1e8b7a6f5", path: "/var/log/app/service.log", topic: "logs", host: "edge-7" };
const span = (text: string | Buffer, start = 0): Span => {
  const bytes = Buffer.from(text);
  return { bytes, start, end: start + bytes.length };
};

/** Every invariant pack promises, checked on one result. */
function checkPacking(s: Span, source: Source, limits: PackLimits, chunks: Chunk[]): void {
  expect(chunks.length).toBeGreaterThan(0);
  // The bytes come back exactly, as views of the span's buffer.
  expect(Buffer.concat(chunks.map((c) => c.value)).equals(s.bytes)).toBe(true);
  for (const c of chunks) if (c.value.length > 0) expect(c.value.buffer).toBe(s.bytes.buffer);
  // Contiguous, from the span's start to its end.
  expect(chunks[0]!.start).toBe(s.start);
  for (let i = 0; i + 1 < chunks.length; i++) {
    expect(chunks[i]!.end).toBe(chunks[i + 1]!.start);
    expect(chunks[i]!.end - chunks[i]!.start).toBe(chunks[i]!.value.length);
  }
  expect(chunks.at(-1)!.end).toBe(s.end);
  let pos = 0;
  for (const [i, c] of chunks.entries()) {
    expect(c.source).toBe(source);
    expect(c.start).toBe(s.start + pos);
    expect(c.lines).toBe(countLines(c.value));
    const overhead = recordOverhead(source, c.start);
    // Never over the limit, headers and framing counted.
    expect(c.size).toBeGreaterThanOrEqual(overhead + c.value.length);
    expect(c.size + BATCH_OVERHEAD).toBeLessThanOrEqual(limits.maxMessageBytes);
    const hard = hardCapacity(source, c.start, limits);
    expect(c.value.length).toBeLessThanOrEqual(hard);
    const endsLine = c.value.at(-1) === 0x0a;
    const nextNl = s.bytes.indexOf(0x0a, pos);
    const lineEnd = nextNl === -1 ? s.bytes.length : nextNl + 1; // end of the line c starts in
    if (!endsLine) {
      // Only a piece of a line longer than a whole record: full to the byte, no "\n" inside.
      expect(c.value.includes(0x0a)).toBe(false);
      expect(c.value.length).toBe(hard);
      expect(lineEnd - pos).toBeGreaterThan(hard);
    } else if (i + 1 < chunks.length) {
      // Greedy: the next line would not have fitted the target (or the limit).
      const soft = Math.max(1, Math.min(hard, limits.targetMessageBytes - overhead));
      const afterNl = s.bytes.indexOf(0x0a, pos + c.value.length);
      const nextLineLen = (afterNl === -1 ? s.bytes.length : afterNl + 1) - (pos + c.value.length);
      expect(c.value.length + nextLineLen).toBeGreaterThan(soft);
    }
    pos += c.value.length;
  }
}

describe("pack", () => {
  test("small lines go into one record, whole", () => {
    const chunks = pack(span("a\nbb\n\nccc\r\n", 100), SOURCE, { maxMessageBytes: 1_000_000, targetMessageBytes: 256 * 1024 });
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toMatchObject({ start: 100, end: 111, lines: 4 });
    expect(chunks[0]!.value.toString()).toBe("a\nbb\n\nccc\r\n");
    expect(chunkHeaders(chunks[0]!)).toEqual({ host: "edge-7", path: "/var/log/app/service.log", offset: "100", file: SOURCE.file });
  });

  test("records aim at the target size and cut only at line ends", () => {
    const lines = Array.from({ length: 100 }, (_, i) => `line ${String(i).padStart(3, "0")} ${"x".repeat(40)}\n`).join("");
    const limits = { maxMessageBytes: 100_000, targetMessageBytes: recordOverhead(SOURCE, 99_999) + 500 };
    const s = span(lines);
    const chunks = pack(s, SOURCE, limits);
    expect(chunks.length).toBeGreaterThan(5);
    for (const c of chunks) {
      expect(c.value.toString()).toMatch(/^(line \d{3} x{40}\n)+$/);
      expect(c.value.length).toBeLessThanOrEqual(500);
    }
    checkPacking(s, SOURCE, limits, chunks);
  });

  test("a line that fills a record to the byte stays whole; one byte more is split", () => {
    const limits = { maxMessageBytes: 4096, targetMessageBytes: 1024 };
    const cap = hardCapacity(SOURCE, 0, limits);
    const exact = span("z".repeat(cap - 1) + "\n");
    const one = pack(exact, SOURCE, limits);
    expect(one).toHaveLength(1);
    expect(one[0]!.value.length).toBe(cap);
    expect(one[0]!.size + BATCH_OVERHEAD).toBeLessThanOrEqual(4096);

    const over = span("z".repeat(cap) + "\n");
    const two = pack(over, SOURCE, limits);
    expect(two.map((c) => c.value.length)).toEqual([cap, 1]);
    expect(two.map((c) => c.start)).toEqual([0, cap]);
    expect(two[1]!.value.toString()).toBe("\n");
    checkPacking(over, SOURCE, limits, two);
  });

  test("a line longer than the target but within the limit is sent whole", () => {
    const limits = { maxMessageBytes: 10_000, targetMessageBytes: 1_024 };
    const s = span("a\n" + "b".repeat(5_000) + "\nc\n");
    const chunks = pack(s, SOURCE, limits);
    expect(chunks.map((c) => c.value.toString().length)).toEqual([2, 5_001, 2]);
    checkPacking(s, SOURCE, limits, chunks);
  });

  test("a very long line is cut into full records, each with its own offset", () => {
    const limits = { maxMessageBytes: 2_048, targetMessageBytes: 2_048 };
    const s = span("head\n" + "L".repeat(10_000) + "\ntail\n", 5_000_000);
    const chunks = pack(s, SOURCE, limits);
    checkPacking(s, SOURCE, limits, chunks);
    // "head" is not held back to share a record with the start of the long line.
    expect(chunks[0]!.value.toString()).toBe("head\n");
    expect(chunks.slice(1, -1).every((c) => /^L+$/.test(c.value.toString()))).toBe(true);
    expect(chunks.at(-1)!.value.toString()).toMatch(/^L+\ntail\n$/);
    expect(chunks.length).toBeGreaterThan(5);
    expect(new Set(chunks.map((c) => chunkHeaders(c).offset)).size).toBe(chunks.length);
  });

  test("an empty span (bytes skipped by the reader) is one empty chunk that moves the offset", () => {
    const chunks = pack({ bytes: Buffer.alloc(0), start: 10, end: 5_000 }, SOURCE, { maxMessageBytes: 1_000_000, targetMessageBytes: 1_000 });
    expect(chunks).toEqual([{ source: SOURCE, value: Buffer.alloc(0), start: 10, end: 5_000, lines: 0, size: 0 }]);
  });

  test("a span whose end is past its bytes (a truncated line) ends its last chunk there", () => {
    const bytes = Buffer.from("x".repeat(64) + "\n");
    const chunks = pack({ bytes, start: 0, end: 1_000 }, SOURCE, { maxMessageBytes: 1_000_000, targetMessageBytes: 1_000 });
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toMatchObject({ start: 0, end: 1_000, lines: 1 });
  });

  test("a limit that leaves no room for any value is a RangeError, not a loop", () => {
    const longPath: Source = { ...SOURCE, path: "/" + "p".repeat(600) };
    expect(() => pack(span("a\n"), longPath, { maxMessageBytes: 1_024, targetMessageBytes: 1_024 })).toThrow(RangeError);
  });

  test("property: random spans and limits keep every invariant", () => {
    const r = rng(20_240_601);
    let cases = 0;
    let longPieces = 0;
    for (let iter = 0; iter < 400; iter++) {
      const source: Source = {
        file: "f".repeat(r.pick([0, 16, 32, 64])),
        path: "/var/log/" + r.pick(["a", "ü".repeat(r.int(1, 40)), "d/".repeat(r.int(1, 60)) + "x.log"]),
        topic: "t",
        host: "h".repeat(r.int(1, 64)),
      };
      const start = r.pick([0, r.int(0, 1_000), r.int(0, 1e9), r.int(0, 2 ** 52)]);
      const minMax = recordOverhead(source, start + 1e7) + BATCH_OVERHEAD + compressionSlack(70_000) + 32;
      const maxMessageBytes = r.int(minMax, minMax + r.pick([64, 1_000, 20_000, 60_000]));
      const targetMessageBytes = r.int(1, maxMessageBytes);
      const limits = { maxMessageBytes, targetMessageBytes };
      const capacity = hardCapacity(source, start, limits);
      const parts: Buffer[] = [];
      const lineCount = r.int(1, 80);
      for (let l = 0; l < lineCount; l++) {
        const kind = r.next();
        const len = kind < 0.15 ? 0 : kind < 0.9 ? r.int(1, 200) : kind < 0.97 ? r.int(capacity - 2, capacity + 2) : r.int(capacity, 3 * capacity);
        // Random bytes with NUL, 0xff, stray CR and broken UTF-8 sprinkled in; never "\n".
        const line = randomBytes(len);
        for (let b = 0; b < line.length; b += r.int(1, 16)) line[b] = r.pick([0x00, 0xff, 0x0d, 0xc3, 0x80]);
        for (let b = line.indexOf(0x0a); b !== -1; b = line.indexOf(0x0a, b + 1)) line[b] = 0x0b;
        parts.push(line, Buffer.from(r.next() < 0.3 ? "\r\n" : "\n"));
      }
      const bytes = Buffer.concat(parts);
      const s: Span = { bytes, start, end: start + bytes.length };
      const chunks = pack(s, source, limits);
      checkPacking(s, source, limits, chunks);
      expect(chunks.reduce((n, c) => n + c.lines, 0)).toBe(lineCount);
      longPieces += chunks.filter((c) => c.value.at(-1) !== 0x0a).length;
      cases++;
    }
    expect(cases).toBe(400);
    expect(longPieces).toBeGreaterThan(20); // the over-long case was really exercised
  });
});

describe("record size against kafkajs' encoder", () => {
  test("the empty batch is exactly BATCH_OVERHEAD", async () => {
    expect((await RecordBatch({ records: [] })).size()).toBe(BATCH_OVERHEAD);
  });

  test("one record's encoded batch is never larger than pack predicts, for many paths and headers", async () => {
    const paths = ["/a", "/var/log/app.log", "/var/log/" + "é".repeat(100) + ".log", "/" + "d/".repeat(300) + "x.log"];
    const hosts = ["h", "edge-7.example.internal", "x".repeat(200)];
    const files = ["", "a3f9c2d1e8b7a6f5", "f".repeat(64)];
    const offsets = [0, 9, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 52];
    const sizes = [1, 127, 128, 16_383, 16_384, 70_000];
    let checked = 0;
    let worstSlack = Infinity;
    for (const path of paths)
      for (const host of hosts)
        for (const file of files) {
          const source: Source = { path, host, file, topic: "t" };
          for (const offset of offsets) {
            const size = sizes[checked % sizes.length]!;
            const value = Buffer.alloc(size, 0x61);
            value[size - 1] = 0x0a;
            const chunks = pack({ bytes: value, start: offset, end: offset + size }, source, { maxMessageBytes: 1_000_000, targetMessageBytes: 1_000_000 });
            expect(chunks).toHaveLength(1);
            const encoded = await encodedBatchSize(chunks);
            expect(encoded).toBeLessThanOrEqual(BATCH_OVERHEAD + chunks[0]!.size);
            expect(encoded - BATCH_OVERHEAD).toBeLessThanOrEqual(recordOverhead(source, offset) + size);
            worstSlack = Math.min(worstSlack, BATCH_OVERHEAD + chunks[0]!.size - encoded);
            checked++;
          }
        }
    expect(checked).toBe(paths.length * hosts.length * files.length * offsets.length);
    expect(worstSlack).toBeGreaterThanOrEqual(0);
  });

  test("a record packed to the limit encodes within max_message_bytes, with and without gzip, even when incompressible", async () => {
    for (const max of [2_000, 100_000, 1_000_000]) {
      const cap = hardCapacity(SOURCE, 0, { maxMessageBytes: max, targetMessageBytes: max });
      const line = randomBytes(cap);
      for (let i = 0; i < line.length; i++) if (line[i] === 0x0a) line[i] = 0x0b;
      line[cap - 1] = 0x0a;
      const chunks = pack(span(line), SOURCE, { maxMessageBytes: max, targetMessageBytes: max });
      expect(chunks).toHaveLength(1);
      expect(await encodedBatchSize(chunks, Codec.None)).toBeLessThanOrEqual(max);
      expect(await encodedBatchSize(chunks, Codec.GZIP)).toBeLessThanOrEqual(max);
    }
  });

  test("a batch nextBatch assembles encodes within max_message_bytes, with and without gzip", async () => {
    const r = rng(7);
    const limits = { maxMessageBytes: 50_000, targetMessageBytes: 4_000 };
    for (let iter = 0; iter < 20; iter++) {
      const lines: Buffer[] = [];
      for (let i = 0; i < 60; i++) {
        const line = randomBytes(r.int(0, 3_000));
        for (let b = 0; b < line.length; b++) if (line[b] === 0x0a) line[b] = 0x0b;
        lines.push(line, Buffer.from("\n"));
      }
      const queue = pack(span(Buffer.concat(lines), r.int(0, 1e9)), SOURCE, limits);
      while (queue.length > 0) {
        const batch = nextBatch(queue, { maxMessageBytes: limits.maxMessageBytes, maxSendBytes: 10 * limits.maxMessageBytes }, () => 0);
        expect(batch.length).toBeGreaterThan(0);
        expect(BATCH_OVERHEAD + batch.reduce((n, c) => n + c.size, 0)).toBeLessThanOrEqual(limits.maxMessageBytes);
        expect(await encodedBatchSize(batch, Codec.None)).toBeLessThanOrEqual(limits.maxMessageBytes);
        expect(await encodedBatchSize(batch, Codec.GZIP)).toBeLessThanOrEqual(limits.maxMessageBytes);
        queue.splice(0, batch.length);
      }
    }
  });
});
