// Faults: brokers that fail, refuse or crawl. The compiled binary ships while the test takes
// one broker of three down and moves its partitions' leadership, injects Produce errors
// (retriable, too large, not authorized), and slows every response to 2 s. Each test
// asserts what arrived (every line, in order, duplicates counted) and what was logged.

import { describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { consumeAll } from "./helpers/consume.ts";
import { eventually } from "./helpers/eventually.ts";
import { AgentProcess } from "./helpers/agentProcess.ts";
import { appendLines, type ConfigOptions, fields, mkdir, savedOffsets, seqLine, shortfall, startLeaderCluster, useCluster, verifyDelivery, writeConfig } from "./helpers/faults.ts";
import { ApiKey, KafkaErr } from "./helpers/mockCluster.ts";

const MiB = 1024 * 1024;

const mock = useCluster(); // one broker, for injected errors and RTT

/** A workspace with `tags` log files (one per tag) and a config shipping them to `topic`. */
function setup(name: string, topic: string, over: Partial<ConfigOptions> = {}) {
  const dir = mock.scratch(name);
  const logs = mkdir(join(dir, "logs"));
  const state = join(dir, "state.db");
  const config = writeConfig(join(dir, "logship.yaml"), { inputs: [{ paths: [join(logs, "*.log")] }], brokers: mock.cluster.bootstraps, topic, state, ...over });
  const written: Record<string, number> = {};
  const path = (tag: string) => join(logs, `${tag}.log`);
  const append = (tags: string[], count: number) => {
    for (const t of tags) written[t] = appendLines(path(t), t, written[t] ?? 0, count);
  };
  /** Resolves when every file's saved offset is its size. */
  const allAcked = (timeoutMs = 20_000) =>
    eventually(() => Object.keys(written).every((t) => savedOffsets(state).get(path(t)) === statSync(path(t)).size), { timeoutMs, message: "every file acknowledged to its end" });
  return { dir, logs, state, config, written, path, append, allAcked };
}

function leaders(bootstraps: string, topic: string): Map<number, number> {
  const out = Bun.spawnSync(["kcat", "-L", "-J", "-b", bootstraps, "-t", topic, "-m", "5"]);
  const md = JSON.parse(out.stdout.toString()) as { topics: { partitions: { partition: number; leader: number }[] }[] };
  return new Map(md.topics[0]!.partitions.map((p) => [p.partition, p.leader]));
}

describe("one broker of three down", () => {
  test(
    "shipping goes on once its partitions have new leaders",
    async () => {
      const three = startLeaderCluster(3);
      const s = setup("leader", "lead", { brokers: three.bootstraps });
      const tags = ["l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7"];
      let run: AgentProcess | undefined;
      try {
        three.createTopic("lead", 6, 3);
        s.append(tags, 200);
        run = AgentProcess.run(s.config);
        await s.allAcked();

        // Broker 1 is the first bootstrap address, so kafkajs also loses its metadata source.
        three.brokerDown(1);
        const moved = [...leaders(three.bootstraps, "lead")].filter(([, leader]) => leader === 1);
        for (const [partition] of moved) three.setPartitionLeader("lead", partition, 2 + (partition % 2));
        expect([...leaders(three.bootstraps, "lead").values()]).not.toContain(1);
        for (let round = 0; round < 5; round++) {
          s.append(tags, 200);
          await s.allAcked();
        }
        const downLog = run.matching(/ERROR|WARN/);
        console.log(`[faults] broker 1 of 3 down, ${moved.length} partition(s) moved: ${downLog.length} error/warn line(s)`);
        three.brokerUp(1);
        run.signal("SIGTERM");
        expect(await run.waitForExit()).toBe(0);

        const d = verifyDelivery(await consumeAll(three.bootstraps, "lead"));
        expect(d.errors).toEqual([]);
        expect(shortfall(d, s.written)).toEqual([]);
        console.log(`[faults] broker 1 of 3 down: duplicates ${d.duplicates} lines`);
      } finally {
        await run?.kill();
        three.close();
      }
    },
    60_000,
  );
});

describe("injected Produce errors", () => {
  test(
    "retriable errors (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS) are retried without loss or reordering",
    async () => {
      const s = setup("retriable", "retriable");
      const tags = ["r0", "r1", "r2"];
      s.append(tags, 100);
      const run = AgentProcess.run(s.config);
      try {
        await s.allAcked();
        const cases = [
          [KafkaErr.NOT_LEADER_OR_FOLLOWER, "NOT_LEADER_FOR_PARTITION"],
          [KafkaErr.REQUEST_TIMED_OUT, "REQUEST_TIMED_OUT"],
          [KafkaErr.NOT_ENOUGH_REPLICAS, "NOT_ENOUGH_REPLICAS"],
        ] as const;
        for (const [code, name] of cases) {
          const from = run.lines.length;
          // More errors than kafkajs retries inside one send, so the agent's own retry runs too.
          mock.cluster.pushRequestErrors(ApiKey.Produce, Array(5).fill(code));
          s.append(tags, 300);
          const failed = await run.waitForLine(/ERROR Kafka send failed/, { after: from });
          expect(fields(failed)).toMatchObject({ code: name, retriable: "true" });
          await run.waitForLine(/INFO Kafka sends succeed again/, { after: from });
          await s.allAcked();
          expect(run.count(/ERROR/, from)).toBe(1);
        }
        run.signal("SIGTERM");
        expect(await run.waitForExit()).toBe(0);
      } finally {
        await run.kill();
      }
      const d = verifyDelivery(await consumeAll(mock.cluster.bootstraps, "retriable"));
      expect(d.errors).toEqual([]);
      expect(shortfall(d, s.written)).toEqual([]);
      expect(d.duplicates).toBe(0); // a refused request wrote nothing
    },
    60_000,
  );

  test(
    "MESSAGE_TOO_LARGE: records are cut and retried; a single line Kafka still refuses is dropped, counted and logged; no endless loop",
    async () => {
      const s = setup("toolarge", "toolarge", { kafka: { max_message_bytes: "16KiB", target_message_bytes: "4KiB" }, top: { max_inflight_bytes: "64KiB" } });
      const tags = ["m0", "m1"];
      const lineBytes = seqLine("m0", 0).length; // every generated line has this length
      s.append(tags, 100);
      const run = AgentProcess.run(s.config);
      try {
        await s.allAcked();

        // One refusal: the batch is resent record by record; nothing is lost.
        let from = run.lines.length;
        mock.cluster.pushRequestErrors(ApiKey.Produce, [KafkaErr.MSG_SIZE_TOO_LARGE]);
        s.append(tags, 400);
        await s.allAcked();
        expect(run.count(/record rejected by Kafka and dropped/, from)).toBe(0);

        // Refused again and again: halves, quarters, ... down to single lines, which are dropped.
        from = run.lines.length;
        mock.cluster.pushRequestErrors(ApiKey.Produce, Array(40).fill(KafkaErr.MSG_SIZE_TOO_LARGE));
        s.append(tags, 400);
        await s.allAcked();
        const drops = run.matching(/ERROR record rejected by Kafka and dropped/, from).map(fields);
        expect(drops.length).toBeGreaterThanOrEqual(1);
        const skip = new Map<string, Set<number>>();
        for (const f of drops) {
          expect(f.reason).toBe("MESSAGE_TOO_LARGE");
          expect(Number(f.bytes)).toBe(lineBytes); // only ever a single line
          const tag = /\/(m\d)\.log$/.exec(f.path!)![1]!;
          expect(Number(f.offset) % lineBytes).toBe(0);
          skip.set(tag, (skip.get(tag) ?? new Set()).add(Number(f.offset) / lineBytes));
        }
        console.log(`[faults] 40 × MESSAGE_TOO_LARGE: ${drops.length} single line(s) dropped`);

        // Afterwards shipping goes on normally.
        from = run.lines.length;
        s.append(tags, 200);
        await s.allAcked();
        expect(run.count(/ERROR/, from)).toBe(0);
        run.signal("SIGTERM");
        expect(await run.waitForExit()).toBe(0);

        const d = verifyDelivery(await consumeAll(mock.cluster.bootstraps, "toolarge"), skip);
        expect(d.errors).toEqual([]);
        expect(shortfall(d, s.written)).toEqual([]);
        expect(d.duplicates).toBe(0);
        // The dropped lines are exactly the ones logged: none of them arrived.
        const arrived = (await consumeAll(mock.cluster.bootstraps, "toolarge")).flatMap((r) => r.value.toString("latin1").split("\n").slice(0, -1));
        for (const [tag, seqs] of skip) for (const seq of seqs) expect(arrived).not.toContain(seqLine(tag, seq).slice(0, -1));
      } finally {
        await run.kill();
      }
    },
    60_000,
  );

  test(
    "TOPIC_AUTHORIZATION_FAILED is reported as not retriable, retried with backoff, and offsets do not advance meanwhile",
    async () => {
      const s = setup("authz", "authz", { kafka: { retry_backoff: "20ms", retry_backoff_max: "200ms" } });
      const tags = ["z0", "z1"];
      s.append(tags, 100);
      const run = AgentProcess.run(s.config);
      try {
        await s.allAcked();
        const before = savedOffsets(s.state);
        const from = run.lines.length;
        mock.cluster.pushRequestErrors(ApiKey.Produce, Array(1000).fill(KafkaErr.TOPIC_AUTHORIZATION_FAILED));
        s.append(tags, 300);
        const failed = fields(await run.waitForLine(/ERROR Kafka send failed/, { after: from }));
        expect(failed).toMatchObject({ code: "TOPIC_AUTHORIZATION_FAILED", retriable: "false" });
        expect(failed.reason).toMatch(/authoriz/i);
        expect(failed.reason).toContain("authz"); // names the topic
        // Let several backoff periods pass (stats lines are the clock): nothing moves.
        const stats = run.count(/ INFO stats /);
        await eventually(() => run.count(/ INFO stats /) >= stats + 4, { timeoutMs: 10_000 });
        expect(savedOffsets(s.state)).toEqual(before);
        expect(run.count(/ERROR/, from)).toBe(1);

        mock.cluster.clearRequestErrors(ApiKey.Produce);
        await run.waitForLine(/INFO Kafka sends succeed again/, { after: from });
        await s.allAcked();
        run.signal("SIGTERM");
        expect(await run.waitForExit()).toBe(0);
      } finally {
        mock.cluster.clearRequestErrors(ApiKey.Produce);
        await run.kill();
      }
      const d = verifyDelivery(await consumeAll(mock.cluster.bootstraps, "authz"));
      expect(d.errors).toEqual([]);
      expect(shortfall(d, s.written)).toEqual([]);
    },
    60_000,
  );
});

describe("slow brokers", () => {
  test(
    "RTT 2 s: shipping slows down, nothing fails, memory stays bounded",
    async () => {
      // A 1 MiB in-flight cap: the backlog needs several slow round trips, reading pausing between them.
      const s = setup("rtt", "rtt", { kafka: { request_timeout: "10s" }, top: { max_inflight_bytes: "1MiB" } });
      const tags = ["w0", "w1", "w2", "w3"];
      s.append(tags, 100);
      const run = AgentProcess.run(s.config);
      try {
        await s.allAcked();
        const from = run.lines.length;
        mock.cluster.setRtt(1, 2000);
        const t0 = Date.now();
        s.append(tags, 12_000); // ~3 MiB
        await s.allAcked(60_000);
        const took = Date.now() - t0;
        const peak = run.peakRssKiB * 1024;
        console.log(`[faults] RTT 2 s: ${(4 * 12_000 * seqLine("w0", 0).length / MiB).toFixed(1)} MiB acknowledged in ${took} ms, peak RSS ${(peak / MiB).toFixed(1)} MiB`);
        expect(took).toBeGreaterThanOrEqual(4000); // at least two slow round trips
        expect(run.count(/ERROR|WARN/, from)).toBe(0);
        expect(peak).toBeLessThan(120 * MiB);
        mock.cluster.setRtt(1, 0);
        run.signal("SIGTERM");
        expect(await run.waitForExit()).toBe(0);
      } finally {
        mock.cluster.setRtt(1, 0);
        await run.kill();
      }
      const d = verifyDelivery(await consumeAll(mock.cluster.bootstraps, "rtt"));
      expect(d.errors).toEqual([]);
      expect(shortfall(d, s.written)).toEqual([]);
      expect(d.duplicates).toBe(0);
    },
    90_000,
  );
});
