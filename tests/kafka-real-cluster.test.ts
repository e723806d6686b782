// End to end against a real 3-node Apache Kafka cluster (KRaft; replication factor 3,
// min.insync.replicas 2, auto.create.topics.enable=false), shared by the file:
// - the broker leading the partition is killed (-9) mid-stream and started again: nothing is
//   lost, each file's order holds, duplicates are counted; with kafka.idempotent, none;
// - a missing topic: a clear error naming it, shipping starts once the topic is created;
// - a topic whose max.message.bytes is below logship's max_message_bytes: the real
//   MESSAGE_TOO_LARGE path (records cut at line ends; a single too-long line dropped and logged).
// kcat reads back through the internal listener.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentProcess, checkDelivery, defaultHost, ensureBuilt, runLogship, writeConfig } from "./helpers/agentProcess.ts";
import { consumeAll } from "./helpers/consume.ts";
import { removeClusterDir, startRealCluster, type RealCluster } from "./helpers/realKafka.ts";

let cluster: RealCluster;
const dirs: string[] = [];

beforeAll(async () => {
  ensureBuilt();
  cluster = await startRealCluster({ brokers: 3, props: { "auto.create.topics.enable": false } });
}, 180_000);

afterAll(async () => {
  await cluster?.stop(0);
  if (cluster) removeClusterDir(cluster.dir);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 30_000);

function workspace(name: string): { dir: string; logs: string; topic: string } {
  const dir = mkdtempSync(join(tmpdir(), `logship-real3-${name}-`));
  dirs.push(dir);
  const logs = join(dir, "logs");
  mkdirSync(logs);
  return { dir, logs, topic: `real3-${name}-${Date.now().toString(36)}` };
}

function config(ws: { dir: string; logs: string; topic: string }, kafka = ""): string {
  return writeConfig(
    ws.dir,
    `inputs:
  - paths: ["${ws.logs}/*.log"]
kafka:
  brokers: ["${cluster.env("plaintext").BOOTSTRAP.split(",").join('", "')}"]
  topic: ${ws.topic}
  acks: all
  request_timeout: 5s
  retry_backoff: 50ms
  retry_backoff_max: 1s
${kafka}state:
  path: ${ws.dir}/state.db
poll_interval: 50ms
stats_interval: 0
`,
  );
}

/** Polls `check` until every file is shipped to its end. */
async function caughtUp(cfg: string, paths: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const c = await runLogship(["check", "--config", cfg]);
    last = c.stdout;
    if (paths.every((p) => new RegExp(`^${p}\\s.*\\s0\\s*$`, "m").test(c.stdout))) return;
    await Bun.sleep(250);
  }
  throw new Error(`not caught up after ${timeoutMs} ms:\n${last}`);
}

describe("a real 3-node cluster", () => {
  // Six files over six partitions, so that one send holds records for partitions led by every
  // broker: this is what caught kafkajs' retry dropping the records of a partition whose new
  // leader had already answered within the same send (see lib/kafka/publish.ts); with two
  // partitions it lost data in about 1 run of 8.
  // With kafka.idempotent, the sends retried after the kill carry the sequences of their first
  // attempt: what the killed leader had stored (and replicated) before it died is recognized by
  // the new leader and not stored again. LEADER_KILL_RUNS=n repeats the test (measurements).
  async function leaderKill(idempotent: boolean): Promise<{ lines: number; duplicateLines: number; resets: number }> {
    const ws = workspace(idempotent ? "leader-idem" : "leader");
    await cluster.createTopic(ws.topic, { partitions: 6, replicationFactor: 3, config: { "min.insync.replicas": "2" } });
    const cfg = config(ws, `  idempotent: ${idempotent}\n`);
    const paths = ["a", "b", "c", "d", "e", "f"].map((f) => join(ws.logs, `${f}.log`));
    for (const p of paths) writeFileSync(p, "");
    const agent = AgentProcess.start(["run", "--config", cfg]);
    try {
      let n = 0;
      const write = (count: number) => {
        for (let i = 0; i < count; i++, n++) for (const p of paths) appendFileSync(p, `${p.slice(-5, -4)} ${String(n).padStart(7, "0")} ${"z".repeat(n % 80)}\n`);
      };
      for (let i = 0; i < 10; i++) {
        write(200);
        await Bun.sleep(50);
      }
      const leader = await cluster.leaderOf(ws.topic, 0);
      cluster.kill(leader);
      for (let i = 0; i < 30; i++) {
        write(200);
        await Bun.sleep(50);
      }
      await cluster.start(leader);
      for (let i = 0; i < 10; i++) {
        write(200);
        await Bun.sleep(50);
      }
      await caughtUp(cfg, paths);
      agent.signal("SIGTERM");
      expect(await agent.waitForExit(30_000)).toBe(0);
      const files = new Map(paths.map((p) => [p, readFileSync(p)]));
      const records = await consumeAll(cluster.internalBootstrap, ws.topic, { timeoutMs: 30_000 });
      if (process.env.DUMP_RECORDS) for (const r of records) console.log(`dump p${r.partition} o${r.offset} ${r.key.split("/").pop()} at=${r.headers.offset} len=${r.value.length}`);
      const report = checkDelivery(records, files, { host: defaultHost(), duplicates: "count" }); // throws on any loss or reordering
      expect(report.lines).toBe(n * paths.length);
      const resets = agent.lines.filter((l) => l.includes("idempotent producer") && l.includes("reset")).length;
      console.log(`idempotent ${idempotent}: leader ${leader} killed: ${n * paths.length} lines, ${report.records} records, ${report.duplicateLines} duplicate lines (${report.duplicateRecords} records), ${resets} producer resets`);
      return { lines: report.lines, duplicateLines: report.duplicateLines, resets };
    } finally {
      await agent.kill();
    }
  }

  const RUNS = Number(process.env.LEADER_KILL_RUNS ?? 1);
  test("kill -9 the partition leader mid-stream, then start it again: nothing lost, order per file, duplicates counted", async () => {
    for (let i = 0; i < RUNS; i++) await leaderKill(false);
  }, 180_000 * RUNS);

  test("idempotent: kill -9 the partition leader mid-stream, then start it again: nothing lost, order per file, no duplicates", async () => {
    for (let i = 0; i < RUNS; i++) {
      const r = await leaderKill(true);
      expect(r.duplicateLines).toBe(0);
    }
  }, 180_000 * RUNS);

  test("all 3 brokers killed, then started again: reading pauses, offsets hold, everything arrives in order", async () => {
    const ws = workspace("alldown");
    await cluster.createTopic(ws.topic, { partitions: 2, replicationFactor: 3, config: { "min.insync.replicas": "2" } });
    const cfg = config(ws);
    const path = join(ws.logs, "d.log");
    writeFileSync(path, "");
    const agent = AgentProcess.start(["run", "--config", cfg]);
    try {
      let n = 0;
      const write = (count: number) => {
        for (let i = 0; i < count; i++, n++) appendFileSync(path, `down ${String(n).padStart(7, "0")} ${"q".repeat(n % 60)}\n`);
      };
      write(2000);
      await caughtUp(cfg, [path]);
      cluster.kill(1);
      cluster.kill(2);
      cluster.kill(3);
      write(3000);
      const failed = await agent.waitForLine(/Kafka send failed/, { timeoutMs: 30_000 });
      expect(failed).toContain(" ERROR ");
      await Bun.sleep(2000);
      const check = await runLogship(["check", "--config", cfg]);
      expect(check.stdout).not.toMatch(new RegExp(`^${path}\\s.*\\s0\\s*$`, "m")); // not everything acknowledged
      const from = agent.lines.length;
      await cluster.start(1, 2, 3);
      await agent.waitForLine("Kafka sends succeed again", { timeoutMs: 90_000, after: from });
      write(1000);
      await caughtUp(cfg, [path]);
      agent.signal("SIGTERM");
      expect(await agent.waitForExit(30_000)).toBe(0);
      const report = checkDelivery(await consumeAll(cluster.internalBootstrap, ws.topic, { timeoutMs: 30_000 }), new Map([[path, readFileSync(path)]]), { host: defaultHost(), duplicates: "count" });
      expect(report.lines).toBe(n);
      console.log(`all down: ${n} lines, ${report.duplicateLines} duplicate lines`);
    } finally {
      await agent.kill();
    }
  }, 240_000);

  test("a missing topic (auto-creation off): an error naming it, then shipping once it is created", async () => {
    const ws = workspace("missing");
    const path = join(ws.logs, "m.log");
    const content = Buffer.from(Array.from({ length: 500 }, (_, i) => `missing-topic line ${i}\n`).join(""));
    writeFileSync(path, content);
    const cfg = config(ws);
    const agent = AgentProcess.start(["run", "--config", cfg]);
    try {
      const line = await agent.waitForLine(/Kafka send failed/, { timeoutMs: 30_000 });
      expect(line).toContain(ws.topic);
      expect(line).toMatch(/UNKNOWN_TOPIC_OR_PARTITION|does not host this topic/);
      expect(await consumeAll(cluster.internalBootstrap, ws.topic)).toEqual([]); // reading does not create it either
      const check = await runLogship(["check", "--config", cfg, "--connect"], { timeoutMs: 40_000 });
      expect(check.stdout).toContain(`FAIL topic ${ws.topic}: does not exist and auto.create.topics.enable=false: create it`);
      expect(check.stdout.match(/^ok   broker \d at /gm)).toHaveLength(3);
      expect(check.code).toBe(1);
      await cluster.createTopic(ws.topic, { partitions: 1 });
      await agent.waitForLine("Kafka sends succeed again", { timeoutMs: 60_000 });
      await caughtUp(cfg, [path]);
      agent.signal("SIGTERM");
      expect(await agent.waitForExit(30_000)).toBe(0);
      const report = checkDelivery(await consumeAll(cluster.internalBootstrap, ws.topic), new Map([[path, content]]), { host: defaultHost() });
      expect(report.bytes).toBe(content.length);
    } finally {
      await agent.kill();
    }
  }, 120_000);

  test("the topic's max.message.bytes below max_message_bytes: records cut at line ends, one too-long line dropped and logged", async () => {
    const ws = workspace("toolarge");
    await cluster.createTopic(ws.topic, { partitions: 1, config: { "max.message.bytes": "65536" } });
    const path = join(ws.logs, "big.log");
    const before = Array.from({ length: 400 }, (_, i) => `before ${i} ${"b".repeat(500)}\n`).join("");
    const huge = `HUGE ${"h".repeat(100_000)}\n`;
    const after = Array.from({ length: 400 }, (_, i) => `after ${i} ${"a".repeat(500)}\n`).join("");
    const content = Buffer.from(before + huge + after);
    writeFileSync(path, content);
    const r = await runLogship(["run", "--config", config(ws), "--once"], { timeoutMs: 60_000 });
    expect(r.code).toBe(3); // --once did not ship everything matched: one record dropped (its summary line says so)
    expect(r.lines.some((l) => l.includes("--once finished, but not everything matched was shipped") && l.includes("records_dropped=1"))).toBe(true);
    const dropped = r.lines.filter((l) => l.includes("record rejected by Kafka and dropped"));
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toContain(`offset=${before.length}`);
    expect(dropped[0]).toContain(`bytes=${huge.length}`);
    expect(dropped[0]).toContain("MESSAGE_TOO_LARGE");
    // Everything but the huge line arrived, in order, byte-exact, each record under the topic's limit.
    const records = await consumeAll(cluster.internalBootstrap, ws.topic);
    let next = 0;
    for (const rec of records.sort((a, b) => Number(a.headers.offset) - Number(b.headers.offset))) {
      const at = Number(rec.headers.offset);
      if (at === before.length + huge.length && next === before.length) next = at; // the dropped line
      expect(at).toBe(next);
      expect(rec.value.equals(content.subarray(at, at + rec.value.length))).toBe(true);
      expect(rec.value.length).toBeLessThan(65536);
      next = at + rec.value.length;
    }
    expect(next).toBe(content.length);
  }, 120_000);
});
