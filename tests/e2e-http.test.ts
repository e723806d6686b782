// End to end, the operations endpoint of the compiled binary: a real Prometheus server
// (Debian `prometheus`, installed by scripts/setup.sh) scrapes logship on loopback while it
// ships a backlog to the mock cluster, and a PromQL query through Prometheus' HTTP API must
// return the shipped line count exactly; `promtool check metrics` must accept the exposition;
// `logship status` prints the running agent's files; a taken port and an unreachable Kafka
// are reported as the README says.

import { LOST_REASONS } from "../lib/http/metrics.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AgentProcess, ensureBuilt, runLogship, writeConfig } from "./helpers/agentProcess.ts";
import { eventually } from "./helpers/eventually.ts";
import { seqLines } from "./helpers/lines.ts";
import { startMockCluster, type MockCluster } from "./helpers/mockCluster.ts";
import { removeWorkspace, topicWorkspace, type TopicWorkspace } from "./helpers/workspace.ts";

let cluster: MockCluster;
const dirs: string[] = [];
const procs: { kill(): unknown }[] = [];

beforeAll(() => {
  ensureBuilt();
  cluster = startMockCluster({ brokers: 1 });
}, 120_000);

afterAll(async () => {
  for (const p of procs) await p.kill();
  cluster?.close();
  for (const d of dirs) removeWorkspace(d);
});

/** A fresh directory with logs/ and a topic `e2e-http-NAME-<time>` of 4 partitions, removed after the file's tests. */
function workspace(name: string): TopicWorkspace {
  const ws = topicWorkspace(cluster, `http-${name}`, 4);
  dirs.push(ws.dir);
  return ws;
}

function config(ws: TopicWorkspace, listen: string, brokers = cluster.bootstraps, extra = ""): string {
  return writeConfig(
    ws.dir,
    `inputs:
  - paths: ["${ws.logs}/*.log"]
kafka:
  brokers: ["${brokers}"]
  topic: ${ws.topic}
state:
  path: ${ws.dir}/state.db
http:
  listen: ${listen}
stats_interval: 0
${extra}`,
  );
}

/** A loopback port free right now (bound and released). */
function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** `n` lines of ~40 bytes tagged `tag`. */
const lines = (tag: string, from: number, n: number): string => seqLines(tag, from, n, 26, 7);

/** The address of the agent's endpoint, from its "http endpoint listening" log line. */
async function endpointOf(agent: AgentProcess): Promise<string> {
  const line = await agent.waitForLine(/http endpoint listening/, { timeoutMs: 15_000 });
  const m = /address=(\S+)/.exec(line) ?? /"address":"([^"]+)"/.exec(line); // log.format text or json
  if (!m) throw new Error(`no address in ${line}`);
  return `http://${m[1]}`;
}

/** One number from an instant PromQL query through Prometheus' HTTP API; undefined while it has no sample. */
async function promQuery(prom: string, query: string): Promise<number | undefined> {
  const r = await fetch(`${prom}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await r.json()) as { status: string; data: { result: { value: [number, string] }[] } };
  if (body.status !== "success") throw new Error(`query ${query}: ${JSON.stringify(body)}`);
  const v = body.data.result[0]?.value[1];
  return v === undefined ? undefined : Number(v);
}

describe("operations endpoint of the compiled binary", () => {
  test("a real Prometheus scrapes it: PromQL returns the shipped line count exactly, before and after more lines; promtool accepts the exposition; logship status lists the files", async () => {
    const ws = workspace("prom");
    const counts = [4_000, 2_500, 777];
    counts.forEach((n, i) => writeFileSync(join(ws.logs, `app-${i}.log`), lines(`f${i}`, 0, n)));
    const total = counts.reduce((a, b) => a + b, 0);
    const port = freePort();
    const cfg = config(ws, `127.0.0.1:${port}`);
    const agent = AgentProcess.run(cfg);
    procs.push(agent);
    const base = await endpointOf(agent);
    expect(base).toBe(`http://127.0.0.1:${port}`);

    // The backlog ships: every file's acknowledged offset reaches its size.
    await eventually(
      async () => {
        const s = (await (await fetch(`${base}/status`)).json()) as { files: { unread: number; lastRead: number | null }[] };
        return s.files.length === 3 && s.files.every((f) => f.unread === 0 && typeof f.lastRead === "number" && Math.abs(Date.now() - f.lastRead) < 60_000);
      },
      { timeoutMs: 30_000, message: "backlog shipped" },
    );

    // promtool validates what /metrics serves.
    const exposition = await (await fetch(`${base}/metrics`)).text();
    const promtool = Bun.spawnSync(["promtool", "check", "metrics"], { stdin: Buffer.from(exposition), stdout: "pipe", stderr: "pipe" });
    expect({ code: promtool.exitCode, out: promtool.stdout.toString() + promtool.stderr.toString() }).toEqual({ code: 0, out: "" });
    for (const name of ["logship_lines_shipped_total", "logship_bytes_shipped_total", "logship_records_sent_total", 'logship_bytes_lost_total{reason="copytruncate"}', "logship_unread_bytes", "logship_send_latency_seconds_count", "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"]) {
      expect(exposition).toContain(`\n${name} `);
    }

    // A real Prometheus, on loopback, scraping every second.
    const promDir = join(ws.dir, "prometheus");
    mkdirSync(promDir);
    const promPort = freePort();
    writeFileSync(
      join(promDir, "prometheus.yml"),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: logship\n    static_configs:\n      - targets: ["127.0.0.1:${port}"]\n`,
    );
    const prom = Bun.spawn(
      ["prometheus", `--config.file=${join(promDir, "prometheus.yml")}`, `--storage.tsdb.path=${join(promDir, "data")}`, `--web.listen-address=127.0.0.1:${promPort}`, "--log.level=warn"],
      { stdout: "ignore", stderr: "pipe" },
    );
    procs.push(prom);
    const promUrl = `http://127.0.0.1:${promPort}`;
    try {
      const lineCount = `logship_lines_shipped_total{job="logship"}`;
      await eventually(async () => (await promQuery(promUrl, lineCount)) === total, { timeoutMs: 30_000, intervalMs: 250, message: `Prometheus sees ${total} lines shipped` });
      expect(await promQuery(promUrl, `up{job="logship"}`)).toBe(1);
      expect(await promQuery(promUrl, `logship_unread_bytes{job="logship"}`)).toBe(0);
      expect(await promQuery(promUrl, `sum(logship_bytes_lost_total{job="logship"})`)).toBe(0);
      expect(await promQuery(promUrl, `count(logship_bytes_lost_total{job="logship"})`)).toBe(LOST_REASONS.length); // one series per reason, present from the start

      // More lines: the count follows, exactly.
      appendFileSync(join(ws.logs, "app-1.log"), lines("more", 0, 1_234));
      await eventually(async () => (await promQuery(promUrl, lineCount)) === total + 1_234, { timeoutMs: 30_000, intervalMs: 250, message: `Prometheus sees ${total + 1_234} lines shipped` });
    } finally {
      prom.kill();
      await prom.exited;
    }

    // logship status: the running agent's table.
    const st = await runLogship(["status", "--config", cfg]);
    expect(st.code).toBe(0);
    const rows = st.stdout.trim().split("\n");
    expect(rows[0]).toMatch(/^PATH\s+SIZE\s+OFFSET\s+UNREAD\s+OPEN\s+LAST READ\s+LAST GROWTH\s+FILE$/);
    for (let i = 0; i < 3; i++) expect(rows.some((r) => r.startsWith(join(ws.logs, `app-${i}.log`)) && /\s0\s+(open|closed)\s/.test(r))).toBe(true);
    expect(rows.at(-1)).toBe("3 file(s) followed, 3 open, 0 byte(s) unread, 0 byte(s) waiting for Kafka");

    agent.signal("SIGTERM");
    expect(await agent.waitForExit(15_000)).toBe(0);
    // The agent closed its endpoint; status says nobody answers.
    const gone = await runLogship(["status", "--config", cfg]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(`logship: no logship agent answers at http://127.0.0.1:${port}/status`);
  }, 120_000);

  test("logship status without http.listen says how to enable the endpoint", async () => {
    const ws = workspace("nolisten");
    const cfg = join(ws.dir, "logship.yaml");
    writeFileSync(cfg, `inputs:\n  - paths: ["${ws.logs}/*.log"]\nkafka:\n  brokers: ["${cluster.bootstraps}"]\n  topic: ${ws.topic}\n`);
    const r = await runLogship(["status", "--config", cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`logship: the agent's endpoint is off in ${cfg}: add\n  http:\n    listen: 127.0.0.1:9570\nto it and restart logship (http.listen is read at start only)`);
  });

  test("a taken port: exit 1 with one line, no stack trace; a bad address: a located config problem, exit 2", async () => {
    const ws = workspace("taken");
    writeFileSync(join(ws.logs, "a.log"), lines("a", 0, 10));
    const taken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("someone else") });
    try {
      const r = await runLogship(["run", "--config", config(ws, `127.0.0.1:${taken.port}`)]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe(`logship: error: cannot listen on 127.0.0.1:${taken.port} (http.listen): the address is already in use (another logship, or another program, listens there)`);
    } finally {
      taken.stop(true);
    }
    const cfg = config(ws, "127.0.0.1:70000");
    const bad = await runLogship(["run", "--config", cfg]);
    expect(bad.code).toBe(2);
    expect(bad.lines[0]).toBe(`${cfg}:9: http.listen: must be HOST:PORT, [IPV6]:PORT or PORT, with PORT from 0 to 65535 (0: any free port) (got "127.0.0.1:70000")`);
  });

  test("SIGHUP with another http.listen or log form: the reload applies the rest, says those keys wait for a restart, and the endpoint stays where it was", async () => {
    const ws = workspace("reload");
    writeFileSync(join(ws.logs, "a.log"), lines("r", 0, 100));
    const cfg = config(ws, "127.0.0.1:0");
    const agent = AgentProcess.run(cfg);
    procs.push(agent);
    const base = await endpointOf(agent);
    // Started (the signal handlers are installed once the first scan is done): the file is shipped.
    await eventually(async () => ((await (await fetch(`${base}/status`)).json()) as { files: { unread: number }[] }).files[0]?.unread === 0, { timeoutMs: 15_000 });
    const from = agent.lines.length;
    writeFileSync(cfg, readFileSync(cfg, "utf8").replace("listen: 127.0.0.1:0", `listen: 127.0.0.1:${freePort()}`) + "log:\n  format: json\n");
    agent.signal("SIGHUP");
    await agent.waitForLine(/ config reloaded /, { after: from });
    const warn = await agent.waitForLine(/WARN config reloaded, but these keys apply only at the next start/, { after: from });
    expect(warn).toContain("keys=http.listen,log.format ");
    expect(warn).toContain('log.format="text (wanted json)"');
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect(await (await fetch(`${base}/metrics`)).text()).toContain("\nlogship_config_reloads_total 1\n");
    agent.signal("SIGTERM");
    expect(await agent.waitForExit(15_000)).toBe(0);
  }, 60_000);

  test("Kafka unreachable: /ready is 503 with the reason, /health 200, the backlog and the errors show in /metrics; log.format json", async () => {
    const ws = workspace("down");
    const data = lines("d", 0, 500);
    writeFileSync(join(ws.logs, "a.log"), data);
    const dead = freePort(); // nothing listens there
    const agent = AgentProcess.run(config(ws, "127.0.0.1:0", `127.0.0.1:${dead}`, "shutdown_timeout: 1s\nlog:\n  format: json\n"));
    procs.push(agent);
    const base = await endpointOf(agent);
    await agent.waitForLine(/Kafka send failed/, { timeoutMs: 30_000 });
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toMatch(/^Kafka sends failing for \d+ s \([A-Za-z_]+\)\n$/);
    const health = await fetch(`${base}/health`);
    expect([health.status, await health.text()]).toEqual([200, "ok\n"]);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain("\nlogship_kafka_up 0\n");
    expect(metrics).toContain(`\nlogship_unread_bytes ${Buffer.byteLength(data)}\n`);
    expect(metrics).toMatch(/\nlogship_send_errors_total\{code="[A-Za-z_]+"\} [1-9]\d*\n/);
    expect(metrics).toContain("\nlogship_lines_shipped_total 0\n");
    agent.signal("SIGTERM");
    expect(await agent.waitForExit(15_000)).toBe(0); // after shutdown_timeout, keeping what was acknowledged (nothing)
    // log.format: json: every line of the log is one JSON object.
    expect(agent.lines.length).toBeGreaterThan(4);
    for (const l of agent.lines) expect(Object.keys(JSON.parse(l) as object).slice(0, 3)).toEqual(["time", "level", "message"]);
  }, 60_000);
});
