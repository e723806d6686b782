// End to end, the compiled binary and a hostile file name (issue 11, item 3b): a log file
// whose name holds an ESC sequence (an xterm "set title" OSC), a newline and a carriage
// return goes through `check`, `run --once` against the mock cluster, and `check` again.
// Nothing logship prints may carry a raw control character: each stdout and stderr line is
// whole (no forged line from the name's newline), the name shows escaped (lib/text.ts), and
// the file is still shipped. A config value with an ESC is refused with the value escaped.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { escapeText } from "../lib/text.ts";
import { ensureBuilt, runLogship, writeConfig, type RunResult } from "./helpers/agentProcess.ts";
import { fields } from "./helpers/faults.ts";
import { startMockCluster, type MockCluster } from "./helpers/mockCluster.ts";

let cluster: MockCluster;
let dir: string;

beforeAll(() => {
  ensureBuilt();
  cluster = startMockCluster({ brokers: 1 });
  dir = mkdtempSync(join(tmpdir(), "logship-e2e-escape-"));
}, 120_000);

afterAll(() => {
  cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** C0 but the line feed that ends each line, DEL and C1. */
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;
const NAME = "\x1b]0;pwned\x07evil\n2024-01-01T00:00:00.000Z ERROR forged\r.log";

/** No raw control character anywhere but the line ends. */
function expectClean(r: RunResult): void {
  expect(RAW.test(r.stdout)).toBe(false);
  expect(RAW.test(r.stderr)).toBe(false);
}

describe("a file name with terminal escapes and a newline (compiled binary, mock cluster)", () => {
  test("check and run --once print it escaped, on one line, and ship the file", async () => {
    const logs = join(dir, "logs");
    mkdirSync(logs);
    const topic = `e2e-escape-${Date.now().toString(36)}`;
    cluster.createTopic(topic, 1);
    const path = join(logs, NAME);
    const content = "first line\nsecond line\n";
    writeFileSync(path, content);
    expect(readdirSync(logs)).toEqual([NAME]);
    const cfg = writeConfig(dir, `inputs:\n  - paths: ["${logs}/*.log"]\nkafka:\n  brokers: ["${cluster.bootstraps}"]\n  topic: ${topic}\nstate:\n  path: ${dir}/state.db\nstats_interval: 0\n`);
    const shown = escapeText(path);
    expect(shown).toContain("\\x1b]0;pwned\\x07evil\\n2024-01-01T00:00:00.000Z ERROR forged\\r.log");

    const before = await runLogship(["check", "--config", cfg]);
    expect(before.code).toBe(0);
    expectClean(before);
    expect(before.stderr).toBe("");
    const rows = before.stdout.split("\n").filter((l) => l.startsWith("/"));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.split(/\s+/)).toEqual([...shown.split(" "), topic, String(content.length), "-", String(content.length), "new"]);

    const run = await runLogship(["run", "--config", cfg, "--once"], { timeoutMs: 60_000 });
    expect(run.code).toBe(0);
    expectClean(run);
    for (const l of run.lines) expect(l).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z (INFO|WARN|ERROR) \S/); // no forged line
    expect(run.lines.filter((l) => l.includes("forged"))).toHaveLength(1); // file added, its one line
    const added = run.lines.find((l) => l.includes(" INFO file added "));
    expect(added).toContain(`path="${shown}"`);
    expect(fields(added!)).toMatchObject({ path, offset: "0", reason: "new" });
    expect(run.stderr).toMatch(/INFO logship stopped lines=2 bytes=23 /);

    const after = await runLogship(["check", "--config", cfg]);
    expectClean(after);
    const row = after.stdout.split("\n").find((l) => l.startsWith("/"))!;
    expect(row.split(/\s+/)).toEqual([...shown.split(" "), topic, String(content.length), String(content.length), "0"]); // all shipped
  }, 90_000);

  test("a config value with an ESC and a newline is refused with the value escaped", async () => {
    const cfg = writeConfig(dir, `inputs:\n  - paths: ["${dir}/*.log"]\nkafka:\n  brokers: ["127.0.0.1:9"]\n  topic: "bad\\e]0;pwned\\a\\nname"\n`, "hostile.yaml");
    for (const cmd of ["check", "run"]) {
      const r = await runLogship([cmd, "--config", cfg]);
      expect(r.code).toBe(2);
      expectClean(r);
      expect(r.lines).toEqual([
        `${cfg}:5: kafka.topic: must be a Kafka topic name: letters, digits, '.', '_', '-' (got "bad\\x1b]0;pwned\\x07\\nname")`,
        "logship: invalid config (1 problem); nothing was started",
      ]);
    }
  });
});
