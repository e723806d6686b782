// End to end, the command line of the compiled binary: exit codes, help and version, config
// problems reported as FILE:LINE: field: what is wrong (no stack trace), and `check` listing
// what a valid config matches. Nothing here talks to Kafka: `check` never connects, and an
// invalid config stops the agent before anything starts.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { ensureBuilt, runLogship, writeConfig, type RunResult } from "./helpers/agentProcess.ts";

let dir: string;
let logs: string;

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), "logship-e2e-cli-"));
  logs = join(dir, "logs");
  mkdirSync(logs);
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Port 9 (discard) on loopback: a valid address that nothing here ever connects to. */
const BROKERS = `["127.0.0.1:9"]`;

function valid(name: string): string {
  return writeConfig(dir, `inputs:\n  - paths: ["${logs}/*.log"]\nkafka:\n  brokers: ${BROKERS}\n  topic: cli\nstate:\n  path: ${dir}/state.db\n`, name);
}

/** Asserts the run was refused as an invalid config: exit 2, located problems, no stack trace. */
function expectConfigRefused(r: RunResult): string[] {
  expect(r.code).toBe(2);
  expect(r.stdout).toBe("");
  expect(r.stderr).not.toMatch(/^\s+at /m); // no stack frames
  expect(r.stderr).not.toMatch(/Error:|error:/);
  expect(r.lines[r.lines.length - 1]).toMatch(/^logship: invalid config \(\d+ problems?\); nothing was started$/);
  return r.lines.slice(0, -1);
}

describe("logship command line (compiled binary)", () => {
  test("--version, --help, run --help, check --help and status --help print and exit 0", async () => {
    const version = await runLogship(["--version"]);
    expect(version.code).toBe(0);
    expect(version.stdout).toBe(`logship ${pkg.version}\n`);

    const help = await runLogship(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("logship run --config FILE [--once [--progress | --no-progress]]");
    expect(help.stdout).toContain("logship check --config FILE");
    expect(help.stdout).toContain("logship status --config FILE");
    expect(help.stdout).toContain("Exit codes: 0 success, 1 runtime failure, 2 invalid config or usage, 3 run --once did not\nship everything matched");

    for (const cmd of ["run", "check", "status"]) {
      const r = await runLogship([cmd, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toStartWith(`Usage: logship ${cmd} --config FILE`);
      expect(r.stderr).toBe("");
    }
  });

  test("usage errors exit 2 with a one-line reason: unknown command, unknown option, no --config, no command", async () => {
    const cases: [string[], RegExp][] = [
      [["frobnicate"], /^logship: unknown command "frobnicate"; expected run, check or status/],
      [["run", "--config", valid("usage.yaml"), "--bogus"], /^logship: .*'--bogus'.*logship run --help/],
      [["check"], /^logship: --config FILE is required/],
      [[], /Usage:/],
    ];
    for (const [args, message] of cases) {
      const r = await runLogship(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
  });

  test("a typo'd key (kafak:) is refused as FILE:LINE: field: unknown key, by run and by check", async () => {
    const cfg = writeConfig(dir, `inputs:\n  - paths: ["${logs}/*.log"]\nkafak:\n  brokers: ${BROKERS}\n  topic: cli\n`, "typo.yaml");
    for (const cmd of ["run", "check"]) {
      const problems = expectConfigRefused(await runLogship([cmd, "--config", cfg]));
      expect(problems).toContain(`${cfg}:3: kafak: unknown key (did you mean "kafka"?); known keys: inputs, kafka, state, http, log, host, scan_interval, poll_interval, shutdown_timeout, max_open_files, max_inflight_bytes, stats_interval`);
      for (const p of problems) expect(p).toMatch(new RegExp(`^${cfg.replace(/[.]/g, "\\.")}:\\d+: [\\w.\\[\\]()]+: `));
    }
  });

  test("a missing config file is refused with exit 2 naming the file", async () => {
    const missing = join(dir, "nowhere.yaml");
    for (const cmd of ["run", "check"]) {
      const problems = expectConfigRefused(await runLogship([cmd, "--config", missing]));
      expect(problems).toEqual([`${missing}:0: (file): cannot read config: file not found`]);
    }
  });

  test("a bad duration and a missing required key are each located by line and field", async () => {
    const cfg = writeConfig(
      dir,
      `inputs:\n  - paths: ["${logs}/*.log"]\nkafka:\n  topic: cli\nstate:\n  path: ${dir}/state.db\nscan_interval: 10 seconds\nshutdown_timeout: 30\n`,
      "durations.yaml",
    );
    const problems = expectConfigRefused(await runLogship(["run", "--config", cfg]));
    expect(problems).toEqual([
      `${cfg}:3: kafka.brokers: missing: this key is required`,
      `${cfg}:7: scan_interval: must be a duration with a unit, e.g. 500ms, 10s, 5m, 1h, 7d (got "10 seconds")`,
      `${cfg}:8: shutdown_timeout: must be a duration with a unit, e.g. 500ms, 10s, 5m, 1h, 7d (got "30")`,
    ]);
  });

  test("check on a valid config exits 0 and lists every matched file with its offset and unread bytes", async () => {
    writeFileSync(join(logs, "one.log"), "first line\nsecond line\n");
    writeFileSync(join(logs, "two.log"), "no newline yet");
    writeFileSync(join(logs, "ignored.txt"), "not matched\n");
    const r = await runLogship(["check", "--config", valid("check.yaml")]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const out = r.stdout.split("\n");
    expect(out[0]).toBe(`config ${dir}/check.yaml is valid: 1 input(s), brokers 127.0.0.1:9`);
    expect(out).toContain(`no state file yet at ${dir}/state.db`);
    const header = out.findIndex((l) => l.startsWith("PATH"));
    expect(out[header]!.split(/\s+/)).toEqual(["PATH", "TOPIC", "SIZE", "OFFSET", "UNREAD", "NOTE"]);
    const rows = out.slice(header + 1).filter((l) => l.trim() !== "").map((l) => l.split(/\s+/));
    expect(rows).toEqual([
      [join(logs, "one.log"), "cli", "23", "-", "23", "new"],
      [join(logs, "two.log"), "cli", "14", "-", "14", "new"],
    ]);
  });

  test("a state file that cannot be opened is a runtime failure: exit 1 with a one-line reason", async () => {
    const blocker = join(dir, "not-a-dir");
    writeFileSync(blocker, "a file where the state directory should be\n");
    const cfg = writeConfig(dir, `inputs: [{ paths: ["${logs}/*.log"] }]\nkafka: { brokers: ${BROKERS}, topic: cli }\nstate: { path: ${blocker}/state.db }\n`, "state.yaml");
    const r = await runLogship(["run", "--config", cfg, "--once"]);
    expect(r.code).toBe(1);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toStartWith(`logship: state: cannot create the directory of state.path "${blocker}/state.db"`);
  });
});
