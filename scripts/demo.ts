// The demo (`npm run demo`): logship end to end on this machine in a few seconds. Builds
// dist/logship if needed, starts librdkafka's mock Kafka cluster in a child process, writes
// a few realistic log files (levels, an access log, a CRLF line, multi-byte UTF-8) into a
// temp dir, runs `logship run --once`, reads the topic back with kcat and prints what
// arrived, then shows `logship check` with nothing left unread. Cleans up after itself;
// exits 0 on success, 1 with the reason otherwise.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative } from "node:path";
import { checkDelivery, defaultHost, ensureBuilt, ROOT, runLogship, writeConfig } from "../tests/helpers/agentProcess.ts";
import { consumeAll, type ConsumedRecord } from "../tests/helpers/consume.ts";
import { spawnMockCluster, type MockClusterProcess } from "../tests/helpers/mockProcess.ts";

const TOPIC = "demo-logs";
const PARTITIONS = 4;

function say(line = ""): void {
  process.stdout.write(`${line}\n`);
}

function heading(text: string): void {
  say();
  say(process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
}

function indent(text: string, by = "  "): string {
  return text.replace(/\n$/, "").split("\n").map((l) => by + l).join("\n");
}

/** A line as text, with \r and control bytes visible. */
function visible(line: Buffer): string {
  return line.toString("utf8").replace(/\r/g, "\\r").replace(/[\x00-\x08\x0b-\x1f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

function n(x: number): string {
  return x.toLocaleString("en-US");
}

// --- sample logs -------------------------------------------------------------------------

const USERS = ["ana", "bo", "chen", "dmitri", "eve"];
const PATHS = ["/", "/api/orders", "/api/orders/42", "/login", "/static/app.js", "/health"];

function appLog(start: number): string {
  const lines: string[] = [];
  for (let i = 0; i < 400; i++) {
    const ts = new Date(start + i * 750).toISOString();
    const level = i % 97 === 0 ? "ERROR" : i % 13 === 0 ? "WARN" : i % 5 === 0 ? "DEBUG" : "INFO";
    const user = USERS[i % USERS.length];
    const msg =
      level === "ERROR" ? `payment failed for order ${1000 + i}: upstream timeout after 3000 ms` :
      level === "WARN" ? `slow query (${120 + (i % 40)} ms): SELECT * FROM orders WHERE user = '${user}'` :
      `request handled user=${user} order=${1000 + i} items=${(i % 7) + 1}`;
    lines.push(`${ts} ${level.padEnd(5)} [app] ${msg}\n`);
    if (i === 200) lines.push(`${ts} INFO  [app] customer note: “Café crème, s'il vous plaît” — 東京 ✓ 🚚\n`);
  }
  return lines.join("");
}

function accessLog(start: number): string {
  const lines: string[] = [];
  for (let i = 0; i < 300; i++) {
    const t = new Date(start + i * 1000);
    const stamp = t.toUTCString().replace(/^\w+, (\d+) (\w+) (\d+) ([\d:]+) GMT$/, "$1/$2/$3:$4 +0000");
    const status = i % 41 === 0 ? 500 : i % 11 === 0 ? 404 : 200;
    lines.push(`10.0.${i % 4}.${(i * 7) % 250} - - [${stamp}] "GET ${PATHS[i % PATHS.length]} HTTP/1.1" ${status} ${512 + ((i * 37) % 4096)} "-" "curl/8.5.0"\n`);
  }
  return lines.join("");
}

function workerLog(start: number): string {
  const lines: string[] = [];
  for (let i = 0; i < 150; i++) {
    const ts = new Date(start + i * 2000).toISOString();
    const eol = i === 75 ? "\r\n" : "\n"; // one line written by a Windows tool: shipped with its \r
    lines.push(`${ts} INFO  [worker-${i % 3}] job ${5000 + i} done in ${40 + (i % 90)} ms${eol}`);
  }
  return lines.join("");
}

// --- the demo ----------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  heading("logship demo");
  const binary = ensureBuilt();
  const version = await runLogship(["--version"]);
  say(`  binary   ${relative(ROOT, binary)} (${version.stdout.trim()})`);

  const dir = mkdtempSync(join(tmpdir(), "logship-demo-"));
  let cluster: MockClusterProcess | undefined;
  try {
    cluster = await spawnMockCluster({ brokers: 1, topics: [`${TOPIC}:${PARTITIONS}`] });
    say(`  kafka    librdkafka mock cluster at ${cluster.bootstraps}, topic "${TOPIC}" (${PARTITIONS} partitions)`);

    const logs = join(dir, "logs");
    mkdirSync(logs);
    const t0 = Date.parse("2026-03-14T09:00:00Z");
    const files = new Map<string, Buffer>();
    for (const [name, text] of [["app.log", appLog(t0)], ["access.log", accessLog(t0)], ["worker.log", workerLog(t0)]] as const) {
      const path = join(logs, name);
      writeFileSync(path, text);
      files.set(path, readFileSync(path));
    }
    const totalBytes = [...files.values()].reduce((s, b) => s + b.length, 0);
    const totalLines = [...files.values()].reduce((s, b) => s + b.toString("latin1").split("\n").length - 1, 0);
    say(`  logs     ${logs}: ${files.size} files, ${n(totalLines)} lines, ${n(totalBytes)} bytes`);

    const config = writeConfig(
      dir,
      `# written by scripts/demo.ts
inputs:
  - paths: ["logs/*.log"]       # relative to this file
kafka:
  brokers: ["${cluster.bootstraps}"]
  topic: ${TOPIC}
state:
  path: state/offsets.db
stats_interval: 0
`,
    );
    heading("Config");
    say(indent(readFileSync(config, "utf8")));

    heading(`$ logship run --once --config ${config}`);
    const run = await runLogship(["run", "--once", "--config", config], { timeoutMs: 20_000 });
    say(indent(run.stderr));
    say(`  → exit ${run.code} in ${n(run.ms)} ms, peak RSS ${n(Math.round(run.peakRssKiB / 1024))} MiB`);
    if (run.code !== 0) throw new Error(`logship run --once exited ${run.code}`);

    heading(`What arrived in topic "${TOPIC}" (read back with kcat)`);
    const records = await consumeAll(cluster.bootstraps, TOPIC);
    const report = checkDelivery(records, files, { host: defaultHost(), duplicates: "forbid" });
    const rows = [["FILE", "PARTITION", "RECORDS", "LINES", "BYTES"]];
    for (const [path, f] of report.files) rows.push([basename(path), String(f.partition), String(f.records), n(f.lines), n(f.bytes)]);
    rows.push(["total", "", String(report.records), n(report.lines), n(report.bytes)]);
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) say("  " + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("   "));
    say(`  ✓ every line arrived exactly once, byte for byte, in file order (CRLF and UTF-8 included)`);

    const first = records.find((r) => r.headers.offset === "0" && r.key.endsWith("app.log")) as ConsumedRecord;
    heading("The first record of app.log");
    say(`  key       ${first.key}`);
    say(`  headers   ${Object.entries(first.headers).map(([k, v]) => `${k}=${v}`).join("  ")}`);
    say(`  value     ${n(first.value.length)} bytes, ${n(first.value.toString("latin1").split("\n").length - 1)} lines; the first few:`);
    for (const l of first.value.toString("latin1").split("\n").slice(0, 4)) say(`    ${visible(Buffer.from(l, "latin1"))}`);
    for (const [label, pick] of [
      ["the multi-byte UTF-8 line", (v: Buffer) => v.indexOf("東京")],
      ["the CRLF line", (v: Buffer) => v.indexOf("\r\n")],
    ] as const) {
      const rec = records.find((r) => pick(r.value) >= 0)!;
      const at = pick(rec.value);
      const lineStart = rec.value.lastIndexOf(0x0a, at) + 1;
      const line = rec.value.subarray(lineStart, rec.value.indexOf(0x0a, at)); // without its "\n"
      say(`  ${label} (${basename(rec.key)}, byte ${n(Number(rec.headers.offset) + lineStart)}):`);
      say(`    ${visible(line)}`);
    }

    heading(`$ logship check --config ${config}`);
    const check = await runLogship(["check", "--config", config]);
    say(indent(check.stdout));
    if (check.code !== 0) throw new Error(`logship check exited ${check.code}: ${check.stderr}`);
    const unread = [...check.stdout.matchAll(/^\/\S+\s+\S+\s+\d+\s+\d+\s+(\d+)/gm)].map((m) => Number(m[1]));
    if (unread.length !== files.size || unread.some((u) => u !== 0)) throw new Error("check does not show every file fully read");
    say(`  ✓ ${files.size} files, 0 bytes unread`);
  } finally {
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  heading(`Done in ${((performance.now() - started) / 1000).toFixed(1)} s: the mock cluster is stopped and the temp dir removed.`);
  say("Next: `npm test` runs every test; README.md has the configuration reference.");
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
