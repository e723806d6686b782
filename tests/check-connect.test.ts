// check --connect's parts that need no real broker: the Kafka release read from an ApiVersions
// answer (releases.ts), the Metadata v8 request and response as bytes and the WRITE bit
// (metadata-v8.ts), and the whole command against librdkafka's mock cluster, whose Metadata
// stops at v2: write permission is then "unknown: broker too old", a WARN, exit 0.
// The real-broker side (Kafka 4.1, StandardAuthorizer ACLs) is in kafka-real-broker.test.ts.

import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Encoder from "kafkajs/src/protocol/encoder.js";
import { decodeMetadataV8, encodeMetadataV8, mayWrite, OPERATIONS_UNKNOWN } from "../lib/kafka/metadata-v8.ts";
import { kafkaRelease, type ApiVersions } from "../lib/kafka/releases.ts";
import { runLogship } from "./helpers/agentProcess.ts";
import { useCluster } from "./helpers/useCluster.ts";

/** An ApiVersions answer from [key, max] pairs (min 0). */
const answer = (pairs: [number, number][]): ApiVersions => new Map(pairs.map(([k, max]) => [k, [0, max]]));
// The rows of the table's 25 keys for 4.1 and 3.3/3.4, as brokers of those releases advertise them.
const KEYS = [0, 1, 2, 3, 8, 9, 10, 11, 15, 16, 19, 20, 22, 29, 32, 33, 36, 37, 42, 44, 47, 50, 60, 61, 75];
const K41 = [13, 18, 10, 13, 9, 9, 6, 9, 6, 5, 7, 6, 5, 3, 4, 2, 2, 3, 2, 1, 0, 0, 2, 0, 0];
const K34 = [9, 13, 7, 12, 8, 8, 4, 9, 5, 4, 7, 6, 4, 3, 4, 2, 2, 3, 2, 1, 0, 0, 0, 0, -1];
const row = (maxes: number[], extra: [number, number][] = []) => answer([...KEYS.map((k, i) => [k, maxes[i]!] as [number, number]).filter(([, m]) => m >= 0), ...extra]);

describe("kafkaRelease: the Kafka release an ApiVersions answer fits", () => {
  test("an exact row names the release; APIs outside the table do not matter", () => {
    expect(kafkaRelease(row(K41, [[18, 4], [68, 1]]))).toBe("Kafka 4.1");
  });
  test("two releases with the same row are both named", () => {
    expect(kafkaRelease(row(K34))).toBe("Kafka 3.3 or 3.4");
  });
  test("4.1 with Produce and Fetch further on: newer than the table", () => {
    const newer = [...K41];
    newer[0] = 14;
    newer[1] = 19;
    expect(kafkaRelease(row(newer))).toBe("Kafka newer than 4.1");
  });
  test("a row between releases (a vendor's broker): the newest release it covers, said to be inexact", () => {
    const mixed = [...K34];
    mixed[0] = 11; // Produce of 3.8, the rest of 3.4
    expect(kafkaRelease(row(mixed))).toBe("Kafka 3.3 or later (its API versions match no Apache Kafka release exactly)");
  });
  test("below 2.2 (librdkafka 2.0.2's mock: Produce v7, Metadata v2)", () => {
    expect(kafkaRelease(answer([[0, 7], [1, 11], [3, 2], [18, 3]]))).toBe("Kafka 2.1 or older (or not Apache Kafka)");
  });
});

describe("Metadata v8 with authorized operations", () => {
  test("the request: the topics, allow_auto_topic_creation=false, include_cluster_authorized_operations=false, include_topic_authorized_operations=true", () => {
    const bytes = encodeMetadataV8(["logs", "é"]).buffer;
    const expected = Buffer.concat([
      Buffer.from([0, 0, 0, 2, 0, 4]), Buffer.from("logs"), Buffer.from([0, 2]), Buffer.from("é"), Buffer.from([0, 0, 1]),
    ]);
    expect(Buffer.from(bytes).toString("hex")).toBe(expected.toString("hex"));
  });

  test("the response: per topic its error, partitions with leaders and the authorized operations", () => {
    const e = new Encoder();
    e.writeInt32(7); // throttle_time_ms
    e.writeInt32(1).writeInt32(1).writeString("127.0.0.1").writeInt32(9092).writeString(null); // brokers
    e.writeString("cluster").writeInt32(1); // cluster_id, controller_id
    e.writeInt32(2); // topics
    e.writeInt16(0).writeString("logs").writeBoolean(false);
    e.writeInt32(2);
    for (const [id, leader] of [[0, 1], [1, -1]]) e.writeInt16(0).writeInt32(id!).writeInt32(leader!).writeInt32(5).writeArray([1], "int32").writeArray([1], "int32").writeArray([], "int32");
    e.writeInt32((1 << 3) | (1 << 4) | (1 << 8)); // READ, WRITE, DESCRIBE
    e.writeInt16(29).writeString("secret").writeBoolean(false).writeInt32(0).writeInt32(OPERATIONS_UNKNOWN);
    e.writeInt32(OPERATIONS_UNKNOWN); // cluster_authorized_operations
    const r = decodeMetadataV8(Buffer.from(e.buffer));
    expect(r.throttleTime).toBe(7);
    expect(r.topics).toEqual([
      { name: "logs", errorCode: 0, partitions: [{ id: 0, errorCode: 0, leader: 1 }, { id: 1, errorCode: 0, leader: -1 }], authorizedOperations: 0b100011000 },
      { name: "secret", errorCode: 29, error: "TOPIC_AUTHORIZATION_FAILED", partitions: [], authorizedOperations: OPERATIONS_UNKNOWN },
    ]);
  });

  test("mayWrite reads bit 1 << 4 (AclOperation WRITE); Int32 MIN_VALUE is unknown, not a refusal", () => {
    expect(mayWrite(1 << 4)).toBe(true);
    expect(mayWrite((1 << 3) | (1 << 8))).toBe(false); // READ and DESCRIBE only
    expect(mayWrite(0)).toBe(false);
    expect(mayWrite(OPERATIONS_UNKNOWN)).toBeUndefined();
  });
});

describe("check --connect against the mock cluster (librdkafka 2.0.2)", () => {
  const kit = useCluster(3, { build: true });

  test("every broker reached, the topic exists, write permission unknown because its Metadata stops at v2: WARN, exit 0", async () => {
    const dir = kit.scratch("connect-mock");
    kit.cluster.createTopic("mock-logs", 3);
    const cfg = join(dir, "logship.yaml");
    writeFileSync(cfg, `inputs:\n  - paths: ["${dir}/*.log"]\nkafka:\n  brokers: ["${kit.cluster.bootstraps.split(",")[0]}"]\n  topic: mock-logs\nstate:\n  path: ${dir}/state.db\n`);
    const r = await runLogship(["check", "--config", cfg, "--connect"], { timeoutMs: 40_000 });
    expect(r.stdout.match(/^ok   broker \d at 127\.0\.0\.1:\d+: reached; Kafka 2\.1 or older \(or not Apache Kafka\) \(Produce v0–v7, Metadata v0–v2, \d+ APIs\)$/gm)).toHaveLength(3);
    expect(r.stdout).toContain("WARN topic mock-logs: exists, 3 partitions, every partition has a leader; write permission unknown: broker too old (its Metadata stops at v2; authorized operations need v8, Kafka 2.3 or later)\n");
    expect(r.stdout).toContain("ok   idempotent producer: a producer id was granted (InitProducerId)\n"); // kafka.idempotent is on by default
    expect(r.stdout).toContain("kafka: shipping can work");
    expect(r.code).toBe(0);
    // Without idempotence nothing asks for a producer id.
    writeFileSync(cfg, readFileSync(cfg, "utf8").replace("  topic: mock-logs\n", "  topic: mock-logs\n  idempotent: false\n"));
    const off = await runLogship(["check", "--config", cfg, "--connect"], { timeoutMs: 40_000 });
    expect(off.stdout).not.toContain("idempotent producer");
    expect(off.code).toBe(0);
  }, 60_000);
});
