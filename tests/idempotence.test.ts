// The idempotent producer's pieces without a broker: the record batch header's producer id,
// epoch and first sequence against kafkajs' own RecordBatch encoder given the same fields;
// InitProducerId's request and response against kafkajs' own; and the sequence rules of
// idempotence.ts (a retry of the same records keeps its sequence, other records after an
// uncertain attempt reset the session, a batch the broker refused before appending frees its
// sequences, the reset codes start a new session, sequences wrap at 2^31).
import { expect, test } from "bun:test";
import { CompressionTypes } from "kafkajs";
import { installKafkajsPatches } from "../lib/kafka/patches/index.ts";
// @ts-expect-error kafkajs ships no types for its internals
import { RecordBatch } from "kafkajs/src/protocol/recordBatch/v0/index.js";
// @ts-expect-error kafkajs ships no types for its internals
import Record from "kafkajs/src/protocol/recordBatch/record/v0/index.js";
// @ts-expect-error kafkajs ships no types for its internals
import Long from "kafkajs/src/utils/long.js";
// @ts-expect-error kafkajs ships no types for its internals
import InitProducerIdV0 from "kafkajs/src/protocol/requests/initProducerId/v0/request.js";
// @ts-expect-error kafkajs ships no types for its internals
import InitProducerIdV1 from "kafkajs/src/protocol/requests/initProducerId/v1/request.js";
// @ts-expect-error kafkajs ships no types for its internals
import InitProducerIdResponseV0 from "kafkajs/src/protocol/requests/initProducerId/v0/response.js";
import { chunkHeaders, chunkKey, type Chunk, type Source } from "../lib/kafka/pack.ts";
import { exactName } from "../lib/names.ts";
import { decodeInitProducerId, encodeInitProducerId, Idempotence, initProducerIdRequest, nextSequence, type Stamped } from "../lib/kafka/idempotence.ts";
import { writeBatch, Writer } from "../lib/kafka/records.ts";

installKafkajsPatches();

const NOW = 1_764_500_000_123;
const src: Source = { host: "web-1", path: "/var/log/app/a.log", topic: "logs", file: "2049:1234:19a2b3c4d5e:0f1e2d3c" };
const chunk = (start: number, text: string): Chunk => ({ source: src, value: Buffer.from(text), start, end: start + text.length, lines: 1, size: 0 });
const chunks = (n: number, from = 0): Chunk[] => Array.from({ length: n }, (_, i) => chunk((from + i) * 10, `line ${from + i}\n`));

async function kafkajsBatch(cs: Chunk[], compression: CompressionTypes, producerId: string, producerEpoch: number, firstSequence: number): Promise<Buffer> {
  const records = cs.map((c, i) => {
    const key = chunkKey(c);
    return Record({ key: key === null ? null : exactName(key), value: c.value, headers: chunkHeaders(c), timestamp: NOW, offsetDelta: i, timestampDelta: 0 });
  });
  const batch = await RecordBatch({ compression, records, firstTimestamp: NOW, maxTimestamp: NOW, lastOffsetDelta: records.length - 1, producerId: Long.fromString(producerId), producerEpoch, firstSequence });
  return Buffer.from(batch.buffer);
}

for (const [producerId, epoch, base] of [["0", 0, 0], ["4001", 3, 117], ["9007199254740993", 32767, 2147483600]] as const) {
  test(`a batch with producer id ${producerId}, epoch ${epoch}, first sequence ${base} is kafkajs' byte for byte`, async () => {
    for (const compression of [CompressionTypes.None, CompressionTypes.GZIP, CompressionTypes.ZSTD]) {
      const w = new Writer(16);
      await writeBatch(w, chunks(40), compression, NOW, new Writer(16), { producerId: BigInt(producerId), epoch, base });
      expect(w.view().equals(await kafkajsBatch(chunks(40), compression, producerId, epoch, base))).toBe(true);
    }
  });
}

test("InitProducerId request v0 and v1: kafkajs' bytes for a null transactional id", async () => {
  const mine = encodeInitProducerId().buffer;
  for (const make of [InitProducerIdV0, InitProducerIdV1]) {
    const theirs = await make({ transactionalId: null, transactionTimeout: 2147483647 }).encode();
    expect(Buffer.from(mine).equals(Buffer.from(theirs.buffer))).toBe(true);
  }
  expect(initProducerIdRequest(1).request).toMatchObject({ apiKey: 22, apiVersion: 1, apiName: "InitProducerId" });
});

test("InitProducerId response: decoded as kafkajs decodes it; an error code throws kafkajs' error", async () => {
  const body = (code: number, id: string, epoch: number) => {
    const b = Buffer.alloc(16);
    b.writeInt32BE(7, 0); // throttle_time_ms
    b.writeInt16BE(code, 4);
    b.writeBigInt64BE(BigInt(id), 6);
    b.writeInt16BE(epoch, 14);
    return b;
  };
  const ok = body(0, "9007199254740993", 5);
  expect(decodeInitProducerId(ok)).toEqual({ throttleTime: 7, errorCode: 0, producerId: 9007199254740993n, epoch: 5 });
  const theirs = await InitProducerIdResponseV0.decode(ok);
  expect(theirs.producerId).toBe("9007199254740993");
  expect(theirs.producerEpoch).toBe(5);
  const r = initProducerIdRequest(1).response;
  expect(await r.decode(ok)).toMatchObject({ clientSideThrottleTime: 7 });
  await expect(r.parse(decodeInitProducerId(body(53, "-1", -1)))).rejects.toMatchObject({ type: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" });
});

function session() {
  const said: string[] = [];
  let ids = 1000n;
  const idem = new Idempotence((line) => said.push(line));
  const ready = () => idem.ready(async () => ({ producerId: ids++, epoch: 0 }));
  return { idem, said, ready };
}

test("sequences: per partition, advanced by each batch's records; a retry of the same records keeps its sequence", async () => {
  const { idem, ready } = session();
  await ready();
  const a = chunks(3);
  const s1 = idem.stamp("logs", 0, a)!;
  expect(s1).toMatchObject({ producerId: 1000n, epoch: 0, base: 0 });
  expect(idem.stamp("logs", 1, chunks(2))!.base).toBe(0); // another partition: its own sequence
  idem.settle(s1, "failed"); // no answer: the broker may hold it
  expect(idem.stamp("logs", 0, a)!.base).toBe(0); // the same records: the same sequence
  idem.settle(idem.stamp("logs", 0, a)!, "acked");
  expect(idem.stamp("logs", 0, chunks(5, 3))!.base).toBe(3);
});

test("other records where an unanswered batch was: no stamp (the caller resets); after a reset, sequences from 0 under a new id", async () => {
  const { idem, said, ready } = session();
  await ready();
  idem.settle(idem.stamp("logs", 0, chunks(3))!, "acked");
  const open = idem.stamp("logs", 0, chunks(4, 3))!;
  idem.settle(open, "failed", 7); // REQUEST_TIMED_OUT: maybe stored
  expect(idem.stamp("logs", 0, chunks(2, 3))).toBeNull();
  idem.reset("a retry carried other records");
  expect(said).toEqual(["idempotent producer 1000 reset (a retry carried other records): a new producer id, sequences from 0; records it sent without an answer may be stored twice"]);
  await ready();
  expect(idem.stamp("logs", 0, chunks(2, 3))).toMatchObject({ producerId: 1001n, base: 0 });
  idem.settle(open, "acked"); // the old session's answer arrives late: nothing changes
  expect(idem.stamp("logs", 0, chunks(2, 3))!.base).toBe(0);
});

test("a batch refused before it was appended (MESSAGE_TOO_LARGE) frees its sequences for the records sent instead", async () => {
  const { idem, ready } = session();
  await ready();
  idem.settle(idem.stamp("logs", 0, chunks(3))!, "acked");
  idem.settle(idem.stamp("logs", 0, chunks(4, 3))!, "failed", 10);
  expect(idem.stamp("logs", 0, chunks(1, 3))!.base).toBe(3);
  expect(idem.stamp("logs", 0, chunks(1, 3))!.base).toBe(3); // still open, the same records
});

test("OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_EPOCH reset the session, saying so in one line", async () => {
  for (const [code, name] of [[45, "OUT_OF_ORDER_SEQUENCE_NUMBER"], [59, "UNKNOWN_PRODUCER_ID"], [47, "INVALID_PRODUCER_EPOCH"]] as const) {
    const { idem, said, ready } = session();
    await ready();
    const st: Stamped = idem.stamp("logs", 2, chunks(3))!;
    idem.settle(st, "failed", code);
    expect(idem.producerId).toBeUndefined();
    expect(said).toHaveLength(1);
    expect(said[0]).toContain(`(${name} from the partition leader)`);
    await ready();
    expect(idem.stamp("logs", 2, chunks(3))).toMatchObject({ producerId: 1001n, base: 0 });
  }
});

test("one InitProducerId for concurrent senders; a failed one is asked again next time", async () => {
  const idem = new Idempotence(() => {});
  let asked = 0;
  let fail = true;
  const init = async () => {
    asked++;
    await Bun.sleep(5);
    if (fail) throw new Error("COORDINATOR_NOT_AVAILABLE");
    return { producerId: 7n, epoch: 1 };
  };
  await expect(Promise.all([idem.ready(init), idem.ready(init)])).rejects.toThrow("COORDINATOR_NOT_AVAILABLE");
  expect(asked).toBe(1);
  fail = false;
  await Promise.all([idem.ready(init), idem.ready(init)]);
  expect(asked).toBe(2);
  expect(idem.producerId).toBe(7n);
});

test("a run (a chunk of many records, format line) advances the sequence by its records", async () => {
  const { idem, ready } = session();
  await ready();
  const run: Chunk = { ...chunk(0, "a\nb\nc\n"), run: 3 };
  idem.settle(idem.stamp("logs", 0, [run, chunk(6, "d\n")])!, "acked");
  expect(idem.stamp("logs", 0, chunks(1, 9))!.base).toBe(4);
});

test("sequence numbers wrap from 2^31 - 1 to 0", () => {
  expect(nextSequence(2147483645, 2)).toBe(2147483647);
  expect(nextSequence(2147483645, 3)).toBe(0);
  expect(nextSequence(2147483647, 5)).toBe(4);
});
