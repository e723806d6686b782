// End to end, file names that are not valid UTF-8 (issue 11, item 4): the compiled binary and
// the mock cluster, the topic read back with kcat byte for byte. A file named "a\xff.log" is
// listed by `check` (the byte shown as \xff), shipped by `run --once` with its exact name bytes
// in the `path` header and the key (every record in the partition those bytes hash to), resumed
// by the next run at its saved offset (nothing twice), and `format: json` writes valid JSON.

import { describe, expect, test } from "bun:test";
import { appendFileSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { Partitioners } from "kafkajs";
import { runLogship, type RunResult } from "./helpers/agentProcess.ts";
import { consumeAll } from "./helpers/consume.ts";
import { fields } from "./helpers/faults.ts";
import { useCluster } from "./helpers/useCluster.ts";
import { writeConfig, type TopicWorkspace } from "./helpers/workspace.ts";

const e2e = useCluster(1, { build: true });

/** "a\xff.log" in `dir`, as bytes (0xff is never part of UTF-8). */
function badName(dir: string): Buffer {
  return Buffer.concat([Buffer.from(`${dir}/a`), Buffer.of(0xff), Buffer.from(".log")]);
}

function lines(tag: string, from: number, to: number): string {
  let s = "";
  for (let n = from; n < to; n++) s += `${tag} ${String(n).padStart(6, "0")} ${"x".repeat(30)}\n`;
  return s;
}

function config(ws: TopicWorkspace, input = ""): string {
  return writeConfig(
    ws.dir,
    `inputs:
  - paths: ["${ws.logs}/*.log"]
${input}kafka:
  brokers: ["${e2e.cluster.bootstraps}"]
  topic: ${ws.topic}
  target_message_bytes: 1KiB
state:
  path: ${ws.dir}/state.db
stats_interval: 0
`,
  );
}

async function once(cfg: string): Promise<RunResult> {
  const r = await runLogship(["run", "--config", cfg, "--once"], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`run --once exited ${r.code}:\n${r.stderr}`);
  return r;
}

/** check's row of the file (the name escaped: `a\xff.log` has no white space): [path, topic, size, offset, unread, note...]. */
async function checkRow(cfg: string, shown: string): Promise<string[]> {
  const r = await runLogship(["check", "--config", cfg]);
  expect(r.code).toBe(0);
  expect(r.stderr).toBe("");
  const row = r.stdout.split("\n").find((l) => l.startsWith(shown + " "));
  if (!row) throw new Error(`check lists no ${shown}:\n${r.stdout}`);
  return row.split(/\s+/);
}

describe("a file whose name is not valid UTF-8 (compiled binary, mock cluster)", () => {
  test("check lists it escaped; run --once ships it with the name's bytes in the path header and key; the next run resumes, nothing twice", async () => {
    const ws = e2e.topicWorkspace("names", 4);
    const name = badName(ws.logs);
    const shown = `${ws.logs}/a\\xff.log`;
    const first = lines("a", 0, 100);
    appendFileSync(name, first);
    const cfg = config(ws);

    expect(await checkRow(cfg, shown)).toEqual([shown, ws.topic, String(first.length), "-", String(first.length), "new"]);

    const run1 = await once(cfg);
    const added = run1.lines.find((l) => l.includes(" INFO file added "));
    expect(added).toContain(`path=${shown} `);
    expect(fields(added!).path).toBe(`${ws.logs}/a\udcff.log`); // \xff reads back as the name's escaped byte
    expect(run1.stderr).toMatch(/INFO logship stopped lines=100 /);

    const more = lines("a", 100, 150);
    appendFileSync(name, more);
    const run2 = await once(cfg);
    expect(run2.stderr).toMatch(/INFO logship stopped lines=50 /);

    const records = await consumeAll(e2e.cluster.bootstraps, ws.topic);
    expect(records.length).toBeGreaterThan(3); // several records (target 1 KiB)
    expect(Buffer.concat(records.map((r) => r.value)).toString()).toBe(first + more); // each line once, in order
    for (const r of records) {
      expect(r.headerBytes!.path).toEqual(name);
      expect(r.keyBytes).toEqual(name);
    }
    // One partition for the file: the one its key's bytes hash to (as any Kafka client would choose).
    const partitionMetadata = [0, 1, 2, 3].map((partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
    const expected = Partitioners.DefaultPartitioner()({ topic: ws.topic, partitionMetadata, message: { key: name, value: null } });
    expect(new Set(records.map((r) => r.partition))).toEqual(new Set([expected]));

    const row = await checkRow(cfg, shown);
    expect(row.slice(2, 5)).toEqual([String(first.length + more.length), String(first.length + more.length), "0"]);
  }, 120_000);

  test("rotation while stopped: the renamed file resumes at its offset under its new name's bytes, the new file starts at 0", async () => {
    const ws = e2e.topicWorkspace("names-rotate", 1);
    const name = badName(ws.logs);
    const rotated = Buffer.concat([name, Buffer.from(".1")]);
    appendFileSync(name, lines("a", 0, 40));
    const cfg = config(ws);
    writeFileSync(cfg, readFileSync(cfg, "utf8").replace(`${ws.logs}/*.log"`, `${ws.logs}/*.log*"`)); // the rotated name is matched too
    await once(cfg);
    appendFileSync(name, lines("a", 40, 50)); // written before the rotation, not yet shipped
    renameSync(name, rotated);
    appendFileSync(name, lines("b", 0, 5));
    const run2 = await once(cfg);
    expect(run2.lines.some((l) => / INFO file added path=\S+\/a\\xff\.log\.1 .* reason=resumed$/.test(l))).toBe(true);
    const records = await consumeAll(e2e.cluster.bootstraps, ws.topic);
    const of = (bytes: Buffer) => records.filter((r) => r.headerBytes!.path!.equals(bytes));
    const byFile = new Map<string, string>();
    for (const r of records) byFile.set(r.headers.file!, (byFile.get(r.headers.file!) ?? "") + r.value.toString());
    expect([...byFile.values()].sort()).toEqual([lines("a", 0, 50), lines("b", 0, 5)]); // each line once, per identity
    expect(of(rotated).map((r) => r.value.toString()).join("")).toBe(lines("a", 40, 50)); // the rest, under the new name
    expect(of(name).map((r) => r.value.toString()).join("")).toBe(lines("a", 0, 40) + lines("b", 0, 5));
  }, 120_000);

  test("format: json writes valid JSON: the path with U+FFFD and path_invalid_utf8; the header keeps the bytes", async () => {
    const ws = e2e.topicWorkspace("names-json", 1);
    const name = badName(ws.logs);
    appendFileSync(name, "one\ntwo\n");
    await once(config(ws, "    format: json\n"));
    const records = await consumeAll(e2e.cluster.bootstraps, ws.topic);
    expect(records.map((r) => JSON.parse(r.value.toString("utf8")))).toMatchObject([
      { message: "one", path: `${ws.logs}/a\uFFFD.log`, path_invalid_utf8: true, offset: 0 },
      { message: "two", path: `${ws.logs}/a\uFFFD.log`, path_invalid_utf8: true, offset: 4 },
    ]);
    for (const r of records) {
      expect(r.value.toString("utf8").isWellFormed()).toBe(true);
      expect(r.headerBytes!.path).toEqual(name);
      expect(r.keyBytes).toEqual(name);
    }
  }, 120_000);
});
