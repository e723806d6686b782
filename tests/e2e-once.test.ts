// End to end, `logship run --once`: the compiled binary ships files to the mock cluster and
// the topic is read back with kcat. Each test has its own directory and topic (8 partitions,
// so the mock's ~5 MB per-partition retention is never reached); the cluster is shared.

import { describe, expect, test } from "bun:test";
import { appendFileSync, copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { ensureBuilt, runLogship, type RunResult } from "./helpers/agentProcess.ts";
import { consumeAll } from "./helpers/consume.ts";
import { checkDelivery, defaultHost, fileContents } from "./helpers/delivery.ts";
import { fixedLines } from "./helpers/lines.ts";
import { useCluster } from "./helpers/useCluster.ts";
import { writeConfig, type TopicWorkspace } from "./helpers/workspace.ts";

const e2e = useCluster(1, { build: true });

function config(ws: TopicWorkspace, kafka = ""): string {
  return writeConfig(
    ws.dir,
    `inputs:
  - paths: ["${ws.logs}/*.log"]
kafka:
  brokers: ["${e2e.cluster.bootstraps}"]
  topic: ${ws.topic}
${kafka}state:
  path: ${ws.dir}/state.db
stats_interval: 0
`,
  );
}

/** Line `n` of file `tag`: 40 bytes; every 997th is CRLF-terminated, every 1009th carries non-UTF-8 bytes and a NUL. */
function line(tag: string, n: number): Buffer {
  const head = `${tag} ${String(n).padStart(6, "0")} `;
  if (n % 1009 === 0) return Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xfe, 0x00, 0xc3]), Buffer.from("x".repeat(39 - head.length - 4) + "\n")]);
  if (n % 997 === 0) return Buffer.from(`${head}${"c".repeat(38 - head.length)}\r\n`);
  return fixedLines(tag, n, n + 1);
}

function lines(tag: string, from: number, to: number): Buffer {
  const parts: Buffer[] = [];
  for (let n = from; n < to; n++) parts.push(line(tag, n));
  return Buffer.concat(parts);
}

async function once(configPath: string, opts: { cwd?: string; binary?: string } = {}): Promise<RunResult> {
  const r = await runLogship(["run", "--config", configPath, "--once"], { timeoutMs: 60_000, ...opts });
  if (r.code !== 0) throw new Error(`run --once exited ${r.code}:\n${r.stderr}`);
  return r;
}

/** `logship check` rows: path → { offset, unread } (null for "-"). */
async function checkRows(configPath: string): Promise<Map<string, { offset: number | null; unread: number | null; note: string }>> {
  const r = await runLogship(["check", "--config", configPath]);
  expect(r.code).toBe(0);
  const rows = new Map<string, { offset: number | null; unread: number | null; note: string }>();
  for (const l of r.stdout.split("\n")) {
    const m = /^(\/\S+)\s+\S+\s+\d+\s+(\d+|-)\s+(\d+|-)\s*(.*)$/.exec(l);
    if (m) rows.set(m[1]!, { offset: m[2] === "-" ? null : Number(m[2]), unread: m[3] === "-" ? null : Number(m[3]), note: m[4]! });
  }
  return rows;
}

const host = defaultHost();

describe("logship run --once (compiled binary, mock cluster)", () => {
  test("8 files x 10k lines arrive exactly once, in order per file, with host/path/offset/file headers", async () => {
    const ws = e2e.topicWorkspace("once8");
    const paths = Array.from({ length: 8 }, (_, i) => join(ws.logs, `app-${i}.log`));
    paths.forEach((p, i) => writeFileSync(p, lines(`f${i}`, 1, 10_001)));
    const r = await once(config(ws));

    const records = await consumeAll(e2e.cluster.bootstraps, ws.topic, { timeoutMs: 30_000 });
    const report = checkDelivery(records, fileContents(paths), { host, duplicates: "forbid" });
    expect(report.lines).toBe(80_000);
    expect(report.bytes).toBe(80_000 * 40);
    expect(report.files.size).toBe(8);
    expect(new Set([...report.files.values()].map((f) => f.fileId)).size).toBe(8); // one identity per file
    expect(r.lines.filter((l) => l.includes("file added") && l.includes("reason=new"))).toHaveLength(8);
    expect(r.stderr).toMatch(/INFO logship stopped lines=80000 bytes=3200000 /);
    // stderr is the agent's log and nothing else (no runtime warnings, e.g. kafkajs' negative timer)
    for (const l of r.lines) expect(l).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z (INFO|WARN|ERROR) \S/);
    console.log(`[e2e] 8x10k --once: ${records.length} records, ${r.ms} ms, peak RSS ${Math.round(r.peakRssKiB / 1024)} MiB`);
  }, 60_000);

  test("compression gzip: librdkafka (kcat) inflates every record batch back to the exact lines", async () => {
    const ws = e2e.topicWorkspace("gzip");
    const paths = Array.from({ length: 3 }, (_, i) => join(ws.logs, `gz-${i}.log`));
    paths.forEach((p, i) => writeFileSync(p, lines(`g${i}`, 1, 20_001)));
    const r = await once(config(ws, "  compression: gzip\n"));
    expect(r.stderr).toMatch(/INFO logship stopped lines=60000 bytes=2400000 /);
    const records = await consumeAll(e2e.cluster.bootstraps, ws.topic, { timeoutMs: 30_000 });
    const report = checkDelivery(records, fileContents(paths), { host, duplicates: "forbid" });
    expect(report.lines).toBe(60_000);
  }, 60_000);

  test("appending and running --once again ships only the new lines", async () => {
    const ws = e2e.topicWorkspace("append");
    const paths = [0, 1, 2].map((i) => join(ws.logs, `svc-${i}.log`));
    paths.forEach((p, i) => writeFileSync(p, lines(`a${i}`, 1, 2_001)));
    const cfg = config(ws);
    await once(cfg);
    appendFileSync(paths[0]!, lines("a0", 2_001, 2_501));
    appendFileSync(paths[2]!, lines("a2", 2_001, 2_301));
    const second = await once(cfg);

    expect(second.stderr).toMatch(/INFO logship stopped lines=800 bytes=32000 /);
    for (const p of paths) expect(second.stderr).toContain(`path=${p} `);
    expect(second.lines.filter((l) => l.includes("reason=resumed") && l.includes("offset=80000"))).toHaveLength(3);
    const records = await consumeAll(e2e.cluster.bootstraps, ws.topic);
    const report = checkDelivery(records, fileContents(paths), { host, duplicates: "forbid" });
    expect(report.lines).toBe(3 * 2_000 + 800);
    const rows = await checkRows(cfg);
    for (const p of paths) expect(rows.get(p)).toEqual({ offset: readFileSync(p).length, unread: 0, note: "" });
  }, 60_000);

  test("a partial last line is held back by --once and shipped once, whole, after its newline arrives", async () => {
    const ws = e2e.topicWorkspace("partial");
    const path = join(ws.logs, "partial.log");
    // The unfinished line ends inside a two-byte UTF-8 character (é = C3 A9).
    writeFileSync(path, Buffer.concat([Buffer.from("alpha\r\nbeta\ngam"), Buffer.from([0xc3])]));
    const cfg = config(ws);
    await once(cfg);

    let records = await consumeAll(e2e.cluster.bootstraps, ws.topic);
    checkDelivery(records, fileContents([path]), { host, duplicates: "forbid" });
    expect(Buffer.concat(records.map((r) => r.value)).toString("latin1")).toBe("alpha\r\nbeta\n");
    expect((await checkRows(cfg)).get(path)).toEqual({ offset: 12, unread: 4, note: "" });

    appendFileSync(path, Buffer.from([0xa9, 0x0a]));
    await once(cfg);
    records = await consumeAll(e2e.cluster.bootstraps, ws.topic);
    checkDelivery(records, fileContents([path]), { host, duplicates: "forbid" });
    const last = records.find((r) => r.headers.offset === "12");
    expect(last?.value).toEqual(Buffer.from("gamé\n"));
    expect((await checkRows(cfg)).get(path)).toEqual({ offset: 18, unread: 0, note: "" });
  }, 60_000);

  test("the binary copied alone into an empty directory runs: --version and a --once run", async () => {
    const ws = e2e.topicWorkspace("alone");
    const bin = join(ws.dir, "bin");
    mkdirSync(bin);
    const binary = join(bin, "logship");
    copyFileSync(ensureBuilt(), binary);
    Bun.spawnSync(["chmod", "+x", binary]);
    expect(readdirSync(bin)).toEqual(["logship"]);

    const version = await runLogship(["--version"], { binary, cwd: bin });
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(`logship ${pkg.version}`);

    // Relative paths in the config resolve against the config's directory, not the cwd.
    const path = join(ws.logs, "alone.log");
    writeFileSync(path, lines("z", 1, 501));
    const cfg = writeConfig(ws.dir, `inputs: [{ paths: ["logs/*.log"] }]\nkafka: { brokers: ["${e2e.cluster.bootstraps}"], topic: ${ws.topic} }\nstate: { path: state/offsets.db }\n`);
    await once(cfg, { binary, cwd: "/" });
    const report = checkDelivery(await consumeAll(e2e.cluster.bootstraps, ws.topic), fileContents([path]), { host, duplicates: "forbid" });
    expect(report.lines).toBe(500);
    expect(readdirSync(join(ws.dir, "state"))).toContain("offsets.db");
    expect(readdirSync(bin)).toEqual(["logship"]);
  }, 60_000);
});
