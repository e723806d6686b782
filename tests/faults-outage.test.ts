// Faults: Kafka unreachable. The compiled binary runs against the in-process mock cluster
// while the test takes every broker down and brings it back: reading pauses at the in-flight
// cap, memory stays flat, offsets stay where Kafka's last acknowledgement left them, the
// outage is logged once, and everything arrives in order afterwards. SIGTERM during an
// outage exits within shutdown_timeout and the next run delivers the rest. The backoff
// schedule and the reminder lines are checked in-process, where each retry is observable.

import { describe, expect, test } from "bun:test";
import { closeSync, openSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { Agent } from "../lib/agent.ts";
import { parseConfig } from "../lib/config.ts";
import { LogEvents } from "../lib/events.ts";
import { consumeAll } from "./helpers/consume.ts";
import { eventually } from "./helpers/eventually.ts";
import { AgentProcess } from "./helpers/agentProcess.ts";
import { appendLines, fields, mkdir, savedOffsets, seqLines, shortfall, useCluster, verifyDelivery, writeConfig } from "./helpers/faults.ts";

const MiB = 1024 * 1024;
const RSS_BOUND = 120 * MiB;

const mock = useCluster(); // one broker: "all brokers down" is brokerDown(1)


/** Writes `bytes` of 100-byte lines tagged `tag` to `path` quickly (for volume, not read back). */
function fillBulk(path: string, tag: string, bytes: number): number {
  const fd = openSync(path, "a");
  let seq = 0;
  let written = 0;
  try {
    while (written < bytes) {
      const count = Math.min(10_000, Math.ceil((bytes - written) / 100));
      const buf = Buffer.from(seqLines(tag, seq, count, 80));
      seq += count;
      writeSync(fd, buf);
      written += buf.length;
    }
  } finally {
    closeSync(fd);
  }
  return seq;
}

function sizes(paths: string[]): Map<string, number> {
  return new Map(paths.map((p) => [p, statSync(p).size]));
}

function statsLines(run: AgentProcess): Record<string, string>[] {
  return run.matching(/ INFO stats /).map(fields);
}

describe("all brokers down while the logs grow", () => {
  test(
    "reading pauses at max_inflight_bytes, memory stays flat, offsets stay, and everything arrives after recovery",
    async () => {
      const dir = mock.scratch("outage");
      const bulkDir = mkdir(join(dir, "bulk"));
      const exactDir = mkdir(join(dir, "exact"));
      mock.cluster.createTopic("outage-bulk", 16);
      mock.cluster.createTopic("outage-exact", 4);
      const cap = 16 * MiB;
      const config = writeConfig(join(dir, "logship.yaml"), {
        inputs: [
          { paths: [join(bulkDir, "*.log")], topic: "outage-bulk" },
          { paths: [join(exactDir, "*.log")], topic: "outage-exact" },
        ],
        brokers: mock.cluster.bootstraps,
        state: join(dir, "state.db"),
        top: { max_inflight_bytes: cap },
      });
      const exactTags = ["e0", "e1", "e2", "e3"];
      const bulk = Array.from({ length: 8 }, (_, i) => join(bulkDir, `b${i}.log`));
      const exact = exactTags.map((t) => join(exactDir, `${t}.log`));
      const written: Record<string, number> = {};
      for (const [i, t] of exactTags.entries()) written[t] = appendLines(exact[i]!, t, 0, 1000);
      for (const p of bulk) fillBulk(p, "warmup", 1);

      const run = AgentProcess.run(config);
      try {
        const before = sizes([...bulk, ...exact]);
        await eventually(() => [...before].every(([p, size]) => savedOffsets(join(dir, "state.db")).get(p) === size), { timeoutMs: 15_000, message: "first lines acknowledged" });

        mock.cluster.brokerDown(1);
        const downAt = run.lines.length;
        for (const [i, t] of exactTags.entries()) written[t] = appendLines(exact[i]!, t, written[t]!, 8000);
        let bulkBytes = 0;
        for (const [i, p] of bulk.entries()) {
          fillBulk(p, `b${i}`, 25 * MiB);
          bulkBytes += 25 * MiB;
        }
        await run.waitForLine(/ERROR Kafka send failed; reading paused/, { after: downAt, timeoutMs: 20_000 });

        // Reading fills the cap, then stops: the in-flight figure stops moving.
        const paused = await eventually(
          () => {
            const s = statsLines(run).slice(-3).map((f) => Number(f.inflight_bytes));
            return s.length === 3 && s[0]! >= cap && s.every((v) => v === s[0]) ? s[0]! : 0;
          },
          { timeoutMs: 20_000, message: "in-flight bytes reach the cap and stay" },
        );
        expect(paused).toBeLessThanOrEqual(cap + MiB + 1); // the cap, overshot by at most one read
        const unread = [...sizes([...bulk, ...exact]).values()].reduce((a, b) => a + b, 0) - [...before.values()].reduce((a, b) => a + b, 0);
        expect(unread).toBeGreaterThan(200 * MiB); // the log files hold the backlog, not the agent

        // Offsets do not move while nothing is acknowledged.
        expect(savedOffsets(join(dir, "state.db"))).toEqual(before);
        const statsSeen = statsLines(run).length;
        await eventually(() => statsLines(run).length >= statsSeen + 4, { timeoutMs: 10_000 }); // ≥ 2 s more of outage
        expect(savedOffsets(join(dir, "state.db"))).toEqual(before);
        const peakWhileDown = run.peakRssKiB * 1024;
        console.log(`[faults] outage: ${(unread / MiB).toFixed(0)} MiB waiting, in-flight ${paused} bytes, peak RSS while down ${(peakWhileDown / MiB).toFixed(1)} MiB`);
        expect(peakWhileDown).toBeLessThan(RSS_BOUND);

        mock.cluster.brokerUp(1);
        const total = sizes([...bulk, ...exact]);
        await eventually(() => [...total].every(([p, size]) => savedOffsets(join(dir, "state.db")).get(p) === size), { timeoutMs: 60_000, message: "backlog acknowledged after recovery" });
        console.log(`[faults] outage: peak RSS including the catch-up of ${(bulkBytes / MiB).toFixed(0)} MiB: ${(run.peakRssKiB * 1024 / MiB).toFixed(1)} MiB`);

        // One line for the outage, one for the recovery: not a line per retry.
        expect(run.count(/ERROR Kafka send failed/, downAt)).toBe(1);
        expect(run.count(/Kafka sends succeed again/, downAt)).toBe(1);
        expect(run.count(/ERROR/, downAt)).toBe(1);

        run.signal("SIGTERM");
        expect(await run.waitForExit()).toBe(0);
        expect(run.lines.at(-1)).toMatch(/INFO logship stopped /);

        const check = AgentProcess.start(["check", "--config", config]);
        expect(await check.waitForExit()).toBe(0);
        const unreadColumn = check.stdout.split("\n").filter((l) => l.startsWith(dir)).map((l) => l.split(/\s+/)[4]);
        expect(unreadColumn).toEqual(Array(12).fill("0"));

        const d = verifyDelivery(await consumeAll(mock.cluster.bootstraps, "outage-exact", { timeoutMs: 20_000 }));
        expect(d.errors).toEqual([]);
        expect(shortfall(d, written)).toEqual([]);
        console.log(`[faults] outage: duplicates after recovery: ${d.duplicates} lines`);
      } finally {
        await run.kill();
        mock.cluster.brokerUp(1);
      }
    },
    120_000,
  );
});

describe("SIGTERM while Kafka is down", () => {
  test(
    "exits 0 within shutdown_timeout, saves only acknowledged offsets, and the next run delivers the rest",
    async () => {
      const dir = mock.scratch("sigterm");
      const logs = mkdir(join(dir, "logs"));
      mock.cluster.createTopic("sigterm", 2);
      const config = writeConfig(join(dir, "logship.yaml"), {
        inputs: [{ paths: [join(logs, "*.log")] }],
        brokers: mock.cluster.bootstraps,
        topic: "sigterm",
        state: join(dir, "state.db"),
        top: { shutdown_timeout: "1s" },
      });
      const tags = ["s0", "s1"];
      const paths = tags.map((t) => join(logs, `${t}.log`));
      const written: Record<string, number> = {};
      for (const [i, t] of tags.entries()) written[t] = appendLines(paths[i]!, t, 0, 2000);

      const run = AgentProcess.run(config);
      try {
        const acked = sizes(paths);
        await eventually(() => paths.every((p) => savedOffsets(join(dir, "state.db")).get(p) === acked.get(p)), { timeoutMs: 15_000 });
        mock.cluster.brokerDown(1);
        const downAt = run.lines.length;
        for (const [i, t] of tags.entries()) written[t] = appendLines(paths[i]!, t, written[t]!, 3000);
        await run.waitForLine(/ERROR Kafka send failed/, { after: downAt, timeoutMs: 20_000 });

        const t0 = Date.now();
        run.signal("SIGTERM");
        expect(await run.waitForExit(10_000)).toBe(0);
        const tookMs = Date.now() - t0;
        console.log(`[faults] SIGTERM while down: exited in ${tookMs} ms (shutdown_timeout 1000 ms)`);
        expect(tookMs).toBeLessThan(1000 + 2000); // the timeout plus process exit, far below request_timeout
        const stopped = run.lines.find((l) => / logship stopped/.test(l));
        expect(stopped).toMatch(/WARN logship stopped; unacknowledged data will be sent again/);
        expect(Number(fields(stopped!).unacknowledged_bytes)).toBeGreaterThan(0);
        // Saved offsets cover exactly what Kafka acknowledged before the outage.
        expect(savedOffsets(join(dir, "state.db"))).toEqual(acked);
      } finally {
        await run.kill();
        mock.cluster.brokerUp(1);
      }

      const again = AgentProcess.run(config, "--once");
      expect(await again.waitForExit(30_000)).toBe(0);
      expect(savedOffsets(join(dir, "state.db"))).toEqual(sizes(paths));
      const d = verifyDelivery(await consumeAll(mock.cluster.bootstraps, "sigterm"));
      expect(d.errors).toEqual([]);
      expect(shortfall(d, written)).toEqual([]);
      expect(d.duplicates).toBe(0); // nothing unacknowledged had reached Kafka
    },
    60_000,
  );
});

describe("backoff and outage logging (in process, every retry observable)", () => {
  test(
    "retries back off exponentially up to retry_backoff_max; the outage is logged once plus periodic reminders",
    async () => {
      const dir = mock.scratch("backoff");
      const logs = mkdir(join(dir, "logs"));
      const path = join(logs, "a.log");
      const written = { a: appendLines(path, "a", 0, 100) };
      const file = join(dir, "logship.yaml");
      writeConfig(file, {
        inputs: [{ paths: [join(logs, "*.log")] }],
        brokers: mock.cluster.bootstraps,
        topic: "backoff",
        state: join(dir, "state.db"),
        kafka: { retry_backoff: "10ms", retry_backoff_max: "160ms", request_timeout: "1s" },
        top: { stats_interval: 0 },
      });
      const config = parseConfig(await Bun.file(file).text(), file);

      const failures: { at: number; attempt: number; retryInMs: number; code: string }[] = [];
      const log: string[] = [];
      class Recorder extends LogEvents {
        override sendFailed(reason: string, code: string, retriable: boolean, attempt: number, retryInMs: number): void {
          failures.push({ at: Date.now(), attempt, retryInMs, code });
          super.sendFailed(reason, code, retriable, attempt, retryInMs);
        }
      }
      const events = new Recorder((line) => log.push(line), 1_000);

      mock.cluster.brokerDown(1);
      let agent: Agent | undefined;
      try {
        agent = await Agent.start(config, { once: false }, { events });
        await eventually(() => failures.length >= 12, { timeoutMs: 40_000, intervalMs: 100, message: "12 failed sends" });
        const outageMs = Date.now() - failures[0]!.at;

        failures.forEach((f, i) => {
          expect(f.attempt).toBe(i + 1);
          const base = Math.min(160, 10 * 2 ** i);
          expect(f.retryInMs).toBeGreaterThanOrEqual(Math.floor(base / 2));
          expect(f.retryInMs).toBeLessThanOrEqual(base);
          if (i > 0) expect(f.at - failures[i - 1]!.at).toBeGreaterThanOrEqual(failures[i - 1]!.retryInMs - 2);
        });
        expect(failures.slice(5).every((f) => f.retryInMs >= 80)).toBe(true); // at the cap from the 5th retry on

        expect(log.filter((l) => / ERROR Kafka send failed/.test(l))).toHaveLength(1);
        const reminders = log.filter((l) => / ERROR Kafka still failing/.test(l));
        expect(reminders.length).toBeGreaterThanOrEqual(1);
        expect(reminders.length).toBeLessThanOrEqual(Math.floor(outageMs / 1_000) + 1);
        expect(reminders.length).toBeLessThan(failures.length);
        expect(fields(reminders[0]!).attempts).toBeDefined();
        expect(agent.status().map((s) => s.offset)).toEqual([0]);

        mock.cluster.brokerUp(1);
        await eventually(() => agent!.status()[0]?.offset === statSync(path).size, { timeoutMs: 15_000 });
        expect(log.filter((l) => / Kafka sends succeed again/.test(l))).toHaveLength(1);
      } finally {
        mock.cluster.brokerUp(1);
        await agent?.stop(2_000);
      }
      const d = verifyDelivery(await consumeAll(mock.cluster.bootstraps, "backoff"));
      expect(d.errors).toEqual([]);
      expect(shortfall(d, written)).toEqual([]);
    },
    60_000,
  );
});
