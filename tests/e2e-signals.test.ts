// End to end, signals and crashes: the compiled binary against the mock cluster, stopped by
// SIGTERM during a backlog, killed with -9 mid-stream, reloaded with SIGHUP, and stopped at
// once by a second SIGTERM. Kafka is made slow (broker RTT) so that a backlog exists while
// the agent is signalled; what arrived is read back with kcat and checked line by line.

import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AgentProcess, runLogship, type RunResult } from "./helpers/agentProcess.ts";
import { consumeAll } from "./helpers/consume.ts";
import { checkDelivery, defaultHost, fileContents } from "./helpers/delivery.ts";
import { eventually } from "./helpers/eventually.ts";
import { fixedLines } from "./helpers/lines.ts";
import { useCluster } from "./helpers/useCluster.ts";
import { writeConfig, type TopicWorkspace } from "./helpers/workspace.ts";

const BROKER = 1;
const e2e = useCluster(1, { build: true });
const running: AgentProcess[] = [];

afterEach(async () => {
  for (const a of running.splice(0)) await a.kill();
  e2e.cluster.setRtt(BROKER, 0);
  e2e.cluster.brokerUp(BROKER);
});

interface Workspace extends TopicWorkspace {
  config: string;
}

/** A fresh directory, a topic of 8 partitions and a config; `extra` is appended at top level. */
function workspace(name: string, extra: string, kafkaExtra = ""): Workspace {
  const ws = e2e.topicWorkspace(name);
  return { ...ws, config: writeConfig(ws.dir, validConfig(ws.logs, ws.topic, ws.dir, extra, kafkaExtra)) };
}

function validConfig(logs: string, topic: string, dir: string, extra: string, kafkaExtra: string): string {
  return `inputs:
  - paths: ["${logs}/*.log"]
kafka:
  brokers: ["${e2e.cluster.bootstraps}"]
  topic: ${topic}
${kafkaExtra}state:
  path: ${dir}/state.db
${extra}`;
}

function start(ws: Workspace, once = false): AgentProcess {
  const a = AgentProcess.start(["run", "--config", ws.config, ...(once ? ["--once"] : [])]);
  running.push(a);
  return a;
}

function writeBacklog(ws: Workspace, files: number, perFile: number): string[] {
  const paths = Array.from({ length: files }, (_, i) => join(ws.logs, `big-${i}.log`));
  paths.forEach((p, i) => writeFileSync(p, fixedLines(`b${i}`, 1, perFile + 1)));
  return paths;
}

/** Lines acknowledged so far, from the agent's stats lines (stats_interval must be set). */
function ackedLines(a: AgentProcess): number {
  const stats = a.lines.filter((l) => l.includes(" INFO stats "));
  const m = /lines=(\d+)/.exec(stats[stats.length - 1] ?? "");
  return m ? Number(m[1]) : 0;
}

async function runOnce(ws: Workspace): Promise<RunResult> {
  const r = await runLogship(["run", "--config", ws.config, "--once"], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`run --once exited ${r.code}:\n${r.stderr}`);
  return r;
}

/** Sum of saved offsets `logship check` reports. */
async function savedBytes(ws: Workspace): Promise<number> {
  const r = await runLogship(["check", "--config", ws.config]);
  let sum = 0;
  for (const m of r.stdout.matchAll(/^\/\S+\s+\S+\s+\d+\s+(\d+)\s+\d+/gm)) sum += Number(m[1]);
  return sum;
}

const host = defaultHost();

// A backlog: 8 files x 10k lines (3.2 MB) sent in record batches of at most 32 KiB per
// partition, one request at a time, each answered after RTT_MS: about 10 s of sending.
const SLOW_KAFKA = `  max_message_bytes: 32KiB\n  target_message_bytes: 32KiB\n`;
const RTT_MS = 100;

describe("logship run: signals and crashes (compiled binary, mock cluster)", () => {
  test("SIGTERM during a large backlog drains and exits 0 within shutdown_timeout; a restart loses and duplicates nothing", async () => {
    const shutdownMs = 15_000;
    const ws = workspace("sigterm", `shutdown_timeout: ${shutdownMs / 1000}s\nstats_interval: 100ms\nmax_inflight_bytes: 256KiB\n`, SLOW_KAFKA);
    const paths = writeBacklog(ws, 8, 10_000);
    e2e.cluster.setRtt(BROKER, RTT_MS);
    const agent = start(ws);
    await eventually(() => ackedLines(agent) > 0, { timeoutMs: 20_000, message: "some lines acknowledged" });

    const signalledAt = performance.now();
    agent.signal("SIGTERM");
    const code = await agent.waitForExit(shutdownMs + 5_000);
    const took = performance.now() - signalledAt;
    e2e.cluster.setRtt(BROKER, 0);
    expect(code).toBe(0);
    expect(took).toBeLessThan(shutdownMs);
    await agent.waitForLine(/INFO SIGTERM: draining in-flight data/);
    expect(agent.stderr).toMatch(/INFO logship stopped lines=\d+/); // INFO: nothing left unacknowledged
    expect(agent.stderr).not.toContain("unacknowledged_bytes");

    // The backlog was real: the first run shipped only part of it, and saved exactly that.
    const total = 8 * 10_000 * 40;
    const shipped = checkDelivery(await consumeAll(e2e.cluster.bootstraps, ws.topic), fileContents(paths), { host, duplicates: "count", prefixOnly: true });
    expect(shipped.duplicateLines).toBe(0);
    expect(shipped.bytes).toBeLessThan(total);
    expect(await savedBytes(ws)).toBe(shipped.bytes);

    await runOnce(ws);
    // checkDelivery walks every file: it throws on a gap; "forbid" also throws on a duplicate
    const report = checkDelivery(await consumeAll(e2e.cluster.bootstraps, ws.topic, { timeoutMs: 30_000 }), fileContents(paths), { host, duplicates: "forbid" });
    expect(report.bytes).toBe(total);
    expect(report.duplicateLines).toBe(0);
    console.log(`[e2e] SIGTERM: drained in ${Math.round(took)} ms, first run shipped ${shipped.bytes} of ${total} bytes, duplicates after restart: ${report.duplicateLines} lines`);
  }, 60_000);

  test("kill -9 mid-stream, then a restart with --once, loses nothing and keeps each file's order", async () => {
    const ws = workspace("kill9", `stats_interval: 100ms\nmax_inflight_bytes: 256KiB\n`, SLOW_KAFKA);
    const paths = writeBacklog(ws, 8, 10_000);
    const total = 8 * 10_000 * 40;
    e2e.cluster.setRtt(BROKER, RTT_MS);
    const agent = start(ws);
    // Mid-stream: offsets have been saved for part of the data (state.flush_interval 1s) and more is in flight.
    await eventually(async () => (await savedBytes(ws)) > 0, { timeoutMs: 20_000, intervalMs: 200, message: "some offsets saved" });
    agent.signal("SIGKILL");
    expect(await agent.waitForExit(5_000)).toBe(137);
    e2e.cluster.setRtt(BROKER, 0);
    const acked = ackedLines(agent);
    const saved = await savedBytes(ws);
    expect(saved).toBeLessThan(total);

    const restart = await runOnce(ws);
    expect(restart.lines.some((l) => l.includes("reason=resumed") && !l.includes("offset=0 "))).toBe(true);
    const report = checkDelivery(await consumeAll(e2e.cluster.bootstraps, ws.topic, { timeoutMs: 30_000 }), fileContents(paths), { host, duplicates: "count" });
    expect(report.bytes).toBe(total); // nothing missing, order kept once duplicates are dropped
    // Only lines after the saved offsets can come twice.
    expect(report.duplicateLines * 40).toBeLessThanOrEqual(total - saved);
    console.log(
      `[e2e] kill -9: ~${acked} lines acknowledged (last stats), ${saved / 40} lines' offsets saved; after restart ${report.duplicateLines} duplicate lines in ${report.duplicateRecords} duplicate records (of ${report.records} records)`,
    );
  }, 60_000);

  test("run follows appends; SIGHUP with a broken config is rejected and it keeps running; while draining SIGHUP is ignored and a second SIGTERM exits at once", async () => {
    const extra = `scan_interval: 200ms\npoll_interval: 100ms\nshutdown_timeout: 60s\nstats_interval: 0\n`;
    const ws = workspace("run", extra);
    const a = join(ws.logs, "a.log");
    const b = join(ws.logs, "b.log");
    const c = join(ws.logs, "c.log");
    writeFileSync(a, fixedLines("ra", 1, 101));
    writeFileSync(b, fixedLines("rb", 1, 101));
    const agent = start(ws);
    const arrived = (paths: string[]) => async () => checkDelivery(await consumeAll(e2e.cluster.bootstraps, ws.topic), fileContents(paths), { host, duplicates: "forbid" });
    await eventually(arrived([a, b]), { timeoutMs: 15_000, intervalMs: 200, message: "initial lines arrive" });

    appendFileSync(a, fixedLines("ra", 101, 151));
    writeFileSync(c, fixedLines("rc", 1, 21)); // a new file the globs match
    const afterAppend = await eventually(arrived([a, b, c]), { timeoutMs: 15_000, intervalMs: 200, message: "appended lines and a new file arrive" });
    expect(afterAppend.lines).toBe(270);

    // A broken config on SIGHUP: logged, the old one kept, still shipping.
    const good = readFileSync(ws.config, "utf8");
    writeFileSync(ws.config, good.replace("kafka:", "kafak:"));
    let mark = agent.lines.length;
    agent.signal("SIGHUP");
    const rejected = await agent.waitForLine(/ERROR new config rejected; keeping the old one/, { after: mark });
    expect(rejected).toContain(`${ws.config}:3: kafak: unknown key`);
    appendFileSync(b, fixedLines("rb", 101, 131));
    await eventually(arrived([a, b, c]), { timeoutMs: 15_000, intervalMs: 200, message: "lines appended after the rejected reload arrive" });
    expect(agent.exitCode).toBeNull();

    writeFileSync(ws.config, good);
    mark = agent.lines.length;
    agent.signal("SIGHUP");
    await agent.waitForLine(/INFO config reloaded/, { after: mark });

    // With Kafka down, the first SIGTERM waits (up to 60 s) for acknowledgements; the second exits at once.
    e2e.cluster.brokerDown(BROKER);
    mark = agent.lines.length;
    appendFileSync(a, fixedLines("ra", 151, 161));
    await agent.waitForLine(/ERROR Kafka send failed/, { after: mark, timeoutMs: 20_000 });
    agent.signal("SIGTERM");
    await agent.waitForLine(/SIGTERM: draining in-flight data/, { after: mark });
    agent.signal("SIGHUP"); // a reload cannot restart what is being stopped
    await agent.waitForLine(/SIGHUP ignored: shutting down/, { after: mark });
    expect(agent.exitCode).toBeNull();
    agent.signal("SIGTERM");
    const code = await agent.waitForExit(10_000); // far below shutdown_timeout
    expect(code).toBe(1);
    await agent.waitForLine(/SIGTERM again: exiting now without draining/, { after: mark });

    // Nothing is lost: the unacknowledged lines go out on the next start.
    e2e.cluster.brokerUp(BROKER);
    await runOnce(ws);
    const report = checkDelivery(await consumeAll(e2e.cluster.bootstraps, ws.topic), fileContents([a, b, c]), { host, duplicates: "forbid" });
    expect(report.lines).toBe(310);
  }, 60_000);
});
