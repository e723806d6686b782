// sender.ts (with a fake Kafka and a real Checkpoint): offsets move only when sends are
// acknowledged, failed sends are retried in order with backoff (with the same chunks), records Kafka calls too large
// are sent alone, cut at line ends or (a single line) dropped, and drain() gives up at its
// deadline without moving offsets. Also nextBatch: one partition's batch stays under the limit.
import { describe, expect, test } from "bun:test";
import { Checkpoint } from "../lib/state/checkpoint.ts";
import { PublishError } from "../lib/errors.ts";
import type { AgentEvents } from "../lib/events.ts";
import { BATCH_OVERHEAD, pack, type Chunk, type PackLimits, type Source } from "../lib/kafka/pack.ts";
import { nextBatch, partlyAcknowledged } from "../lib/kafka/publish.ts";
import { Sender, splitAtLine, type SenderOptions } from "../lib/kafka/sender.ts";
import { DEFAULTS } from "../lib/config.ts";
import { compileFormat, formatSpan } from "../lib/kafka/format.ts";
import type { SavedFile } from "../lib/state/store.ts";
import { eventually } from "./helpers/eventually.ts";
import { FakePublisher, retriableError, tooLargeError } from "./helpers/fakePublisher.ts";

type Call = { name: keyof AgentEvents; args: unknown[] };

/** An AgentEvents that records every call. */
function recorder(): AgentEvents & { calls: Call[]; of(name: keyof AgentEvents): unknown[][] } {
  const calls: Call[] = [];
  const of = (name: keyof AgentEvents) => calls.filter((c) => c.name === name).map((c) => c.args);
  return new Proxy({} as AgentEvents & { calls: Call[]; of: typeof of }, {
    get: (_t, key) => (key === "calls" ? calls : key === "of" ? of : (...args: unknown[]) => calls.push({ name: key as keyof AgentEvents, args })),
  });
}

const OPTS: SenderOptions = { maxMessageBytes: 1_000_000, maxSendBytes: 4_000_000, retryBackoffMs: 4, retryBackoffMaxMs: 20 };

let fileSeq = 0;
/** A registered file with its lines, and a way to pack them as the agent would. */
function file(cp: Checkpoint, lines: string[]) {
  const n = fileSeq++;
  const row: SavedFile = { id: `id-${n}`, dev: 1, ino: n, fingerprint: "f", fpLen: 1, path: `/logs/file-${n}.log`, offset: 0, seenAt: 0, goneSince: null, born: 0, size: 0, mtimeMs: 0, markLen: 0, markCrc: 0 };
  cp.register(row);
  const source: Source = { file: row.id, path: row.path, topic: "logs", host: "h" };
  const bytes = Buffer.from(lines.join(""));
  return {
    row,
    source,
    bytes,
    size: bytes.length,
    /** Chunks of bytes [from, to), packed with these limits. */
    chunks(limits: PackLimits, from = 0, to = bytes.length): Chunk[] {
      return pack({ bytes: bytes.subarray(from, to), start: from, end: to }, source, limits);
    },
  };
}

const lines = (prefix: string, n: number, width = 20) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, "0")} ${"x".repeat(width)}\n`);

function setup(kafka = new FakePublisher(), opts: SenderOptions = OPTS) {
  const cp = new Checkpoint();
  const events = recorder();
  const sender = new Sender(kafka, cp, events, opts);
  return { cp, events, sender, kafka };
}

/** Values Kafka acknowledged for one file, concatenated. */
const ackedOf = (kafka: FakePublisher, source: Source) => Buffer.concat(kafka.acked.filter((c) => c.source === source).map((c) => c.value)).toString();

describe("acknowledgements move offsets", () => {
  test("acked sends advance each file's offset to what was sent", async () => {
    const { cp, events, sender, kafka } = setup();
    const a = file(cp, lines("a", 100));
    const b = file(cp, lines("b", 50));
    let onAcked = 0;
    sender.onAcked = () => onAcked++;
    sender.enqueue(a.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 1_000 }));
    sender.enqueue(b.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 1_000 }));
    expect(sender.inflightBytes).toBe(a.size + b.size);
    sender.start();
    await eventually(() => cp.offsetOf(a.row.id) === a.size && cp.offsetOf(b.row.id) === b.size);
    expect(sender.inflightBytes).toBe(0);
    expect(sender.queued).toBe(0);
    expect(ackedOf(kafka, a.source)).toBe(a.bytes.toString());
    expect(ackedOf(kafka, b.source)).toBe(b.bytes.toString());
    const acked = events.of("chunksAcked") as [number, number, number][];
    expect(acked.reduce((n, [, l]) => n + l, 0)).toBe(150);
    expect(acked.reduce((n, [, , bytes]) => n + bytes, 0)).toBe(a.size + b.size);
    expect(onAcked).toBe(acked.length);
    expect(await sender.drain(Date.now() + 5_000)).toBe(true);
  });

  test("offsets never move past a chunk Kafka has not acknowledged; one send at a time", async () => {
    const kafka = new FakePublisher().holdAll();
    const { cp, sender } = setup(kafka, { ...OPTS, maxMessageBytes: 2_000 });
    const a = file(cp, lines("a", 200));
    const limits = { maxMessageBytes: 2_000, targetMessageBytes: 2_000 };
    sender.enqueue(a.chunks(limits));
    sender.start();
    await kafka.waitForCalls(1);
    await Bun.sleep(0);
    expect(kafka.calls).toHaveLength(1); // the next send waits for this one
    expect(cp.offsetOf(a.row.id)).toBe(0);
    kafka.calls[0]!.ack();
    await kafka.waitForCalls(2);
    const firstEnd = kafka.calls[0]!.chunks.at(-1)!.end;
    expect(cp.offsetOf(a.row.id)).toBe(firstEnd);
    expect(firstEnd).toBeLessThan(a.size);
    kafka.calls[1]!.reject(retriableError());
    await kafka.waitForCalls(3);
    expect(cp.offsetOf(a.row.id)).toBe(firstEnd);
    expect(kafka.calls[2]!.chunks.map((c) => c.start)).toEqual(kafka.calls[1]!.chunks.map((c) => c.start)); // the same again
    kafka.ackAll();
    await eventually(() => cp.offsetOf(a.row.id) === a.size);
  });

  test("with a publisher that acks out of order, offsets still move over the acknowledged prefix only", async () => {
    // The Sender keeps one send in flight; this drives the fake the way a pipelined sender would.
    const kafka = new FakePublisher().holdAll();
    const cp = new Checkpoint();
    const a = file(cp, lines("a", 30));
    const chunks = a.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 200 });
    expect(chunks.length).toBeGreaterThanOrEqual(4);
    chunks.forEach((c) => cp.track(c));
    const done = chunks.map((c) => kafka.send([c]).then(() => cp.acked([c])));
    const order = [3, 1, 0, 2, ...chunks.keys()].filter((v, i, xs) => v < chunks.length && xs.indexOf(v) === i);
    const seen: number[] = [];
    for (const i of order) {
      kafka.calls[i]!.ack();
      await done[i];
      seen.push(cp.offsetOf(a.row.id)!);
    }
    expect(seen.slice(0, 4)).toEqual([0, 0, chunks[1]!.end, chunks[3]!.end]);
    expect(cp.offsetOf(a.row.id)).toBe(a.size);
    expect(kafka.acked.map((c) => c.start)).toEqual(order.map((i) => chunks[i]!.start));
  });
});

describe("failed sends", () => {
  test("a rejected send is retried with growing backoff; order holds; offsets wait", async () => {
    const kafka = new FakePublisher();
    kafka.next(retriableError(), retriableError(), retriableError(), "ack", retriableError());
    const { cp, events, sender } = setup(kafka, { ...OPTS, maxMessageBytes: 3_000 });
    const files = [file(cp, lines("a", 120)), file(cp, lines("b", 80)), file(cp, lines("c", 40))];
    const limits = { maxMessageBytes: 3_000, targetMessageBytes: 700 };
    const queues = files.map((f) => f.chunks(limits));
    // Interleave the files' chunks, as reading several files does.
    for (let i = 0; queues.some((q) => i < q.length); i++) for (const q of queues) if (q[i]) sender.enqueue([q[i]!]);
    sender.start();
    await kafka.waitForCalls(2);
    expect(files.map((f) => cp.offsetOf(f.row.id))).toEqual([0, 0, 0]);
    await eventually(() => files.every((f) => cp.offsetOf(f.row.id) === f.size));

    const failed = events.of("sendFailed") as [string, string, boolean, number, number][];
    expect(failed.map(([, code, retriable, attempt]) => [code, retriable, attempt])).toEqual([
      ["LEADER_NOT_AVAILABLE", true, 1],
      ["LEADER_NOT_AVAILABLE", true, 2],
      ["LEADER_NOT_AVAILABLE", true, 3],
      ["LEADER_NOT_AVAILABLE", true, 1], // a success resets the backoff
    ]);
    // Exponential with jitter: attempt n waits within [base/2, base], base = min(4 * 2^(n-1), 20).
    for (const [, , , attempt, wait] of failed) {
      const base = Math.min(4 * 2 ** (attempt - 1), 20);
      expect(wait).toBeGreaterThanOrEqual(base / 2);
      expect(wait).toBeLessThanOrEqual(base);
    }
    expect(events.of("sendRecovered")).toHaveLength(2);
    // What Kafka received, retries included, is in file order once duplicates are dropped.
    for (const f of files) {
      const starts = kafka.sent.filter((c) => c.source === f.source).map((c) => c.start);
      const unique = starts.filter((s, i) => starts.indexOf(s) === i);
      expect(unique).toEqual([...unique].sort((x, y) => x - y));
      expect(ackedOf(kafka, f.source)).toBe(f.bytes.toString());
    }
    expect(kafka.calls.filter((c) => c.status === "acked").flatMap((c) => c.chunks)).toHaveLength(queues.flat().length);
  });

  test("a failed send is retried with exactly its chunks, also when more were queued meanwhile (idempotence's same sequences)", async () => {
    const kafka = new FakePublisher();
    kafka.holdAll();
    const { cp, sender } = setup(kafka, { ...OPTS, maxMessageBytes: 3_000 });
    const f = file(cp, lines("r", 200));
    const chunks = f.chunks({ maxMessageBytes: 3_000, targetMessageBytes: 700 });
    sender.enqueue(chunks.slice(0, 3));
    sender.start();
    await kafka.waitForCalls(1);
    sender.enqueue(chunks.slice(3)); // queued while the first send is in flight
    kafka.calls[0]!.reject(retriableError());
    await kafka.waitForCalls(2);
    expect(kafka.calls[1]!.chunks).toEqual(kafka.calls[0]!.chunks); // the same chunks, not a bigger batch
    kafka.ackAll();
    await eventually(() => cp.offsetOf(f.row.id) === f.size);
    expect(ackedOf(kafka, f.source)).toBe(f.bytes.toString());
  });

  test("an error that is not retriable (and not about size) is retried too, never dropped", async () => {
    const kafka = new FakePublisher().next(new PublishError("topic authorization failed", { retriable: false, code: "TOPIC_AUTHORIZATION_FAILED" }));
    const { cp, events, sender } = setup(kafka);
    const a = file(cp, lines("a", 3));
    sender.enqueue(a.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 1_000_000 }));
    sender.start();
    await eventually(() => cp.offsetOf(a.row.id) === a.size);
    expect(events.of("sendFailed").map((args) => args.slice(1, 4))).toEqual([["TOPIC_AUTHORIZATION_FAILED", false, 1]]);
    expect(events.of("recordDropped")).toEqual([]);
  });

  test("a plain Error from the publisher is treated as a failed send, not a crash", async () => {
    const kafka = new FakePublisher().next(new Error("socket hang up"));
    const { cp, events, sender } = setup(kafka);
    const a = file(cp, lines("a", 3));
    sender.enqueue(a.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 1_000_000 }));
    sender.start();
    await eventually(() => cp.offsetOf(a.row.id) === a.size);
    expect(events.of("sendFailed")).toHaveLength(1);
    expect(events.of("sendRecovered")).toHaveLength(1);
  });
});

describe("records Kafka calls too large", () => {
  test("after MESSAGE_TOO_LARGE on a batch, the head is sent alone", async () => {
    const kafka = new FakePublisher().next(tooLargeError());
    const { cp, sender } = setup(kafka);
    const a = file(cp, lines("a", 50));
    const chunks = a.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 300 });
    sender.enqueue(chunks);
    sender.start();
    await eventually(() => cp.offsetOf(a.row.id) === a.size);
    expect(kafka.calls[0]!.chunks.length).toBe(chunks.length);
    expect(kafka.calls[1]!.chunks).toEqual([chunks[0]!]);
    expect(ackedOf(kafka, a.source)).toBe(a.bytes.toString());
  });

  test("a record alone still too large is cut at line ends; a single line is dropped and passed over", async () => {
    // A broker whose limit is below ours: any send with more than 300 value bytes is refused.
    const kafka = new FakePublisher({ policy: (chunks) => (chunks.reduce((n, c) => n + c.value.length, 0) > 300 ? tooLargeError() : "ack") });
    const { cp, events, sender } = setup(kafka);
    const text = [...lines("a", 10), `big ${"B".repeat(400)}\n`, ...lines("b", 10), `huge ${"H".repeat(1_000)}\n`, ...lines("c", 3)];
    const a = file(cp, text);
    sender.enqueue(a.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 100_000 })); // one record
    sender.start();
    await eventually(() => cp.offsetOf(a.row.id) === a.size);
    // Everything but the two single over-limit lines arrived, in order, each line whole.
    const expected = text.filter((l) => l.length <= 300).join("");
    expect(ackedOf(kafka, a.source)).toBe(expected);
    for (const c of kafka.acked) expect(c.value.at(-1)).toBe(0x0a);
    const dropped = events.of("recordDropped") as [string, number, number, string][];
    const bigAt = a.bytes.indexOf("big ");
    const hugeAt = a.bytes.indexOf("huge ");
    expect(dropped).toEqual([
      [a.source.path, bigAt, text[10]!.length, "MESSAGE_TOO_LARGE"],
      [a.source.path, hugeAt, text[21]!.length, "MESSAGE_TOO_LARGE"],
    ]);
    expect(sender.inflightBytes).toBe(0);
  });

  test("the offset does not pass a cut record's first piece before it is acknowledged", async () => {
    const kafka = new FakePublisher().next(tooLargeError()).holdAll();
    const { cp, sender } = setup(kafka);
    const a = file(cp, lines("a", 8));
    const chunks = a.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 100_000 });
    expect(chunks).toHaveLength(1);
    sender.enqueue(chunks);
    sender.start();
    await kafka.waitForCalls(2);
    // The first piece goes alone: both pieces together would be as large as the refused record.
    expect(kafka.calls[1]!.chunks).toHaveLength(1);
    const first = kafka.calls[1]!.chunks[0]!;
    expect(a.bytes.subarray(0, first.value.length).equals(first.value)).toBe(true);
    expect(first.value.at(-1)).toBe(0x0a);
    expect(cp.offsetOf(a.row.id)).toBe(0);
    kafka.calls[1]!.ack();
    await kafka.waitForCalls(3);
    expect(cp.offsetOf(a.row.id)).toBe(first.end);
    kafka.calls[2]!.ack();
    await eventually(() => cp.offsetOf(a.row.id) === a.size);
    expect(cp.waiting(a.row.id)).toBe(0);
  });

  test("an empty chunk (skipped bytes) ahead of a too-large line is not reported as dropped", async () => {
    const kafka = new FakePublisher({ policy: (chunks) => (chunks.some((c) => c.value.length > 100) ? tooLargeError() : "ack") });
    const { cp, events, sender } = setup(kafka);
    // Bytes 0..50 were an over-long line the reader dropped; a 201-byte line follows.
    const a = file(cp, ["x".repeat(49) + "\n", "L".repeat(200) + "\n"]);
    const skipped = pack({ bytes: Buffer.alloc(0), start: 0, end: 50 }, a.source, { maxMessageBytes: 1_000_000, targetMessageBytes: 1_000_000 });
    const line = a.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 1_000_000 }, 50);
    sender.enqueue([...skipped, ...line]);
    sender.start();
    await eventually(() => cp.offsetOf(a.row.id) === a.size);
    expect(events.of("recordDropped")).toEqual([[a.source.path, 50, 201, "MESSAGE_TOO_LARGE"]]);
  });

  for (const format of ["line", "json"] as const) {
    test(`a run of records (${format}, a record per line) Kafka refuses is cut between its records; a record still refused alone is dropped`, async () => {
      const kafka = new FakePublisher({ policy: (chunks) => (chunks.reduce((n, c) => n + c.value.length, 0) > 600 ? tooLargeError() : "ack") });
      const { cp, events, sender } = setup(kafka);
      const text = [...lines("a", 30), `big ${"B".repeat(700)}\n`, ...lines("b", 30)];
      const a = file(cp, text);
      const fmt = compileFormat({ ...DEFAULTS.input, paths: ["/logs/*.log"], topic: "logs", format })!;
      const chunks = formatSpan({ bytes: a.bytes, start: 0, end: a.size }, a.source, fmt, { maxMessageBytes: 1_000_000, targetMessageBytes: 100_000 }, 0);
      expect(chunks.some((c) => (c.run ?? 1) > 1)).toBe(true);
      sender.enqueue(chunks);
      sender.start();
      await eventually(() => cp.offsetOf(a.row.id) === a.size);
      // Every line but the big one arrived once, in order, a record each with its own offset.
      const starts = text.map((_, i) => text.slice(0, i).join("").length);
      const at = (i: number) => starts[i]!;
      const expected = text.map((l, i) => [at(i), l]).filter(([, l]) => !String(l).startsWith("big"));
      const got = kafka.acked.map((c) => [c.start, format === "line" ? c.value.toString() : `${JSON.parse(c.value.toString()).message}\n`]);
      expect(got).toEqual(expected);
      const dropped = events.of("recordDropped") as [string, number, number, string][];
      expect(dropped.map(([path, at, , code]) => [path, at, code])).toEqual([[a.source.path, at(30), "MESSAGE_TOO_LARGE"]]);
      expect(sender.inflightBytes).toBe(0);
      expect(sender.inflightChunks).toBe(0);
    });
  }

  test("splitAtLine cuts at the line end nearest the middle, keeping offsets and sizes consistent", () => {
    const cp = new Checkpoint();
    const a = file(cp, ["aaaa\n", "bb\n", "c\n", "dddddd\n"]);
    const [whole] = a.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 1_000_000 });
    const [x, y] = splitAtLine(whole!)!;
    expect([x.value.toString(), y.value.toString()]).toEqual(["aaaa\nbb\n", "c\ndddddd\n"]);
    expect([x.start, x.end, y.start, y.end]).toEqual([0, 8, 8, whole!.end]);
    expect([x.lines, y.lines]).toEqual([2, 2]);
    expect(x.size - x.value.length).toBe(whole!.size - whole!.value.length);
    expect(splitAtLine({ ...whole!, value: Buffer.from("one line only\n") })).toBeNull();
  });
});

describe("drain", () => {
  test("drain(deadline) returns false on timeout when Kafka never acks, and offsets did not move", async () => {
    const kafka = new FakePublisher().holdAll();
    const { cp, sender } = setup(kafka);
    const a = file(cp, lines("a", 20));
    sender.enqueue(a.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 200 }));
    sender.start();
    await kafka.waitForCalls(1);
    expect(await sender.drain(Date.now() + 150)).toBe(false);
    expect(cp.offsetOf(a.row.id)).toBe(0);
    expect(sender.inflightBytes).toBe(a.size);
    // An ack arriving after the deadline moves nothing either: the next run re-sends.
    kafka.release();
    await Bun.sleep(10);
    expect(cp.offsetOf(a.row.id)).toBe(0);
    expect(kafka.calls).toHaveLength(1);
  });

  test("drain(deadline) gives up during a retry backoff as well", async () => {
    const kafka = new FakePublisher({ policy: () => retriableError() });
    const { cp, sender } = setup(kafka, { ...OPTS, retryBackoffMs: 60_000, retryBackoffMaxMs: 60_000 });
    const a = file(cp, lines("a", 5));
    sender.enqueue(a.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 1_000_000 }));
    sender.start();
    await kafka.waitForCalls(1);
    const started = Date.now();
    expect(await sender.drain(Date.now() + 100)).toBe(false);
    expect(Date.now() - started).toBeLessThan(30_000); // not the 60 s backoff
    expect(cp.offsetOf(a.row.id)).toBe(0);
  });

  test("drain() sends what is queued, then resolves true", async () => {
    const { cp, sender } = setup();
    const a = file(cp, lines("a", 500));
    sender.start();
    sender.enqueue(a.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 500 }));
    expect(await sender.drain(Date.now() + 10_000)).toBe(true);
    expect(cp.offsetOf(a.row.id)).toBe(a.size);
  });
});

describe("nextBatch", () => {
  test("property: a batch is a prefix of the queue, no partition over maxMessageBytes, as full as allowed", () => {
    let seed = 4242;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    const mk = (topic: string, path: string, size: number): Chunk => ({ source: { file: path, path, topic, host: "h" }, value: Buffer.alloc(0), start: 0, end: 0, lines: 0, size });
    for (let round = 0; round < 500; round++) {
      const max = 1_000 + rand(50_000);
      const maxSend = max * (1 + rand(4));
      const partitions = rand(3) === 0 ? undefined : 1 + rand(6);
      const kafka = new FakePublisher({ partitions });
      const queue = Array.from({ length: 1 + rand(60) }, () => mk(`t${rand(2)}`, `/f/${rand(8)}`, 1 + rand(max - BATCH_OVERHEAD)));
      const batch = nextBatch(queue, { maxMessageBytes: max, maxSendBytes: maxSend }, (t, k) => kafka.partitionOf(t, k));
      expect(batch.length).toBeGreaterThan(0);
      batch.forEach((c, i) => expect(c).toBe(queue[i]!));
      const key = (c: Chunk) => `${c.source.topic}/${kafka.partitionOf(c.source.topic, c.source.path) ?? "?"}`;
      const used = new Map<string, number>();
      for (const c of batch) used.set(key(c), (used.get(key(c)) ?? BATCH_OVERHEAD) + c.size);
      for (const bytes of used.values()) expect(bytes).toBeLessThanOrEqual(max);
      const total = batch.reduce((n, c) => n + c.size, 0);
      if (batch.length > 1) expect(total).toBeLessThanOrEqual(maxSend);
      const next = queue[batch.length];
      if (next) {
        const wouldBe = (used.get(key(next)) ?? BATCH_OVERHEAD) + next.size;
        expect(wouldBe > max || total + next.size > maxSend).toBe(true);
      }
    }
  });

  test("the sender never puts more than maxMessageBytes into one partition's batch", async () => {
    const kafka = new FakePublisher({ partitions: 3 });
    const opts = { ...OPTS, maxMessageBytes: 5_000, maxSendBytes: 12_000 };
    const { cp, sender } = setup(kafka, opts);
    const files = Array.from({ length: 6 }, (_, i) => file(cp, lines(`f${i}`, 150, 10 + i * 7)));
    for (const f of files) sender.enqueue(f.chunks({ maxMessageBytes: 5_000, targetMessageBytes: 1_500 }));
    sender.start();
    await eventually(() => files.every((f) => cp.offsetOf(f.row.id) === f.size));
    expect(kafka.calls.length).toBeGreaterThan(5);
    for (const call of kafka.calls) {
      const per = new Map<number | undefined, number>();
      for (const c of call.chunks) {
        const p = kafka.partitionOf(c.source.topic, c.source.path);
        per.set(p, (per.get(p) ?? BATCH_OVERHEAD) + c.size);
      }
      for (const bytes of per.values()) expect(bytes).toBeLessThanOrEqual(5_000);
    }
  });
});

describe("the fake publisher", () => {
  test("records sends, scripts outcomes, holds and releases, and refuses after close", async () => {
    const kafka = new FakePublisher();
    const cp = new Checkpoint();
    const a = file(cp, lines("a", 3));
    const [c] = a.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 1_000_000 });
    await kafka.send([c!]);
    kafka.next(tooLargeError());
    const err = await kafka.send([c!]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishError);
    expect((err as PublishError).code).toBe("MESSAGE_TOO_LARGE");
    kafka.holdAll();
    const held = kafka.send([c!]);
    expect(kafka.pending).toHaveLength(1);
    kafka.release();
    await held;
    expect(kafka.calls.map((x) => x.status)).toEqual(["acked", "rejected", "acked"]);
    expect(kafka.ackedText()).toBe(a.bytes.toString().repeat(2));
    expect(kafka.partitionOf("t", "/x")).toBeUndefined();
    await kafka.close();
    expect(((await kafka.send([c!]).catch((e: unknown) => e)) as PublishError).code).toBe("CLOSED");
  });
});

describe("read buffers go back once", () => {
  test("each chunk's release runs exactly once, when its send is acknowledged", async () => {
    const { cp: cp2, sender: s2, kafka: k2 } = setup(new FakePublisher().holdAll());
    const f = file(cp2, lines("r", 50));
    const chunks = f.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 400 });
    const released: number[] = chunks.map(() => 0);
    chunks.forEach((c, i) => (c.release = () => released[i]!++));
    s2.enqueue(chunks);
    s2.start();
    await k2.waitForCalls(1);
    expect(released.every((n) => n === 0)).toBe(true); // nothing back before the ack
    k2.release();
    await eventually(() => cp2.offsetOf(f.row.id) === f.size);
    expect(released.every((n) => n === 1)).toBe(true);
  });

  test("a record cut after MESSAGE_TOO_LARGE releases its buffer once, after both pieces are acknowledged", async () => {
    const kafka = new FakePublisher().next(tooLargeError());
    const { cp, sender } = setup(kafka);
    const f = file(cp, lines("s", 8));
    const [chunk] = f.chunks({ maxMessageBytes: 1_000_000, targetMessageBytes: 100_000 });
    let released = 0;
    chunk!.release = () => released++;
    sender.enqueue([chunk!]);
    sender.start();
    await eventually(() => cp.offsetOf(f.row.id) === f.size);
    expect(released).toBe(1);
  });
});

describe("a failing topic backs off alone (issue 11, item 11)", () => {
  const onTopic = (cp: Checkpoint, topic: string, ls: string[]) => {
    const f = file(cp, ls);
    const source: Source = { ...f.source, topic };
    return { ...f, source, chunks: (limits: PackLimits) => pack({ bytes: f.bytes, start: 0, end: f.size }, source, limits) };
  };
  const small = { maxMessageBytes: 1_000_000, targetMessageBytes: 300 };

  test("two files on two topics, one topic failing: the other ships in full, the failing one's offset waits", async () => {
    const kafka = new FakePublisher({ policy: (chunks) => (chunks.some((c) => c.source.topic === "missing") ? retriableError("fake: unknown topic", "UNKNOWN_TOPIC_OR_PARTITION") : "ack") });
    const { cp, sender, events } = setup(kafka);
    const bad = onTopic(cp, "missing", lines("bad", 40));
    const good = onTopic(cp, "logs", lines("good", 40));
    sender.enqueue(bad.chunks(small)); // the failing topic's lines came first
    sender.enqueue(good.chunks(small));
    sender.start();
    await eventually(() => cp.offsetOf(good.row.id) === good.size);
    expect(ackedOf(kafka, good.source)).toBe(good.bytes.toString());
    expect(cp.offsetOf(bad.row.id)).toBe(0);
    expect(sender.failingTopic("missing")).toBe(true);
    expect(sender.failingTopic("logs")).toBe(false);
    expect(sender.readRoom(1_000_000, "missing")).toBe(0); // its files are not read meanwhile
    expect(sender.readRoom(1_000_000, "logs")).toBeGreaterThan(0);
    // The topic appears: its lines go, in order, and its offset moves to the end.
    await eventually(() => events.of("sendFailed").length >= 2);
    kafka.policy = () => "ack";
    await eventually(() => cp.offsetOf(bad.row.id) === bad.size);
    expect(ackedOf(kafka, bad.source)).toBe(bad.bytes.toString());
    const starts = kafka.acked.filter((c) => c.source === bad.source).map((c) => c.start);
    expect(starts).toEqual([...starts].sort((x, y) => x - y));
    expect(await sender.drain(Date.now() + 5_000)).toBe(true);
  });

  test("a healthy topic keeps half the in-flight cap when a failing topic holds all of it", () => {
    const { cp, sender } = setup(new FakePublisher().holdAll());
    const bad = onTopic(cp, "missing", lines("bad", 100));
    sender.enqueue(bad.chunks(small));
    const cap = bad.size; // the failing topic filled the cap before it failed
    expect(sender.readRoom(cap, "logs")).toBe(0); // nothing failing yet: the cap holds as before
    (sender as unknown as { lanes: Map<string, { failingSince: number | null }> }).lanes.get("missing")!.failingSince = 0;
    expect(sender.readRoom(cap, "missing")).toBe(0);
    expect(sender.readRoom(cap, "logs")).toBe(Math.floor(cap / 2));
    expect(sender.readRoom(cap)).toBe(Math.floor(cap / 2));
  });
  test("records in flight are capped too (one record per line, issue 14): reading pauses at maxInflightChunks, a failing topic's records aside", async () => {
    const kafka = new FakePublisher().holdAll();
    const one = { maxMessageBytes: 1_000_000, targetMessageBytes: 1_024 };
    const probe = setup(kafka);
    const n = file(probe.cp, lines("a", 200)).chunks(one).length;
    const { cp, sender } = setup(kafka, { ...OPTS, maxInflightChunks: n + 1 });
    sender.start();
    const a = file(cp, lines("a", 200));
    sender.enqueue(a.chunks(one));
    expect(sender.inflightChunks).toBe(n);
    expect(sender.readRoom(1_000_000)).toBeGreaterThan(0);
    sender.enqueue(a.chunks(one, a.size, a.size)); // an empty chunk (skipped bytes) is no record
    const b = onTopic(cp, "missing", lines("b", 5));
    sender.enqueue(b.chunks(one));
    expect(sender.inflightChunks).toBe(n + 1);
    expect(sender.readRoom(1_000_000)).toBe(0);
    (sender as unknown as { lanes: Map<string, { failingSince: number | null }> }).lanes.get("missing")!.failingSince = 0;
    expect(sender.readRoom(1_000_000, "logs")).toBeGreaterThan(0); // the failing topic's record does not hold the others back
    (sender as unknown as { lanes: Map<string, { failingSince: number | null }> }).lanes.get("missing")!.failingSince = null;
    kafka.ackAll();
    await sender.drain(Date.now() + 5_000);
    expect(sender.inflightChunks).toBe(0);
    expect(sender.inflightBytes).toBe(0);
  });
});

describe("a send Kafka acknowledged in part (some partitions answered an error)", () => {
  test("the acknowledged partitions' chunks are acknowledged now and never sent again; only the rest is retried, offsets over each file's prefix", async () => {
    const kafka = new FakePublisher({ partitions: 4 });
    const { cp, events, sender } = setup(kafka);
    const a = file(cp, lines("a", 40));
    const b = file(cp, lines("b", 40));
    const limits = { maxMessageBytes: 1_000_000, targetMessageBytes: 300 };
    const aChunks = a.chunks(limits);
    const bChunks = b.chunks(limits);
    // The first send: a's partition answered 0, b's NOT_LEADER_FOR_PARTITION.
    const notLeader = () => new PublishError("This server is not the leader for that topic-partition", { retriable: true, code: "NOT_LEADER_FOR_PARTITION" });
    kafka.next(partlyAcknowledged(notLeader(), aChunks));
    sender.enqueue([...aChunks.slice(0, 3), ...bChunks.slice(0, 3), ...aChunks.slice(3), ...bChunks.slice(3)]);
    sender.start();
    await eventually(() => cp.offsetOf(a.row.id) === a.size && cp.offsetOf(b.row.id) === b.size);
    expect(kafka.calls.length).toBe(2);
    expect(kafka.calls[0]!.chunks.length).toBe(aChunks.length + bChunks.length);
    expect(kafka.calls[1]!.chunks).toEqual(bChunks); // a's chunks were not sent twice
    expect(sender.inflightBytes).toBe(0);
    expect(sender.inflightChunks).toBe(0);
    expect(sender.queued).toBe(0);
    const acked = events.of("chunksAcked").map((args) => args[0]);
    expect(acked).toEqual([aChunks.length, bChunks.length]);
    expect(events.of("sendFailed").length).toBe(1);
  });
});
