// `run --once` progress (lib/progress.ts) with the compiled binary: on a real pseudo-terminal
// (util-linux `script` gives the binary one as stderr) one line is drawn and redrawn in place
// and ends at every file done; log lines stay whole; without a terminal, nothing of it;
// --progress and --no-progress force it either way.

import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LOGSHIP, runLogship } from "./helpers/agentProcess.ts";
import { seqLines } from "./helpers/lines.ts";
import { useCluster } from "./helpers/useCluster.ts";
import { mkdir, writeConfig } from "./helpers/workspace.ts";

const e2e = useCluster(1, { build: true, base: tmpdir() });

/** A config over 4 files of 20,000 distinct lines (40 bytes each): 3.2 MB. */
function progressConfig(name: string): string {
  const dir = e2e.scratch(`progress-${name}`);
  const logs = mkdir(join(dir, "logs"));
  for (let f = 0; f < 4; f++) writeFileSync(join(logs, `app-${f}.log`), seqLines(`file${f}`, 0, 20_000, 24));
  const topic = `progress-${name}-${Date.now().toString(36)}`;
  e2e.cluster.createTopic(topic, 4);
  return writeConfig(dir, `inputs:\n  - paths: ["${logs}/*.log"]\nkafka:\n  brokers: ["${e2e.cluster.bootstraps}"]\n  topic: ${topic}\nstate:\n  path: ${dir}/state.db\nstats_interval: 0\n`);
}

/** Runs logship with a pseudo-terminal as stdin, stdout and stderr; returns what the terminal showed. */
function onTerminal(args: string[]): { code: number; screen: string } {
  const r = Bun.spawnSync(["script", "-qfec", [LOGSHIP, ...args].join(" "), "/dev/null"], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  return { code: r.exitCode ?? -1, screen: r.stdout.toString() };
}

const DRAW = "\r\x1b[Klogship: ";
const FINAL = /\r\x1b\[Klogship: 4\/4 files, 3\.2\/3\.2 MB, \d+\.\d MB\/s, done\r?\n/;

describe("run --once progress", () => {
  test("on a terminal: one line redrawn in place, ending with every file done; log lines stay whole", () => {
    const { code, screen } = onTerminal(["run", "--config", progressConfig("tty"), "--once"]);
    expect(code).toBe(0);
    expect(screen).toMatch(FINAL);
    expect(screen.split(DRAW).length - 1).toBeGreaterThanOrEqual(2); // the first draw and the final one at least
    // Every log line starts on its own line, never after progress text.
    const logLines = screen.split(/\r\n|\r|\n/).filter((l) => / (INFO|WARN|ERROR) /.test(l));
    expect(logLines.length).toBeGreaterThanOrEqual(6);
    for (const l of logLines) expect(l).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z (INFO|WARN|ERROR) \S/);
    expect(logLines.some((l) => l.includes("INFO logship stopped lines=80000 bytes=3200000"))).toBe(true);
  }, 60_000);

  test("not a terminal: no progress; --no-progress on a terminal: none either", async () => {
    const piped = await runLogship(["run", "--config", progressConfig("pipe"), "--once"]);
    expect(piped.code).toBe(0);
    expect(piped.stderr).not.toContain("logship: ");
    expect(piped.stderr).not.toContain("\x1b");
    const quiet = onTerminal(["run", "--config", progressConfig("quiet"), "--once", "--no-progress"]);
    expect(quiet.code).toBe(0);
    expect(quiet.screen).not.toContain(DRAW);
    expect(quiet.screen).toContain("INFO logship stopped lines=80000");
  }, 60_000);

  test("--progress forces it without a terminal; without --once it is a usage error", async () => {
    const forced = await runLogship(["run", "--config", progressConfig("forced"), "--once", "--progress"]);
    expect(forced.code).toBe(0);
    expect(forced.stderr).toMatch(FINAL);
    const wrong = await runLogship(["run", "--config", progressConfig("usage"), "--progress"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr.trim()).toBe("logship: --progress and --no-progress go with --once (see logship run --help)");
  }, 60_000);
});
