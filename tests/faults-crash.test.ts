// Faults: the agent killed with SIGKILL at random moments, twenty times, while its files
// keep growing. Offsets are saved only after Kafka's acknowledgement, so after a last run
// every line must be in Kafka, in order per file; what was in flight at a kill may arrive
// twice, and no more than that.

import { beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { consumeAll } from "./helpers/consume.ts";
import { AgentProcess } from "./helpers/agentProcess.ts";
import { appendLines, fields, mkdir, savedOffsets, seqLine, shortfall, useCluster, verifyDelivery, writeConfig } from "./helpers/faults.ts";
import { mulberry32 } from "./helpers/prng.ts";

const mock = useCluster();
let dir: string;

beforeAll(() => {
  dir = mock.scratch("crash");
});


test(
  "kill -9 at 20 random moments while files grow: nothing missing, order holds, duplicates bounded by what was in flight",
  async () => {
    const logs = mkdir(join(dir, "logs"));
    mock.cluster.createTopic("crash", 4);
    const cap = 64 * 1024;
    const config = writeConfig(join(dir, "logship.yaml"), {
      inputs: [{ paths: [join(logs, "*.log")] }],
      brokers: mock.cluster.bootstraps,
      topic: "crash",
      state: join(dir, "state.db"),
      kafka: { max_message_bytes: "64KiB", target_message_bytes: "16KiB" },
      top: { max_inflight_bytes: cap },
    });
    const tags = ["k0", "k1", "k2", "k3"];
    const written: Record<string, number> = Object.fromEntries(tags.map((t) => [t, 0]));
    const grow = (n: number) => {
      for (const t of tags) written[t] = appendLines(join(logs, `${t}.log`), t, written[t]!, n);
    };
    grow(500);
    const writer = setInterval(() => grow(5), 10);

    const seed = Number(process.env.FAULTS_SEED ?? Date.now() % 100_000);
    const rand = mulberry32(seed);
    const kills: number[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const saved = savedOffsets(join(dir, "state.db"));
        const run = AgentProcess.run(config);
        const delay = Math.round(50 + rand() * 1200);
        kills.push(delay);
        await Bun.sleep(delay); // the random moment is the point of this test
        await run.kill();
        expect(run.count(/ERROR/)).toBe(0);
        // A file with a saved offset is resumed from exactly there, never read again from 0.
        for (const added of run.matching(/ file added /).map(fields)) {
          if (saved.has(added.path!)) expect(added).toMatchObject({ reason: "resumed", offset: String(saved.get(added.path!)) });
        }
      }
    } finally {
      clearInterval(writer);
    }
    grow(100); // a last partial burst, so the final run has fresh lines too

    const last = AgentProcess.run(config, "--once");
    expect(await last.waitForExit(30_000)).toBe(0);

    const records = await consumeAll(mock.cluster.bootstraps, "crash", { timeoutMs: 20_000 });
    const d = verifyDelivery(records);
    expect(d.errors).toEqual([]);
    expect(shortfall(d, written)).toEqual([]);
    const lineBytes = seqLine("k0", 0).length;
    const totalLines = Object.values(written).reduce((a, b) => a + b, 0);
    // Per kill, what reached Kafka without its offset saved: the in-flight cap (a read may
    // overshoot it, and acknowledgements wait up to flush_interval to be saved, but at these
    // rates both are far smaller than the cap).
    const bound = Math.ceil((20 * cap) / lineBytes);
    console.log(`[faults] kill -9 ×20 (seed ${seed}, delays ${kills.join(",")} ms): ${totalLines} lines, ${d.duplicates} duplicate lines (${((100 * d.duplicates) / totalLines).toFixed(2)}%), bound ${bound}`);
    expect(d.duplicates).toBeLessThanOrEqual(bound);
  },
  120_000,
);
