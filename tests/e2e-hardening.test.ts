// End to end, the hardening findings of issue 11 that are about the process: the compiled
// binary with a broken stderr pipe, signals during startup, file-descriptor limits, a state
// path that is not a file, config limits and --once's exit code. Kafka is the mock cluster
// (loopback); each test has its own directory and topic.

import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentProcess, checkDelivery, defaultHost, ensureBuilt, runLogship, writeConfig } from "./helpers/agentProcess.ts";
import { consumeAll } from "./helpers/consume.ts";
import { startMockCluster, type MockCluster } from "./helpers/mockCluster.ts";

let cluster: MockCluster;
const dirs: string[] = [];
const running: AgentProcess[] = [];

beforeAll(() => {
  ensureBuilt();
  cluster = startMockCluster({ brokers: 1 });
}, 120_000);

afterEach(async () => {
  for (const a of running.splice(0)) await a.kill();
});

afterAll(() => {
  cluster?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Workspace {
  dir: string;
  logs: string;
  topic: string;
  config: string;
}

/** A fresh directory with logs/, a topic of 4 partitions and a config; `extra` is appended at top level. */
function workspace(name: string, extra = "", kafkaExtra = ""): Workspace {
  const dir = mkdtempSync(join(tmpdir(), `logship-e2e-${name}-`));
  dirs.push(dir);
  const logs = join(dir, "logs");
  mkdirSync(logs);
  const topic = `e2e-${name}-${Date.now().toString(36)}`;
  cluster.createTopic(topic, 4);
  const config = writeConfig(
    dir,
    `inputs:
  - paths: ["${logs}/*.log"]
kafka:
  brokers: ["${cluster.bootstraps}"]
  topic: ${topic}
${kafkaExtra}state:
  path: ${dir}/state.db
stats_interval: 0
${extra}`,
  );
  return { dir, logs, topic, config };
}

function writeLogs(ws: Workspace, files: number, lines: number): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (let f = 0; f < files; f++) {
    const path = join(ws.logs, `app-${f}.log`);
    const content = Buffer.from(Array.from({ length: lines }, (_, i) => `file ${f} line ${String(i).padStart(5, "0")}\n`).join(""));
    writeFileSync(path, content);
    out.set(path, content);
  }
  return out;
}

/** Runs the binary with its stderr a pipe whose reader has already gone: every write to it fails with EPIPE. */
const BROKEN_STDERR = ["bash", "-c", 'exec 2> >(true); sleep 0.3; exec "$0" "$@"'];

test("a broken stderr pipe (EPIPE on every log line) neither crashes nor stops shipping (issue 11, item 16)", async () => {
  const ws = workspace("epipe");
  const files = writeLogs(ws, 5, 200);
  const r = await runLogship(["run", "--config", ws.config, "--once"], { wrap: BROKEN_STDERR, timeoutMs: 60_000 });
  expect(r.code).toBe(0);
  expect(r.stderr).toBe(""); // the test's own pipe was replaced: nothing came through
  checkDelivery(await consumeAll(cluster.bootstraps, ws.topic), files, { host: defaultHost() });
}, 90_000);

/** `n` small log files, written fast (the first scan of them is startup's slow part). */
function manyFiles(ws: Workspace, n: number): void {
  for (let i = 0; i < n; i++) writeFileSync(join(ws.logs, `f-${i}.log`), `line of file ${i}\n`);
}

test("SIGTERM during startup (the first scan of 20,000 files) is handled: a log line, a clean stop, exit 0 (issue 11, item 17)", async () => {
  const ws = workspace("startterm");
  manyFiles(ws, 20_000);
  const agent = AgentProcess.run(ws.config);
  running.push(agent);
  await agent.waitForLine(/logship started/, { timeoutMs: 30_000 });
  agent.signal("SIGTERM");
  expect(await agent.waitForExit(60_000)).toBe(0);
  expect(agent.count(/SIGTERM: draining/)).toBe(1);
  expect(agent.count(/logship stopped/)).toBe(1);
}, 120_000);

test("SIGHUP during startup does not kill it: the reload happens once it runs (issue 11, item 17)", async () => {
  const ws = workspace("starthup");
  manyFiles(ws, 20_000);
  const agent = AgentProcess.run(ws.config);
  running.push(agent);
  await agent.waitForLine(/logship started/, { timeoutMs: 30_000 });
  agent.signal("SIGHUP");
  await agent.waitForLine(/config reloaded/, { timeoutMs: 60_000 });
  expect(agent.count(/file added/)).toBeGreaterThanOrEqual(20_000); // the reload came after the first scan
  agent.signal("SIGTERM");
  expect(await agent.waitForExit(60_000)).toBe(0);
}, 120_000);

test("check, run and --reset-state refuse a state.path that is a FIFO (or a directory), at once, exit 1 (issue 11, item 15)", async () => {
  const ws = workspace("fifo");
  writeLogs(ws, 1, 10);
  const mk = Bun.spawnSync(["mkfifo", join(ws.dir, "state.db")]);
  expect(mk.exitCode).toBe(0);
  for (const args of [["check"], ["run"], ["run", "--reset-state"], ["run", "--once"]]) {
    const r = await runLogship([...args, "--config", ws.config], { timeoutMs: 15_000 });
    expect({ args, code: r.code }).toEqual({ args, code: 1 });
    expect(r.stderr).toContain("is a FIFO (named pipe), not a regular file");
  }
  // a companion too: the -wal file a directory
  const ws2 = workspace("walldir");
  mkdirSync(join(ws2.dir, "state.db-wal"));
  const r = await runLogship(["run", "--config", ws2.config, "--once"], { timeoutMs: 15_000 });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`"${join(ws2.dir, "state.db-wal")}" is a directory`);
}, 120_000);

test("--config= (empty) is a usage error naming the problem, exit 2 (issue 11, item 22)", async () => {
  for (const args of [["run", "--config="], ["check", "--config", ""]]) {
    const r = await runLogship(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--config was given an empty file name");
    expect(r.stderr).not.toContain("EISDIR");
  }
});

test("a reload that changes state.path says it needs a restart and keeps the running state file (issue 11, item 22)", async () => {
  const ws = workspace("reloadstate");
  const files = writeLogs(ws, 1, 10);
  const agent = AgentProcess.run(ws.config);
  running.push(agent);
  await agent.waitForLine(/file added/, { timeoutMs: 30_000 });
  const moved = join(ws.dir, "elsewhere.db");
  writeFileSync(ws.config, readFileSync(ws.config, "utf8").replace(`path: ${ws.dir}/state.db`, `path: ${moved}`));
  agent.signal("SIGHUP");
  const warn = await agent.waitForLine(/apply only at the next start/, { timeoutMs: 30_000 });
  expect(warn).toContain("WARN config reloaded, but these keys apply only at the next start; they keep their running values");
  expect(warn).toContain("keys=state.path ");
  expect(warn).toContain(`state.path="${ws.dir}/state.db (wanted ${moved})"`);
  agent.signal("SIGTERM");
  expect(await agent.waitForExit(30_000)).toBe(0);
  expect(existsSync(moved)).toBe(false); // never created: the running state file stayed in use
  checkDelivery(await consumeAll(cluster.bootstraps, ws.topic), files, { host: defaultHost() });
}, 90_000);

test("a config where no file of an input could ship (its path alone fills max_message_bytes) is refused up front, exit 2 (issue 11, item 18)", async () => {
  const ws = workspace("keytoolarge");
  const longDir = join(ws.logs, "d".repeat(250), "e".repeat(250));
  mkdirSync(longDir, { recursive: true });
  writeFileSync(join(longDir, "app.log"), "a line\n");
  const yaml = readFileSync(ws.config, "utf8").replace(`["${ws.logs}/*.log"]`, `["${longDir}/*.log"]`).replace("kafka:\n", "kafka:\n  max_message_bytes: 1024\n");
  writeFileSync(ws.config, yaml);
  for (const args of [["check"], ["run", "--once"]]) {
    const r = await runLogship([...args, "--config", ws.config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`inputs[0].paths: kafka.max_message_bytes (1024) leaves no room for a line of ${longDir}/*.log`);
  }
  // the same paths with room: accepted
  writeFileSync(ws.config, yaml.replace("max_message_bytes: 1024", "max_message_bytes: 4096"));
  expect((await runLogship(["check", "--config", ws.config])).code).toBe(0);
});

test("--once exits 3 with a summary line when a matched file was unreadable; the others ship (issue 11, item 10)", async () => {
  const ws = workspace("onceunreadable");
  const files = writeLogs(ws, 3, 50);
  expect(Bun.spawnSync(["mkfifo", join(ws.logs, "pipe.log")]).exitCode).toBe(0);
  const r = await runLogship(["run", "--config", ws.config, "--once"], { timeoutMs: 60_000 });
  expect(r.code).toBe(3);
  const summary = r.lines.filter((l) => l.includes("--once finished, but not everything matched was shipped"));
  expect(summary).toHaveLength(1);
  expect(summary[0]).toContain("WARN");
  expect(summary[0]).toContain("unreadable_files=1");
  checkDelivery(await consumeAll(cluster.bootstraps, ws.topic), files, { host: defaultHost() });
  // Without the FIFO the same run ships everything: exit 0, no summary line.
  rmSync(join(ws.logs, "pipe.log"));
  const again = await runLogship(["run", "--config", ws.config, "--once"], { timeoutMs: 60_000 });
  expect(again.code).toBe(0);
  expect(again.stderr).not.toContain("--once finished, but");
}, 120_000);

test("--once stopped by SIGTERM while Kafka is unreachable exits 3 naming the unacknowledged bytes (issue 11, item 10)", async () => {
  const ws = workspace("onceterm", "shutdown_timeout: 1s\n", "  request_timeout: 1s\n  retry_backoff: 50ms\n  retry_backoff_max: 200ms\n");
  writeLogs(ws, 2, 20);
  writeFileSync(ws.config, readFileSync(ws.config, "utf8").replace(cluster.bootstraps, "127.0.0.1:1")); // nothing listens there
  const agent = AgentProcess.run(ws.config, "--once");
  running.push(agent);
  await agent.waitForLine(/Kafka send failed/, { timeoutMs: 30_000 });
  agent.signal("SIGTERM");
  expect(await agent.waitForExit(30_000)).toBe(3);
  const summary = agent.lines.find((l) => l.includes("--once finished, but not everything matched was shipped"));
  expect(summary).toContain("unacknowledged_bytes=");
  expect(summary).toContain("stopped_by=signal");
}, 90_000);

test("--once exits 3 when a matched file could not be shipped (its path too long for max_message_bytes) (issue 11, item 10)", async () => {
  const ws = workspace("onceunshippable");
  const files = writeLogs(ws, 2, 20);
  const deep = join(ws.logs, "d".repeat(250), "e".repeat(250));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, "x.log"), "cannot go\n");
  writeFileSync(ws.config, readFileSync(ws.config, "utf8").replace(`${ws.logs}/*.log`, `${ws.logs}/**/*.log`).replace("kafka:\n", "kafka:\n  max_message_bytes: 1024\n"));
  const r = await runLogship(["run", "--config", ws.config, "--once"], { timeoutMs: 60_000 });
  expect(r.code).toBe(3);
  expect(r.lines.find((l) => l.includes("--once finished, but"))).toContain("unshippable_files=1");
  checkDelivery(await consumeAll(cluster.bootstraps, ws.topic), files, { host: defaultHost() });
}, 90_000);

test("with a hard open-file limit of 1024 and the default max_open_files 1024, 1,100 files still ship: descriptors are kept for Kafka, with a WARN (issue 11, item 13)", async () => {
  const ws = workspace("nofile");
  const files = writeLogs(ws, 1_100, 3);
  const r = await runLogship(["run", "--config", ws.config, "--once"], { wrap: ["bash", "-c", 'ulimit -Sn 512 && ulimit -Hn 1024 && exec "$0" "$@"'], timeoutMs: 60_000 });
  expect(r.code).toBe(0);
  const warn = r.lines.filter((l) => l.includes("max_open_files lowered"));
  expect(warn).toHaveLength(1);
  expect(warn[0]).toContain("WARN max_open_files lowered to 960: the open-file limit (RLIMIT_NOFILE) is 1024");
  checkDelivery(await consumeAll(cluster.bootstraps, ws.topic), files, { host: defaultHost() });
}, 120_000);

test("the soft open-file limit is raised to the hard one; a max_open_files that fits is left alone, without a WARN (issue 11, item 13)", async () => {
  const ws = workspace("nofileraise", "max_open_files: 100\n");
  writeLogs(ws, 2, 3);
  const agent = AgentProcess.start(["run", "--config", ws.config], { wrap: ["bash", "-c", 'ulimit -Sn 200 && ulimit -Hn 4000 && exec "$0" "$@"'] });
  running.push(agent);
  await agent.waitForLine(/file added/, { timeoutMs: 30_000 });
  const limits = readFileSync(`/proc/${agent.pid}/limits`, "utf8");
  expect(/^Max open files\s+(\d+)\s+(\d+)/m.exec(limits)?.slice(1)).toEqual(["4000", "4000"]);
  expect(agent.count(/max_open_files lowered/)).toBe(0);
  agent.signal("SIGTERM");
  expect(await agent.waitForExit(30_000)).toBe(0);
}, 60_000);
