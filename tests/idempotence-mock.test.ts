// kafka.idempotent over librdkafka's mock cluster: the fast check that the idempotent
// publisher's session starts (InitProducerId, answered by the mock) and its stamped batches
// are stored, each record once, across several sends and partitions. The mock of the
// librdkafka installed here (2.0) keeps no producer state and checks no sequence numbers (a
// retried batch is stored again whatever its sequence), so deduplication itself is tested
// against a real cluster (tests/kafka-real-cluster.test.ts, leader killed mid-stream).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { DEFAULTS, type KafkaConfig } from "../lib/config.ts";
import type { Chunk, Source } from "../lib/kafka/pack.ts";
import { KafkaPublisher } from "../lib/kafka/publish.ts";
import { storedRecords } from "./helpers/consume.ts";
import { spawnMockCluster, type MockClusterProcess } from "./helpers/mockProcess.ts";

let mock: MockClusterProcess;
beforeAll(async () => {
  mock = await spawnMockCluster({ brokers: 3, topics: ["idem:6"] });
});
afterAll(async () => {
  await mock.close();
});

const chunksOf = (tag: string): Chunk[] =>
  Array.from({ length: 12 }, (_, i): Source => ({ file: `f${i}`, path: `/var/log/app-${i}.log`, topic: "idem", host: "h" })).flatMap((source) =>
    [0, 1, 2].map((n) => {
      const value = Buffer.from(`${tag} ${source.path} line ${n}\n`);
      return { source, value, start: n * 100, end: n * 100 + value.length, lines: 1, size: 300 };
    }),
  );

test("idempotent: the session starts and stamped batches are stored, each record once", async () => {
  const resets: string[] = [];
  const p = new KafkaPublisher({ ...DEFAULTS.kafka, brokers: mock.bootstraps.split(","), topic: "idem", acks: "all", idempotent: true, request_timeout: 3_000 } as KafkaConfig, (r) => resets.push(r));
  try {
    for (const tag of ["a", "b", "c"]) await p.send(chunksOf(tag));
  } finally {
    await p.close();
  }
  expect(await storedRecords(mock.bootstraps, "idem")).toBe(3 * 36);
  expect(resets).toEqual([]);
}, 30_000);
