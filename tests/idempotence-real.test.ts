// kafka.idempotent against a real Apache Kafka broker (KRaft, tests/helpers/realKafka.ts): a
// request timeout of 2 ms, about the broker's answer time, makes some sends time out after the
// broker stored them, and the publisher retries them (its quiet retries, then the same chunks
// again, as the agent does). With idempotence the broker recognizes the retries and each
// record is stored once; without it, the same retries store records again.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { DEFAULTS, type KafkaConfig } from "../lib/config.ts";
import type { Chunk, Source } from "../lib/kafka/pack.ts";
import { KafkaPublisher } from "../lib/kafka/publish.ts";
import { storedRecords } from "./helpers/consume.ts";
import { removeClusterDir, startRealCluster, type RealCluster } from "./helpers/realKafka.ts";

let cluster: RealCluster;
beforeAll(async () => {
  cluster = await startRealCluster({ brokers: 1 });
}, 180_000);
afterAll(async () => {
  await cluster?.stop(0);
  if (cluster) removeClusterDir(cluster.dir);
}, 30_000);

const chunksOf = (topic: string, send: number): Chunk[] =>
  Array.from({ length: 6 }, (_, i): Source => ({ file: `f${i}`, path: `/var/log/app-${i}.log`, topic, host: "h" })).map((source) => {
    const value = Buffer.from(`send ${send} ${source.path} ${"v".repeat(2000)}\n`);
    return { source, value, start: send * 4096, end: send * 4096 + value.length, lines: 1, size: value.length + 100 };
  });

/**
 * 20 sends of 6 records, each retried with the same chunks until acknowledged, with a request
 * timeout of `timeoutMs`; what the topic holds. Null when a send was never acknowledged (the
 * timeout is too short for this machine: every answer came late).
 */
async function timedOut(topic: string, idempotent: boolean, timeoutMs: number): Promise<{ sent: number; stored: number; failures: number; resets: string[] } | null> {
  const bootstrap = cluster.env("plaintext").BOOTSTRAP.split(",");
  await cluster.createTopic(topic, { partitions: 3 });
  const resets: string[] = [];
  const warm = new KafkaPublisher({ ...DEFAULTS.kafka, brokers: bootstrap, topic, idempotent: false, request_timeout: 10_000 } as KafkaConfig);
  await warm.close();
  const p = new KafkaPublisher({ ...DEFAULTS.kafka, brokers: bootstrap, topic, acks: "all", idempotent, request_timeout: timeoutMs } as KafkaConfig, (r) => resets.push(r));
  let sent = 0;
  let failures = 0;
  try {
    for (let s = 0; s < 20; s++) {
      const chunks = chunksOf(topic, s);
      for (let attempt = 0; ; attempt++) {
        try {
          await p.send(chunks);
          break;
        } catch (err) {
          failures++;
          if (attempt > 400) {
            console.log(`request timeout ${timeoutMs} ms: send ${s} never acknowledged (${(err as Error).message}); trying a longer one`);
            return null;
          }
          await Bun.sleep(5);
        }
      }
      sent += chunks.length;
    }
  } finally {
    await p.close();
  }
  const stored = await storedRecords(bootstrap, topic);
  console.log(`idempotent ${idempotent}, request timeout ${timeoutMs} ms: ${sent} records sent, ${stored} stored, ${failures} failed sends retried, ${resets.length} resets`);
  return { sent, stored, failures, resets };
}

test("sends that time out after the broker stored them, retried: stored twice without idempotence, once with it", async () => {
  // The pair runs under the same conditions. The timeout must land between the broker storing a
  // send and its answer arriving, which depends on the machine: the pair is tried at several
  // timeouts until the run without idempotence shows duplicates (the timeouts did hit stored
  // sends). Every run with idempotence, whatever its timeout, must store each record once.
  for (const ms of [2, 3, 2, 5, 1, 8, 3, 12]) {
    const tag = `${ms}-${Date.now().toString(36)}`;
    const plain = await timedOut(`plain-timeout-${tag}`, false, ms);
    const idem = await timedOut(`idem-timeout-${tag}`, true, ms);
    if (idem) {
      expect(idem.stored).toBe(idem.sent);
      expect(idem.resets).toEqual([]);
    }
    if (plain) expect(plain.stored).toBeGreaterThanOrEqual(plain.sent);
    if (plain && idem && plain.stored > plain.sent) return; // the timeouts hit stored sends (the publisher's quiet retries resend them), and the run beside it stored each once
  }
  throw new Error("no request timeout made the run without idempotence store duplicates: the timeouts never hit stored sends (inconclusive)");
}, 600_000);

test("runs (format line: a chunk of many records): each record its own sequence number, no reset, each stored once", async () => {
  const topic = `idem-runs-${Date.now().toString(36)}`;
  const bootstrap = cluster.env("plaintext").BOOTSTRAP.split(",");
  await cluster.createTopic(topic, { partitions: 2 });
  const resets: string[] = [];
  const p = new KafkaPublisher({ ...DEFAULTS.kafka, brokers: bootstrap, topic, idempotent: true, request_timeout: 10_000 } as KafkaConfig, (r) => resets.push(r));
  let sent = 0;
  try {
    for (let s = 0; s < 10; s++) {
      const chunks = Array.from({ length: 4 }, (_, i): Chunk => {
        const source: Source = { file: `f${i}`, path: `/var/log/run-${i}.log`, topic, host: "h" };
        const value = Buffer.from(Array.from({ length: 25 }, (_, k) => `send ${s} line ${k}\n`).join(""));
        return { source, value, start: s * 1000, end: s * 1000 + value.length, lines: 25, size: value.length + 25 * 100, run: 25 };
      });
      await p.send(chunks);
      sent += 4 * 25;
    }
  } finally {
    await p.close();
  }
  expect(await storedRecords(bootstrap, topic)).toBe(sent);
  expect(resets).toEqual([]);
}, 60_000);
