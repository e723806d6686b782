// Faults: Kafka down while files are rotated or deleted. Reading is paused at the in-flight
// cap during the outage, so a rotated file still has unread bytes when it is renamed or
// removed. After recovery the renamed file is finished from its offset and its successor
// shipped from byte 0; a deleted file is drained through the descriptor still held, or, when
// close_removed gives up on it, the loss is logged as an error naming the file and the range.
// Single-partition topics, so Kafka's order is the order to check.

import { describe, expect, test } from "bun:test";
import { renameSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { consumeAll } from "./helpers/consume.ts";
import { eventually } from "./helpers/eventually.ts";
import { AgentProcess } from "./helpers/agentProcess.ts";
import { appendLines, fields, mkdir, savedOffsetOf, seqLine, shortfall, useCluster, verifyDelivery, writeConfig } from "./helpers/faults.ts";

const mock = useCluster();

/** app.log under a `*.log` glob, small records and a 64 KiB cap so an outage leaves most of a 1 MiB backlog unread. */
function setup(name: string, extra: Record<string, string | number> = {}) {
  const dir = mock.scratch(name);
  const logs = mkdir(join(dir, "logs"));
  const state = join(dir, "state.db");
  mock.cluster.createTopic(name, 1);
  const config = writeConfig(join(dir, "logship.yaml"), {
    inputs: [{ paths: [join(logs, "*.log")], extra }],
    brokers: mock.cluster.bootstraps,
    topic: name,
    state,
    kafka: { max_message_bytes: "16KiB", target_message_bytes: "4KiB" },
    top: { max_inflight_bytes: "64KiB" },
  });
  return { dir, logs, state, config, topic: name, app: join(logs, "app.log") };
}

/** Starts the agent, ships a first part of app.log, takes Kafka down and grows app.log by ~3 MiB. */
async function outageWithBacklog(s: ReturnType<typeof setup>, written: Record<string, number>): Promise<AgentProcess> {
  written.old = appendLines(s.app, "old", 0, 200);
  const run = AgentProcess.run(s.config);
  await eventually(() => savedOffsetOf(s.state, s.app) === statSync(s.app).size, { timeoutMs: 15_000, message: "first part acknowledged" });
  mock.cluster.brokerDown(1);
  const from = run.lines.length;
  written.old = appendLines(s.app, "old", written.old, 60_000); // ~3 MiB: more than the cap plus one read
  await run.waitForLine(/ERROR Kafka send failed/, { after: from, timeoutMs: 20_000 });
  return run;
}

describe("Kafka down while a file is rotated", () => {
  for (const [how, rotated] of [
    ["out of the globs (app.log → app.log.1)", "app.log.1"],
    ["within the globs (app.log → app-1.log)", "app-1.log"],
  ] as const) {
    test(
      `renamed ${how}: after recovery the old file is finished from its offset and the new one shipped from 0`,
      async () => {
        const s = setup(`rotate${rotated.replace(/\W/g, "")}`);
        const written: Record<string, number> = {};
        const run = await outageWithBacklog(s, written);
        const rotatedPath = join(s.logs, rotated);
        try {
          const acked = savedOffsetOf(s.state, s.app)!;
          expect(acked).toBeLessThan(statSync(s.app).size);
          const from = run.lines.length;
          renameSync(s.app, rotatedPath);
          written.new = appendLines(s.app, "new", 0, 5_000);
          const added = fields(await run.waitForLine(/ file added .*app\.log /, { after: from }));
          expect(added).toMatchObject({ path: s.app, offset: "0", reason: "new" });
          if (rotated === "app-1.log") await run.waitForLine(/ file renamed /, { after: from });
          expect(savedOffsetOf(s.state, rotatedPath)).toBe(acked); // nothing moved while down

          mock.cluster.brokerUp(1);
          await eventually(() => savedOffsetOf(s.state, rotatedPath) === statSync(rotatedPath).size && savedOffsetOf(s.state, s.app) === statSync(s.app).size, {
            timeoutMs: 30_000,
            message: "both files acknowledged to their ends",
          });
          run.signal("SIGTERM");
          expect(await run.waitForExit()).toBe(0);
        } finally {
          await run.kill();
          mock.cluster.brokerUp(1);
        }
        const d = verifyDelivery(await consumeAll(mock.cluster.bootstraps, s.topic));
        expect(d.errors).toEqual([]);
        expect(shortfall(d, written)).toEqual([]);
        expect(d.duplicates).toBe(0);
        expect(run.count(/ERROR/)).toBe(1); // the outage, once
      },
      60_000,
    );
  }
});

describe("Kafka down while a rotated file is deleted", () => {
  test(
    "a deleted file still held open is drained through its descriptor after recovery",
    async () => {
      const s = setup("deleteheld");
      const written: Record<string, number> = {};
      const run = await outageWithBacklog(s, written);
      try {
        const from = run.lines.length;
        const rotated = join(s.logs, "app.log.1");
        renameSync(s.app, rotated);
        unlinkSync(rotated);
        const removed = fields(await run.waitForLine(/ file removed /, { after: from }));
        expect(Number(removed.unread_bytes)).toBeGreaterThan(1024 * 1024);

        mock.cluster.brokerUp(1);
        const finished = fields(await run.waitForLine(/ file finished /, { after: from, timeoutMs: 30_000 }));
        expect(Number(finished.offset)).toBe(written.old! * seqLine("old", 0).length);
        run.signal("SIGTERM");
        expect(await run.waitForExit()).toBe(0);
        expect(run.count(/data lost/)).toBe(0);
      } finally {
        await run.kill();
        mock.cluster.brokerUp(1);
      }
      const d = verifyDelivery(await consumeAll(mock.cluster.bootstraps, "deleteheld"));
      expect(d.errors).toEqual([]);
      expect(shortfall(d, written)).toEqual([]);
    },
    60_000,
  );

  test(
    "a deleted file given up by close_removed: the loss is logged as an error naming the file and the byte range",
    async () => {
      const s = setup("deletelost", { close_removed: "1s" });
      const written: Record<string, number> = {};
      const run = await outageWithBacklog(s, written);
      let lost: Record<string, string>;
      try {
        const from = run.lines.length;
        unlinkSync(s.app);
        lost = fields(await run.waitForLine(/ERROR data lost /, { after: from, timeoutMs: 10_000 }));
        expect(lost.path).toBe(s.app);
        expect(lost.reason).toMatch(/close_removed/);
        expect(Number(lost.to)).toBe(written.old! * seqLine("old", 0).length);
        expect(Number(lost.bytes)).toBe(Number(lost.to) - Number(lost.from));

        mock.cluster.brokerUp(1);
        await run.waitForLine(/ Kafka sends succeed again/, { after: from, timeoutMs: 20_000 });
        await eventually(() => run.lines.some((l) => / INFO stats .*inflight_bytes=0/.test(l) && run.lines.indexOf(l) > from), { timeoutMs: 20_000, message: "queue drained" });
        run.signal("SIGTERM");
        expect(await run.waitForExit()).toBe(0);
      } finally {
        await run.kill();
        mock.cluster.brokerUp(1);
      }
      // Everything before the lost range arrived, in order; nothing of the range did.
      const lineBytes = seqLine("old", 0).length;
      expect(Number(lost.from) % lineBytes).toBe(0);
      const d = verifyDelivery(await consumeAll(mock.cluster.bootstraps, "deletelost"));
      expect(d.errors).toEqual([]);
      expect(shortfall(d, { old: Number(lost.from) / lineBytes })).toEqual([]);
      console.log(`[faults] close_removed gave up: ${lost.bytes} bytes logged as lost (from ${lost.from} to ${lost.to})`);
    },
    60_000,
  );
});
