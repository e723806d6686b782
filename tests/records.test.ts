// records.ts and produce.ts against kafkajs' own encoding: the same chunks, as the messages
// kafkajs' producer was given ({ key: chunkKey, value, headers: chunkHeaders }), must give the
// same record batch and the same Produce request body, byte for byte, for every codec, with
// keys, null keys, static fields and long values.
import { expect, test } from "bun:test";
import { CompressionTypes } from "kafkajs";
import { installKafkajsPatches } from "../lib/kafka/patches/index.ts";
// @ts-expect-error kafkajs ships no types for its internals
import ProduceV3 from "kafkajs/src/protocol/requests/produce/v3/request.js";
// @ts-expect-error kafkajs ships no types for its internals
import { RecordBatch } from "kafkajs/src/protocol/recordBatch/v0/index.js";
// @ts-expect-error kafkajs ships no types for its internals
import Record from "kafkajs/src/protocol/recordBatch/record/v0/index.js";
import { chunkHeaders, chunkKey, recordChunks, type Chunk, type Source } from "../lib/kafka/pack.ts";
import { DEFAULTS } from "../lib/config.ts";
import { compileFormat, formatSpan } from "../lib/kafka/format.ts";
import { exactName, nameFromBytes } from "../lib/names.ts";
import { decodeProduceResponse, writeProduceRequest, type TopicRecords } from "../lib/kafka/produce.ts";
import { writeBatch, Writer } from "../lib/kafka/records.ts";

installKafkajsPatches(); // registers snappy, lz4, zstd (and logship's gzip) with kafkajs

const NOW = 1_764_500_000_123;
const NAMES: Record<number, string> = { 0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd" };
const CODECS = [CompressionTypes.None, CompressionTypes.GZIP, CompressionTypes.Snappy, CompressionTypes.LZ4, CompressionTypes.ZSTD];

const src = (path: string, topic = "logs"): Source => ({ host: "web-1.example.com", path, topic, file: "2049:1234:19a2b3c4d5e:0f1e2d3c" });

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let s = seed;
  for (let i = 0; i < n; i++) b[i] = 32 + ((s = (s * 1103515245 + 12345) >>> 0) >>> 24) % 90;
  if (n > 0) b[n - 1] = 0x0a;
  return b;
}

function chunk(source: Source, start: number, value: Buffer, extra: Partial<Chunk> = {}): Chunk {
  return { source, value, start, end: start + value.length, lines: 1, size: 0, ...extra };
}

/** The chunk sets: packed-like, line with fields, no key, a field as key, a field shadowing a header, long values, big offsets. */
function sets(): Chunk[][] {
  const a = src("/var/log/app/a.log");
  const b = src("/var/log/ünïcode/b.log");
  const fields = { service: "checkout", env: "prod" };
  const shadow = { host: "override", offset: "static", "1": "numeric key first" };
  const raw = src(nameFromBytes(Buffer.from([...Buffer.from("/var/log/caf"), 0xe9, 0xff, ...Buffer.from(".log")])));
  return [
    [chunk(a, 0, bytes(120, 1))],
    Array.from({ length: 50 }, (_, i) => chunk(a, i * 150, bytes(150, i))),
    Array.from({ length: 20 }, (_, i) => chunk(b, 10 ** 12 + i * 90, bytes(90 + i, i), { fields, key: null })),
    Array.from({ length: 10 }, (_, i) => chunk(a, i * 300, bytes(300, i), { fields, key: "checkout" })),
    [chunk(a, 5, bytes(40, 3), { fields: shadow }), chunk(a, 45, bytes(41, 4), { fields: shadow })],
    [chunk(a, 0, bytes(70_000, 9)), chunk(b, 70_000, bytes(3000, 8)), chunk(a, 73_000, bytes(1, 2))],
    [chunk(a, 2 ** 40, bytes(200, 5), { key: null }), chunk(b, 7, bytes(200, 6), { fields, key: undefined })],
    // A file name that is no UTF-8: its exact bytes in the key and the path header.
    Array.from({ length: 4 }, (_, i) => chunk(raw, i * 100, bytes(100, i), i === 3 ? { key: null } : {})),
    // Runs (format line and json: many lines, a record each, in one chunk), a partial last line, offsets crossing a power of ten.
    runs("line", a, {}),
    runs("line", b, { fields, key: "none" as const }),
    runs("json", a, { fields }),
    runs("json", raw, {}),
    runs("line", a, { multiline: true }), // events of several lines, a record each
  ];
}

/** The chunks format.ts makes of 300 lines (runs, mostly) at offsets from 9,990, the last line without its "\n". */
function runs(format: "line" | "json", source: Source, o: { fields?: Record<string, string>; key?: "none"; multiline?: boolean }): Chunk[] {
  const multiline = o.multiline ? { start: "^[0-9]", max_lines: 500, max_bytes: 1 << 20, timeout: 1_000 } : undefined;
  const fmt = compileFormat({ ...DEFAULTS.input, paths: ["/var/log/*.log"], topic: "logs", format, fields: o.fields ?? {}, key: o.key ?? "path", multiline })!;
  const lines = Buffer.concat(Array.from({ length: 300 }, (_, i) => bytes(20 + ((i * 37) % 200), i)));
  const text = Buffer.concat([lines, Buffer.from('tail "quoted" \\ no newline')]);
  const chunks = formatSpan({ bytes: text, start: 9_990, end: 9_990 + text.length }, source, fmt, { maxMessageBytes: 1_000_000, targetMessageBytes: 256 * 1024 }, NOW);
  if (!chunks.some((c) => (c.run ?? 1) > 1)) throw new Error("no run made");
  return chunks;
}

/** What publish.ts gave kafkajs' producer for these chunks. */
const messages = (chunks: Chunk[]) => chunks.flatMap(recordChunks).map((c) => {
  const key = chunkKey(c);
  return { key: key === null ? null : exactName(key), value: c.value, headers: chunkHeaders(c), timestamp: NOW };
});

async function kafkajsBatch(chunks: Chunk[], compression: CompressionTypes): Promise<Buffer> {
  const records = messages(chunks).map((m, i) => Record({ ...m, offsetDelta: i, timestampDelta: 0 }));
  const batch = await RecordBatch({ compression, records, firstTimestamp: NOW, maxTimestamp: NOW, lastOffsetDelta: records.length - 1 });
  return Buffer.from(batch.buffer);
}

for (const compression of CODECS) {
  test(`a record batch is kafkajs' byte for byte (compression ${NAMES[compression]})`, async () => {
    for (const chunks of sets()) {
      const w = new Writer(16); // tiny: every write grows it
      w.int16(0x7777); // something before the batch, as in a request
      const n = await writeBatch(w, chunks, compression, NOW, new Writer(16));
      const mine = w.view().subarray(2);
      expect(n).toBe(mine.length);
      expect(mine.equals(await kafkajsBatch(chunks, compression))).toBe(true);
    }
  });

  test(`a Produce request body is kafkajs' v3 byte for byte (compression ${NAMES[compression]})`, async () => {
    const [one, many, noKey, , , long, , , lineRuns, , jsonRuns] = sets();
    const topics: TopicRecords[] = [
      { topic: "logs", partitions: [{ partition: 0, chunks: one! }, { partition: 3, chunks: many! }, { partition: 7, chunks: long! }, { partition: 8, chunks: lineRuns! }, { partition: 9, chunks: jsonRuns! }] },
      { topic: "other-topic", partitions: [{ partition: 1, chunks: noKey! }] },
    ];
    const w = new Writer(32);
    await writeProduceRequest(w, new Writer(32), topics, -1, 30_000, compression, NOW);
    const topicData = topics.map((t) => ({ topic: t.topic, partitions: t.partitions.map((p) => ({ partition: p.partition, firstSequence: 0, messages: messages(p.chunks) })) }));
    const theirs = await ProduceV3({ acks: -1, timeout: 30_000, compression, topicData }).encode();
    expect(w.view().equals(Buffer.from(theirs.buffer))).toBe(true);
  });
}

test("a reused writer gives the same request again (nothing of the previous one stays)", async () => {
  const w = new Writer();
  const s = new Writer();
  const big: TopicRecords[] = [{ topic: "logs", partitions: [{ partition: 0, chunks: sets()[5]! }] }];
  const small: TopicRecords[] = [{ topic: "logs", partitions: [{ partition: 2, chunks: sets()[1]! }] }];
  await writeProduceRequest(w, s, small, 1, 1000, CompressionTypes.ZSTD, NOW);
  const first = Buffer.from(w.view());
  await writeProduceRequest(w, s, big, 1, 1000, CompressionTypes.ZSTD, NOW);
  await writeProduceRequest(w, s, small, 1, 1000, CompressionTypes.ZSTD, NOW);
  expect(w.view().equals(first)).toBe(true);
});

test("a Produce response is read per partition, with the fields of its version", () => {
  const answer = (version: number) => {
    const parts: Buffer[] = [];
    const i32 = (v: number) => { const b = Buffer.alloc(4); b.writeInt32BE(v); parts.push(b); };
    const i16 = (v: number) => { const b = Buffer.alloc(2); b.writeInt16BE(v); parts.push(b); };
    const i64 = () => parts.push(Buffer.alloc(8, 0xab));
    i32(2);
    for (const [topic, codes] of [["logs", [0, 6]], ["other", [10]]] as const) {
      i16(topic.length);
      parts.push(Buffer.from(topic));
      i32(codes.length);
      codes.forEach((code, p) => {
        i32(p);
        i16(code);
        i64();
        i64();
        if (version >= 5) i64();
      });
    }
    i32(250);
    return Buffer.concat(parts);
  };
  for (const version of [3, 4, 5, 6, 7]) {
    const a = decodeProduceResponse(answer(version), version);
    expect(a.partitions).toEqual([
      { topic: "logs", partition: 0, errorCode: 0 },
      { topic: "logs", partition: 1, errorCode: 6 },
      { topic: "other", partition: 0, errorCode: 10 },
    ]);
    expect(a.throttleTime).toBe(250);
    expect(a.clientSideThrottleTime).toBe(version >= 6 ? 250 : undefined);
  }
});
