// End to end, each codec with each format: the compiled binary ships many short, similar lines
// (which compress extremely well) with `run --once` to the mock cluster, and kcat (librdkafka,
// liblz4) reads every record back, byte for byte. librdkafka refused LZ4 blocks whose last
// match started fewer than 12 bytes before a full block's end ("Invalid compressed data");
// lenient decoders read them (lib/kafka/patches/lz4.ts).

import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runLogship } from "./helpers/agentProcess.ts";
import { consumeAll } from "./helpers/consume.ts";
import { checkDelivery, defaultHost, fileContents } from "./helpers/delivery.ts";
import { useCluster } from "./helpers/useCluster.ts";
import { writeConfig } from "./helpers/workspace.ts";

const e2e = useCluster(1, { build: true });

/** `n` lines of 36–40 bytes that differ in a few digits: "2026-11-30T12:00:SSZ INFO req=N ok\n". */
function shortLines(tag: string, n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => `2026-11-30T12:00:${String(i % 60).padStart(2, "0")}Z INFO ${tag} req=${i} ok\n`).join(""));
}

describe("every codec and format through the mock cluster, read back by kcat", () => {
  for (const [format, codec] of [["line", "lz4"], ["packed", "lz4"], ["line", "snappy"], ["line", "zstd"], ["line", "gzip"]] as const) {
    test(`${codec}, format ${format}: 60,000 short similar lines arrive, every record decoded, byte for byte`, async () => {
      const ws = e2e.topicWorkspace(`codec-${codec}-${format}`, 2);
      const paths = ["a", "b"].map((t) => join(ws.logs, `${t}.log`));
      paths.forEach((p, i) => writeFileSync(p, shortLines(`f${i}`, 30_000)));
      const cfg = writeConfig(ws.dir, `inputs:
  - paths: ["${ws.logs}/*.log"]
    format: ${format}
kafka:
  brokers: ["${e2e.cluster.bootstraps}"]
  topic: ${ws.topic}
  compression: ${codec}
state:
  path: ${ws.dir}/state.db
stats_interval: 0
`);
      const r = await runLogship(["run", "--config", cfg, "--once"], { timeoutMs: 60_000 });
      expect({ code: r.code, errors: r.lines.filter((l) => / (ERROR|WARN) /.test(l)) }).toEqual({ code: 0, errors: [] });
      // consumeAll fails on any error kcat reports (a batch it cannot decompress).
      const records = await consumeAll(e2e.cluster.bootstraps, ws.topic, { timeoutMs: 30_000 });
      const files = fileContents(paths);
      const report = checkDelivery(records, files, { host: defaultHost(), duplicates: "forbid" });
      expect(report.lines).toBe(60_000);
      expect(report.bytes).toBe([...files.values()].reduce((n, b) => n + b.length, 0));
      if (format === "line") expect(records).toHaveLength(60_000);
    }, 90_000);
  }
});
