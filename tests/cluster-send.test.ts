// KafkaPublisher over the mock cluster with logship's own Produce requests (cluster-send.ts):
// records reach their partitions (the path's murmur2 partition, as kafkajs' partitioner
// chose), and when one broker is down, the partitions it leads fail while the others'
// records are acknowledged (ackedDespite) and are not part of what is retried.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Kafka, logLevel } from "kafkajs";
import { DEFAULTS, type KafkaConfig } from "../lib/config.ts";
import { PublishError } from "../lib/errors.ts";
import type { Chunk, Source } from "../lib/kafka/pack.ts";
import { ackedDespite, KafkaPublisher } from "../lib/kafka/publish.ts";
import { highWatermarks } from "./helpers/consume.ts";
import { spawnMockCluster, type MockClusterProcess } from "./helpers/mockProcess.ts";

let mock: MockClusterProcess;
beforeAll(async () => {
  mock = await spawnMockCluster({ brokers: 3, topics: ["spread:6"] });
});
afterAll(async () => {
  await mock.close();
});

const sources: Source[] = Array.from({ length: 12 }, (_, i) => ({ file: `f${i}`, path: `/var/log/app-${i}.log`, topic: "spread", host: "h" }));
const chunksOf = (tag: string): Chunk[] => sources.flatMap((source) => [0, 1, 2].map((n) => {
  const value = Buffer.from(`${tag} ${source.path} line ${n}\n`);
  return { source, value, start: n * 100, end: n * 100 + value.length, lines: 1, size: 300 };
}));

async function leaders(): Promise<Map<number, number>> {
  const admin = new Kafka({ brokers: mock.bootstraps.split(","), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const md = await admin.fetchTopicMetadata({ topics: ["spread"] });
  await admin.disconnect();
  return new Map(md.topics[0]!.partitions.map((p) => [p.partitionId, p.leader]));
}

test("records go to their path's partition; with a broker down, the other brokers' partitions are acknowledged and only the rest fails", async () => {
  const p = new KafkaPublisher({ ...DEFAULTS.kafka, brokers: mock.bootstraps.split(","), topic: "spread", request_timeout: 3_000 } as KafkaConfig);
  try {
    await p.send(chunksOf("first")); // all acknowledged
    const byLeader = await leaders();
    const partitionOf = (c: Chunk) => p.partitionOf("spread", c.source.path)!;
    const used = new Set(chunksOf("x").map(partitionOf));
    expect(used.size).toBeGreaterThan(2);
    const down = byLeader.get([...used][0]!)!;
    expect(await mock.command(`down ${down}`)).toBe("ok");
    const second = chunksOf("second");
    let err: unknown;
    try {
      await p.send(second);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PublishError);
    const held = new Set(ackedDespite(err as PublishError));
    const onDown = second.filter((c) => byLeader.get(partitionOf(c)) === down);
    expect(onDown.length).toBeGreaterThan(0);
    expect(held.size).toBe(second.length - onDown.length); // every record of the brokers that were up
    for (const c of onDown) expect(held.has(c)).toBe(false);
    expect(await mock.command(`up ${down}`)).toBe("ok");
    await p.send(onDown);
    // Each partition holds its records twice (first, then second): none lost, none sent twice.
    const stored = await highWatermarks(mock.bootstraps, "spread");
    const expected = new Map<number, number>();
    for (const c of second) expected.set(partitionOf(c), (expected.get(partitionOf(c)) ?? 0) + 2);
    for (const [partition, n] of stored) expect(n).toBe(expected.get(partition) ?? 0);
  } finally {
    await p.close();
  }
}, 60_000);
