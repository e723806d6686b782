// Benchmark harness (issue 5): measures the compiled binary against kcat's raw produce, on
// the same bytes, in the same run, on the librdkafka mock cluster (a separate process, so
// its CPU is not counted as logship's).
//
//   npm run bench                       build, then every scenario, 3 runs each
//   npm run bench -- --quick            the same, small: a smoke run (about a minute)
//   bun scripts/bench.ts [options]      without the build
//     --scenario NAME[,NAME]   backlog, many-files, long-lines, short-lines, line, json,
//                              line-multiline, live-tail, idle (default all), and
//                              many-files-100k (slow: never part of all, nor of CI)
//     --compression LIST       backlog's variants: none,gzip,snappy,lz4,zstd (default none,gzip;
//                              with --kafka real: none,zstd)
//     --kafka mock|real        the cluster: librdkafka's mock (default), or a real Apache Kafka
//                              broker (tests/helpers/realKafka.ts, KRaft, log dirs on /dev/shm);
//                              with real, the default scenario is backlog
//     --runs N                 runs per tool and variant, alternating kcat, logship, ... (default 3)
//     --quick                  small sizes and short windows: a smoke run
//     --json                   the results as JSON on stdout (the table goes to stderr)
//     --partitions N           partitions of every topic (default 16)
//     --max-open-files N       set logship's max_open_files (default: logship's default)
//     --set KEY=VALUE          any other logship setting: max_inflight_bytes=8MiB,
//                              kafka.target_message_bytes=64KiB, input.KEY, state.KEY (repeatable)
//     --bin PATH               the logship binary (default dist/logship)
//     --keep                   keep the generated logs and run directories
//     --profile                instead of measuring: profile `bun SRC/main.ts run --once` on the
//                              backlog set, or the one --scenario given (bun --cpu-prof), and
//                              print where the time goes
//     --profile-binary         the same on the compiled binary (BUN_OPTIONS=--cpu-prof; names minified)
//     --src DIR                the source tree --profile runs (default this repository)
//     --summarize-profile FILE print the summary of a .cpuprofile written earlier
//
// What is measured. Throughput scenarios run `logship run --once` from an empty state (fresh
// topic, fresh state file, default settings except brokers, topic, state and compression)
// and kcat on the same bytes concatenated into one file, one Kafka record per line:
//   kcat -P -b BS -t T -X acks=all -X batch.num.messages=50000 -X batch.size=2000000
//        -X message.max.bytes=2000000 -X queue.buffering.max.messages=500000 -l FILE
// (plus -X compression.codec=CODEC for a compressed variant). Wall time is taken here, around the
// process; user+sys CPU and peak RSS come from /usr/bin/time (or /proc and rusage without it).
// MB are 10^6 bytes. Each logship run is verified: exit 0, its `logship stopped lines= bytes=`
// line equals the generated set, `logship check` shows 0 unread for every file, and the
// topic's high watermarks add up to its records (kcat's add up to the lines). The mock keeps
// only ~5 MB per partition, so counts, not contents, are checked.
// line, json and line-multiline (issue 14) ship the backlog set with `format: line`, `format: json`,
// and `format: line` with `multiline: {start: '^\d{4}-\d{2}-\d{2}T'}` over the backlog set with
// stack-trace continuation lines after 20% of its lines; kcat sends the same bytes, one record
// per line. They are verified as the others, and logship's records must be one per line (one
// per event with multiline; json ships more bytes than the file, so its bytes are not compared).
// live-tail appends stamped lines at a steady rate while `logship run` follows them and a kcat
// consumer reads the topic: delay = time the line is seen by the consumer - time it was
// appended, an upper bound of append→ack (the same lines produced by kafkajs from this process
// give the floor of that measurement). idle measures CPU and RSS with 1,000 files tracked
// and nothing written. many-files-100k (issue 11, item 19) is many-files at 100,000 files of
// 1 KB (10,000 with --quick): `run --once` against kcat as above, then an idle phase: `logship
// run` restarted on the state of the last --once run, over the same, already shipped files;
// once it has added them all, it settles for 10 s (catch-up, descriptors handed round) and its
// CPU (% of one core) and RSS are measured over a 30 s window. Inputs live on tmpfs (/dev/shm)
// and are removed at the end.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import { spawnMockCluster, type MockClusterProcess } from "../tests/helpers/mockProcess.ts";
import { removeClusterDir, startRealCluster } from "../tests/helpers/realKafka.ts";
import { Kafka, logLevel } from "kafkajs";
import { generateLogs, LineMaker, type GeneratedLogs } from "./gen-logs.ts";

const ROOT = resolve(import.meta.dir, "..");
const TIME = "/usr/bin/time";
const KCAT_PRODUCE = ["-X", "acks=all", "-X", "batch.num.messages=50000", "-X", "batch.size=2000000", "-X", "message.max.bytes=2000000", "-X", "queue.buffering.max.messages=500000"];
const MB = 1e6;

// --- options -----------------------------------------------------------------------------

const SCENARIOS = ["backlog", "many-files", "long-lines", "short-lines", "line", "json", "line-multiline", "live-tail", "idle"] as const;
/** Scenarios run only when named: too slow for `all`. */
const SLOW_SCENARIOS = ["many-files-100k"] as const;
type ScenarioName = (typeof SCENARIOS)[number] | (typeof SLOW_SCENARIOS)[number];
type Compression = "none" | "gzip" | "snappy" | "lz4" | "zstd";
const COMPRESSIONS: readonly Compression[] = ["none", "gzip", "snappy", "lz4", "zstd"];

interface Options {
  scenarios: ScenarioName[];
  compressions: Compression[];
  kafka: "mock" | "real";
  runs: number;
  quick: boolean;
  json: boolean;
  partitions: number;
  set: Record<string, string>; // extra logship config, "kafka.target_message_bytes" → "64KiB"
  bin: string;
  keep: boolean;
  profile: boolean;
  profileBinary: boolean;
  src: string;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      scenario: { type: "string", multiple: true },
      compression: { type: "string" },
      kafka: { type: "string", default: "mock" },
      runs: { type: "string", default: "3" },
      quick: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      partitions: { type: "string", default: "16" },
      "max-open-files": { type: "string" },
      set: { type: "string", multiple: true },
      bin: { type: "string", default: join(ROOT, "dist/logship") },
      keep: { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      "profile-binary": { type: "boolean", default: false },
      src: { type: "string", default: ROOT },
      "summarize-profile": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values["summarize-profile"]) {
    summarizeProfile(JSON.parse(readFileSync(values["summarize-profile"], "utf8")), resolve(values.src!));
    process.exit(0);
  }
  if (values.help) {
    const lines = readFileSync(import.meta.path, "utf8").split("\n");
    console.log(lines.slice(0, lines.findIndex((l) => !l.startsWith("//"))).map((l) => l.slice(3)).join("\n"));
    process.exit(0);
  }
  if (values.kafka !== "mock" && values.kafka !== "real") usage(`--kafka takes mock or real, got "${values.kafka}"`);
  const real = values.kafka === "real";
  const names = (values.scenario ?? [real ? "backlog" : "all"]).flatMap((s) => s.split(",")).map((s) => s.trim());
  const scenarios = names.includes("all") ? [...SCENARIOS] : names.map((n) => {
    if (![...SCENARIOS, ...SLOW_SCENARIOS].includes(n as ScenarioName)) usage(`unknown scenario "${n}"; known: ${[...SCENARIOS, ...SLOW_SCENARIOS].join(", ")}, all`);
    return n as ScenarioName;
  });
  const compressions = (values.compression ?? (real ? "none,zstd" : "none,gzip")).split(",").map((c) => {
    if (!(COMPRESSIONS as readonly string[]).includes(c)) usage(`--compression takes a list of ${COMPRESSIONS.join(", ")}, got "${c}"`);
    return c as Compression;
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) usage(`--runs must be a positive integer, got "${values.runs}"`);
  const partitions = Number(values.partitions);
  if (!Number.isInteger(partitions) || partitions < 1) usage(`--partitions must be a positive integer`);
  const mof = values["max-open-files"];
  return {
    scenarios, compressions, runs, partitions, kafka: real ? "real" : "mock",
    quick: values.quick!, json: values.json!, keep: values.keep!, profile: values.profile! || values["profile-binary"]!,
    profileBinary: values["profile-binary"]!, src: resolve(values.src!),
    set: settingsFrom(values.set ?? [], mof),
    bin: resolve(values.bin!),
  };
}

/** --set KEY=VALUE (KEY: a top-level key, kafka.KEY, state.KEY or input.KEY) and --max-open-files. */
function settingsFrom(pairs: string[], maxOpenFiles: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf("=");
    if (i <= 0) usage(`--set takes KEY=VALUE (e.g. kafka.target_message_bytes=64KiB), got "${p}"`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  if (maxOpenFiles !== undefined) out.max_open_files = maxOpenFiles;
  return out;
}

function usage(message: string): never {
  console.error(`bench: ${message} (see bun scripts/bench.ts --help)`);
  process.exit(2);
}

// kafkajs (the live-tail floor's producer) arms timers with negative delays, and Bun prints a
// TimeoutNegativeWarning from native code (no process.emitWarning, no "warning" listener can
// stop it). Such timers run after 1 ms anyway; clamping them only removes the noise.
const setTimeoutAsGiven = globalThis.setTimeout;
globalThis.setTimeout = Object.assign(
  (handler: (...a: unknown[]) => void, delay?: number, ...args: unknown[]) => setTimeoutAsGiven(handler, typeof delay === "number" && delay < 0 ? 1 : delay, ...args),
  setTimeoutAsGiven,
) as typeof setTimeout;

/** Progress and tables go to stderr when --json owns stdout. */
let say: (line: string) => void = (line) => console.log(line);

// --- processes -----------------------------------------------------------------------------

const children = new Set<Subprocess>();

function spawn(cmd: string[], opts: Parameters<typeof Bun.spawn>[1] = {}): Subprocess {
  const p = Bun.spawn(cmd, { stdin: "ignore", stdout: "ignore", stderr: "ignore", ...opts });
  children.add(p);
  void p.exited.finally(() => children.delete(p));
  return p;
}

async function output(cmd: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout as ReadableStream).text(), new Response(p.stderr as ReadableStream).text(), p.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

const CLK_TCK = 100; // Linux USER_HZ; /proc/PID/stat counts CPU in these ticks

/** user+sys CPU seconds of a live process, all threads. */
function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Current and peak resident set, MB. */
function procMemory(pid: number): { rssMB: number; peakMB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssMB: (kb("VmRSS") * 1024) / MB, peakMB: (kb("VmHWM") * 1024) / MB };
}

interface Measured {
  code: number;
  wallS: number;
  userS: number;
  sysS: number;
  peakRssMB: number;
}

const haveTime = existsSync(TIME);

/** Runs a command to its end: wall time here, CPU and peak RSS from /usr/bin/time (or /proc + rusage). */
async function measure(cmd: string[], stderrPath: string, stdoutPath = "/dev/null", env?: Record<string, string>): Promise<Measured> {
  const io = { stdout: Bun.file(stdoutPath), stderr: Bun.file(stderrPath), env: env ? { ...process.env, ...env } : undefined };
  if (haveTime) {
    const timeFile = `${stderrPath}.time`;
    const t0 = performance.now();
    const p = spawn([TIME, "-f", "%e %U %S %M", "-o", timeFile, ...cmd], io);
    const code = await p.exited;
    const wallS = (performance.now() - t0) / 1000;
    const last = readFileSync(timeFile, "utf8").trim().split("\n").pop() ?? "";
    const [, user, sys, maxKb] = last.split(" ").map(Number);
    return { code, wallS, userS: user!, sysS: sys!, peakRssMB: (maxKb! * 1024) / MB };
  }
  // Without /usr/bin/time: VmHWM polled from /proc (exact for the exec'ed image), CPU from rusage.
  const t0 = performance.now();
  const p = spawn(cmd, io);
  let peak = 0;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, procMemory(p.pid).peakMB);
    } catch {
      // exited between polls
    }
  }, 20);
  const code = await p.exited;
  clearInterval(timer);
  const wallS = (performance.now() - t0) / 1000;
  const ru = p.resourceUsage();
  return { code, wallS, userS: Number(ru?.cpuTime.user ?? 0) / 1e6, sysS: Number(ru?.cpuTime.system ?? 0) / 1e6, peakRssMB: peak };
}

// --- Kafka ---------------------------------------------------------------------------------

let topicSeq = 0;

/**
 * The cluster of a run: the mock in its own process, or (--kafka real) a real single broker,
 * a JVM whose CPU is not logship's either, its log dirs on tmpfs like the inputs. Both answer
 * the bench's one command, "topic NAME:PARTITIONS".
 */
async function startKafka(b: Bench): Promise<MockClusterProcess> {
  if (b.opts.kafka === "mock") return spawnMockCluster();
  const cluster = await startRealCluster({ dir: `/dev/shm/logship-bench-kafka-${process.pid}`, props: { "log.segment.bytes": 256 * 1024 * 1024, "message.max.bytes": 4 * 1024 * 1024 } }); // kcat sends batches of up to 2 MB
  return {
    bootstraps: cluster.env("plaintext").BOOTSTRAP,
    async command(line: string) {
      const m = /^topic (\S+):(\d+)$/.exec(line);
      if (!m) return `error: the real cluster answers only "topic NAME:PARTITIONS", not ${JSON.stringify(line)}`;
      await cluster.createTopic(m[1]!, { partitions: Number(m[2]) });
      return "ok";
    },
    async close() {
      await cluster.stop();
      removeClusterDir(cluster.dir);
    },
  };
}

async function freshTopic(mock: MockClusterProcess, prefix: string, partitions: number): Promise<string> {
  const name = `${prefix}-${Date.now().toString(36)}-${topicSeq++}`;
  const reply = await mock.command(`topic ${name}:${partitions}`);
  if (reply !== "ok") throw new Error(`mock cluster: cannot create topic ${name}: ${reply}`);
  return name;
}

/** Records per partition (high watermarks) of a topic: what was produced, even if the mock dropped old data. */
async function watermarks(bootstraps: string, topic: string, partitions: number): Promise<number[]> {
  const args = ["kcat", "-Q", "-b", bootstraps];
  for (let p = 0; p < partitions; p++) args.push("-t", `${topic}:${p}:-1`);
  const r = await output(args, 30_000);
  const out = new Array<number>(partitions).fill(0);
  for (const m of r.stdout.matchAll(/\[(\d+)\] offset (-?\d+)/g)) out[Number(m[1])] = Math.max(0, Number(m[2]));
  return out;
}

// --- logship -------------------------------------------------------------------------------

interface LogshipConfig {
  glob: string;
  bootstraps: string;
  topic: string;
  statePath: string;
  compression?: Compression;
  set?: Record<string, string>; // see --set
}

/** logship's config: defaults except brokers, topic, state, compression and what --set gives. */
function writeConfig(path: string, c: LogshipConfig): void {
  const section = (name: string) => Object.entries(c.set ?? {}).filter(([k]) => k.startsWith(`${name}.`)).map(([k, v]) => [k.slice(name.length + 1), v] as const);
  const top = Object.entries(c.set ?? {}).filter(([k]) => !/^(kafka|state|input)\./.test(k));
  const lines = [
    "inputs:",
    `  - paths: [${JSON.stringify(c.glob)}]`,
    ...section("input").map(([k, v]) => `    ${k}: ${v}`),
    "kafka:",
    `  brokers: [${c.bootstraps.split(",").map((b) => JSON.stringify(b)).join(", ")}]`,
    `  topic: ${c.topic}`,
    ...(c.compression && c.compression !== "none" ? [`  compression: ${c.compression}`] : []),
    ...section("kafka").map(([k, v]) => `  ${k}: ${v}`),
    "state:",
    `  path: ${JSON.stringify(c.statePath)}`,
    ...section("state").map(([k, v]) => `  ${k}: ${v}`),
    ...top.map(([k, v]) => `${k}: ${v}`),
  ];
  writeFileSync(path, lines.join("\n") + "\n");
}

/** The fields of logship's final `logship stopped ... lines=N bytes=N records=N [bytes_lost=N ...]` line. */
function stoppedLine(stderr: string): { lines: number; bytes: number; records: number; unacknowledged: number; losses: string[] } | null {
  const line = stderr.split("\n").findLast((l) => / logship stopped/.test(l));
  if (!line) return null;
  const f = Object.fromEntries([...line.matchAll(/ (\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
  if (f.lines === undefined || f.bytes === undefined || f.records === undefined) return null;
  const losses = ["bytes_lost", "records_dropped", "lines_truncated", "lines_dropped"].filter((k) => f[k] !== undefined && f[k] !== "0").map((k) => `${k}=${f[k]}`);
  return { lines: Number(f.lines), bytes: Number(f.bytes), records: Number(f.records), unacknowledged: Number(f.unacknowledged_bytes ?? 0), losses };
}

/** `logship check`: how many files it lists and their unread bytes in total. */
async function checkUnread(bin: string, config: string): Promise<{ files: number; unread: number; ok: boolean }> {
  const r = await output([bin, "check", "--config", config], 60_000);
  let files = 0;
  let unread = 0;
  for (const line of r.stdout.split("\n")) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 5 || !cols[0]!.startsWith("/")) continue;
    files++;
    unread += cols[4] === "-" ? Number.NaN : Number(cols[4]);
  }
  return { files, unread, ok: r.code === 0 };
}

// --- results -------------------------------------------------------------------------------

interface Run {
  tool: "kcat" | "logship";
  run: number;
  topic: string;
  wallS: number;
  userS: number;
  sysS: number;
  cpuS: number;
  peakRssMB: number;
  mbPerS: number;
  linesPerS: number;
  records: number;
  partitionsUsed: number;
  verified: boolean;
  problems: string[];
}

interface Summary {
  tool: "kcat" | "logship";
  runs: number;
  verified: number;
  mbPerS: number;
  linesPerS: number;
  wallS: number;
  cpuS: number;
  cpuSPerGB: number;
  peakRssMB: number;
  recordsPerRun: number;
}

interface ThroughputResult {
  scenario: string;
  kind: "throughput";
  data: { files: number; bytes: number; lines: number; minLine: number; maxLine: number };
  compression: Compression;
  kcatInput: string;
  summaries: { kcat: Summary; logship: Summary };
  ratio: { mbPerS: number; cpuS: number; peakRss: number };
  runs: Run[];
}

interface LiveTailResult {
  scenario: "live-tail";
  kind: "live-tail";
  files: number;
  targetLinesPerS: number;
  seconds: number;
  written: number;
  received: number;
  achievedLinesPerS: number;
  delayMs: { p50: number; p90: number; p99: number; max: number; samples: number; warmupExcludedS: number };
  cpuSPerS: number;
  peakRssMB: number;
  rssEndMB: number;
  floor: { tool: string; written: number; received: number; delayMs: { p50: number; p90: number; p99: number; max: number; samples: number; warmupExcludedS: number } };
  verified: boolean;
  problems: string[];
}

interface IdleResult {
  scenario: string; // idle, or many-files-100k/idle
  kind: "idle";
  files: number;
  seconds: number;
  cpuPercentOfOneCore: number;
  rssMB: number;
  peakRssMB: number;
  verified: boolean;
  problems: string[];
}

type Result = ThroughputResult | LiveTailResult | IdleResult;

function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function summarize(tool: "kcat" | "logship", runs: Run[], bytes: number): Summary {
  const mine = runs.filter((r) => r.tool === tool);
  const cpu = median(mine.map((r) => r.cpuS));
  return {
    tool,
    runs: mine.length,
    verified: mine.filter((r) => r.verified).length,
    mbPerS: median(mine.map((r) => r.mbPerS)),
    linesPerS: median(mine.map((r) => r.linesPerS)),
    wallS: median(mine.map((r) => r.wallS)),
    cpuS: cpu,
    cpuSPerGB: cpu / (bytes / 1e9),
    peakRssMB: median(mine.map((r) => r.peakRssMB)),
    recordsPerRun: median(mine.map((r) => r.records)),
  };
}

// --- scenarios -----------------------------------------------------------------------------

interface DataSpec {
  files: number;
  totalBytes: number;
  minLine: number;
  maxLine: number;
  continuation?: number; // share of lines followed by stack-trace lines (gen-logs.ts)
}

/** The logship settings a scenario itself sets (the event formats); --set adds to them and wins. */
function scenarioSettings(name: ScenarioName): Record<string, string> {
  switch (name) {
    case "line":
      return { "input.format": "line" };
    case "json":
      return { "input.format": "json" };
    case "line-multiline":
      return { "input.format": "line", "input.multiline": "{start: '^\\d{4}-\\d{2}-\\d{2}T'}" };
    default:
      return {};
  }
}

function settingsOf(b: Bench, name: ScenarioName): Record<string, string> {
  return { ...scenarioSettings(name), ...b.opts.set };
}

interface Bench {
  opts: Options;
  work: string; // the tmpfs directory of this bench run
}

function dataSpec(name: ScenarioName, quick: boolean): DataSpec {
  switch (name) {
    case "backlog":
      return { files: 8, totalBytes: quick ? 24e6 : 250e6, minLine: 80, maxLine: 250 };
    case "many-files":
      return { files: quick ? 1_000 : 10_000, totalBytes: (quick ? 1_000 : 10_000) * 20_000, minLine: 80, maxLine: 250 };
    case "long-lines":
      return { files: 4, totalBytes: quick ? 16e6 : 128e6, minLine: 4096, maxLine: 16384 };
    case "short-lines":
      return { files: 4, totalBytes: quick ? 8e6 : 64e6, minLine: 40, maxLine: 40 };
    case "many-files-100k":
      return { files: quick ? 10_000 : 100_000, totalBytes: (quick ? 10_000 : 100_000) * 1_000, minLine: 80, maxLine: 250 };
    case "line":
    case "json":
      return dataSpec("backlog", quick);
    case "line-multiline":
      return { ...dataSpec("backlog", quick), continuation: 0.2 };
    default:
      throw new Error(`${name} is not a throughput scenario`);
  }
}

/** `after` runs with the data and the cluster still there, given the last logship run's directory (kept for it). */
async function throughput(b: Bench, name: ScenarioName, after?: (mock: MockClusterProcess, data: GeneratedLogs, lastRun: string) => Promise<IdleResult>): Promise<Result[]> {
  const spec = dataSpec(name, b.opts.quick);
  const dir = join(b.work, name);
  const concat = join(b.work, `${name}.concat`);
  say(`\n== ${name}: generating ${spec.files} files, ${(spec.totalBytes / MB).toFixed(0)} MB, lines ${spec.minLine}–${spec.maxLine} B`);
  const t0 = performance.now();
  const data = generateLogs({ dir: join(dir, "logs"), files: spec.files, totalBytes: spec.totalBytes, minLine: spec.minLine, maxLine: spec.maxLine, seed: 1, concat, continuation: spec.continuation });
  say(`   ${data.lines} lines${spec.continuation ? ` (${data.events} events)` : ""}, ${data.bytes} bytes in ${((performance.now() - t0) / 1000).toFixed(1)} s; logship: ${Object.entries(settingsOf(b, name)).map(([k, v]) => `${k}=${v}`).join(" ") || "defaults"}`);
  const mock = await startKafka(b);
  const out: Result[] = [];
  let lastRun: string | null = null;
  try {
    const variants: Compression[] = name === "backlog" ? b.opts.compressions : ["none"];
    for (const compression of variants) {
      const label = name === "backlog" ? `${name}/${compression}` : name;
      const runs: Run[] = [];
      for (let i = 1; i <= b.opts.runs; i++) {
        runs.push(await kcatRun(b, mock, label, i, data, concat, compression));
        say(line(runs.at(-1)!));
        const keep = after && i === b.opts.runs ? (lastRun = join(b.work, "runs", `kept-${label.replace("/", "-")}`)) : undefined;
        runs.push(await logshipRun(b, mock, label, i, data, join(dir, "logs"), compression, settingsOf(b, name), keep));
        say(line(runs.at(-1)!));
      }
      const kcat = summarize("kcat", runs, data.bytes);
      const logship = summarize("logship", runs, data.bytes);
      out.push({
        scenario: label,
        kind: "throughput",
        data: { files: data.files.length, bytes: data.bytes, lines: data.lines, minLine: spec.minLine, maxLine: spec.maxLine },
        compression,
        kcatInput: "the files concatenated into one, one kcat -l run",
        summaries: { kcat, logship },
        ratio: { mbPerS: logship.mbPerS / kcat.mbPerS, cpuS: logship.cpuS / kcat.cpuS, peakRss: logship.peakRssMB / kcat.peakRssMB },
        runs,
      });
    }
    if (after && lastRun) out.push(await after(mock, data, lastRun));
  } finally {
    await mock.close();
    if (!b.opts.keep) {
      rmSync(dir, { recursive: true, force: true });
      rmSync(concat, { force: true });
      if (lastRun) rmSync(lastRun, { recursive: true, force: true });
    }
  }
  return out;
}

function line(r: Run): string {
  const v = r.verified ? "ok" : `NOT VERIFIED: ${r.problems.join("; ")}`;
  return `   ${r.tool.padEnd(7)} run ${r.run}: ${r.mbPerS.toFixed(1).padStart(6)} MB/s  ${r.wallS.toFixed(2)} s  cpu ${r.cpuS.toFixed(2)} s  rss ${r.peakRssMB.toFixed(0)} MB  records ${r.records}  ${v}`;
}

async function kcatRun(b: Bench, mock: MockClusterProcess, label: string, i: number, data: GeneratedLogs, concat: string, compression: Compression): Promise<Run> {
  const P = b.opts.partitions;
  const topic = await freshTopic(mock, `kcat-${label.replace("/", "-")}`, P);
  const runDir = join(b.work, "runs", topic);
  mkdirSync(runDir, { recursive: true });
  const cmd = ["kcat", "-P", "-b", mock.bootstraps, "-t", topic, ...KCAT_PRODUCE, ...(compression !== "none" ? ["-X", `compression.codec=${compression}`] : []), "-l", concat];
  const m = await measure(cmd, join(runDir, "stderr.log"));
  const marks = await watermarks(mock.bootstraps, topic, P);
  const records = marks.reduce((a, n) => a + n, 0);
  const problems: string[] = [];
  if (m.code !== 0) problems.push(`exit ${m.code}: ${readFileSync(join(runDir, "stderr.log"), "utf8").slice(-300)}`);
  if (records !== data.lines) problems.push(`topic holds ${records} records, expected ${data.lines} (one per line)`);
  if (!b.opts.keep) rmSync(runDir, { recursive: true, force: true });
  return runOf("kcat", i, topic, m, data, records, marks, problems);
}

/** `keepIn`: the run's directory (config, state, stderr), kept for what follows (the caller removes it). */
async function logshipRun(b: Bench, mock: MockClusterProcess, label: string, i: number, data: GeneratedLogs, logs: string, compression: Compression, set: Record<string, string>, keepIn?: string): Promise<Run> {
  const P = b.opts.partitions;
  const topic = await freshTopic(mock, `logship-${label.replace("/", "-")}`, P);
  const runDir = keepIn ?? join(b.work, "runs", topic);
  mkdirSync(runDir, { recursive: true });
  const config = join(runDir, "logship.yaml");
  writeConfig(config, { glob: join(logs, "*.log"), bootstraps: mock.bootstraps, topic, statePath: join(runDir, "state.db"), compression, set });
  const stderrPath = join(runDir, "stderr.log");
  const m = await measure([b.opts.bin, "run", "--once", "--config", config], stderrPath);
  const stderr = readFileSync(stderrPath, "utf8");
  const problems: string[] = [];
  if (m.code !== 0) problems.push(`exit ${m.code}: ${stderr.slice(-300)}`);
  const stopped = stoppedLine(stderr);
  if (!stopped) problems.push("no `logship stopped` line on stderr");
  else {
    if (stopped.lines !== data.lines) problems.push(`shipped ${stopped.lines} lines, expected ${data.lines}`);
    // format: json ships an object per line (more bytes than the file); line and json ship a record per line.
    const format = set["input.format"] ?? "packed";
    const events = set["input.multiline"] !== undefined;
    if (format !== "json" && stopped.bytes !== data.bytes) problems.push(`shipped ${stopped.bytes} bytes, expected ${data.bytes}`);
    if (format !== "packed" && !events && stopped.records !== data.lines) problems.push(`sent ${stopped.records} records, expected ${data.lines} (format ${format}: one per line)`);
    if (format !== "packed" && events && stopped.records !== data.events) problems.push(`sent ${stopped.records} records, expected ${data.events} (format ${format} with multiline: one per event)`);
    if (stopped.unacknowledged > 0) problems.push(`${stopped.unacknowledged} bytes unacknowledged`);
    if (stopped.losses.length > 0) problems.push(`losses: ${stopped.losses.join(" ")}`);
  }
  const check = await checkUnread(b.opts.bin, config);
  if (!check.ok || check.files !== data.files.length || check.unread !== 0) problems.push(`logship check: ${check.files} files, ${check.unread} bytes unread (expected ${data.files.length} files, 0 unread)`);
  const marks = await watermarks(mock.bootstraps, topic, P);
  const records = marks.reduce((a, n) => a + n, 0);
  if (stopped && records !== stopped.records) problems.push(`topic holds ${records} records, logship says ${stopped.records}`);
  const errors = stderr.split("\n").filter((l) => / (ERROR|WARN) /.test(l));
  if (errors.length > 0) problems.push(`${errors.length} WARN/ERROR lines, first: ${errors[0]!.slice(0, 200)}`);
  if (!b.opts.keep && !keepIn) rmSync(runDir, { recursive: true, force: true });
  return runOf("logship", i, topic, m, data, records, marks, problems);
}

function runOf(tool: "kcat" | "logship", run: number, topic: string, m: Measured, data: GeneratedLogs, records: number, marks: number[], problems: string[]): Run {
  return {
    tool, run, topic,
    wallS: m.wallS, userS: m.userS, sysS: m.sysS, cpuS: m.userS + m.sysS, peakRssMB: m.peakRssMB,
    mbPerS: data.bytes / MB / m.wallS,
    linesPerS: data.lines / m.wallS,
    records,
    partitionsUsed: marks.filter((n) => n > 0).length,
    verified: problems.length === 0,
    problems,
  };
}

/** Waits until `check` returns truthy, polling; throws with `what` after `timeoutMs`. */
async function until<T>(what: string, timeoutMs: number, check: () => T | Promise<T>, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}

async function stopLogship(p: Subprocess, stderrPath: string): Promise<string> {
  p.kill("SIGTERM");
  const exited = await Promise.race([p.exited.then(() => true), Bun.sleep(35_000).then(() => false)]);
  if (!exited) {
    p.kill("SIGKILL");
    await p.exited;
  }
  return readFileSync(stderrPath, "utf8");
}

/** A kcat consumer of a topic's payloads that notes, per line, now - the line's leading timestamp. */
function stampedConsumer(bootstraps: string, topic: string) {
  const proc = spawn(["kcat", "-C", "-b", bootstraps, "-t", topic, "-o", "beginning", "-u", "-q", "-f", "%s", "-X", "fetch.wait.max.ms=10", "-X", "fetch.error.backoff.ms=10"], { stdout: "pipe" });
  const state = { received: 0, measureFrom: Number.POSITIVE_INFINITY, delays: [] as number[] };
  const reading = (async () => {
    let rest = "";
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
      const now = Date.now();
      const text = rest + Buffer.from(chunk).toString("latin1");
      let from = 0;
      for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", from)) {
        const stamp = Date.parse(text.slice(from, from + 24));
        state.received++;
        if (stamp >= state.measureFrom) state.delays.push(now - stamp);
        from = nl + 1;
      }
      rest = text.slice(from);
    }
  })();
  return {
    state,
    async stop(): Promise<void> {
      proc.kill("SIGTERM");
      await proc.exited;
      await reading.catch(() => {});
    },
  };
}

/**
 * Appends lines stamped with the current time at `rate` lines/s for `seconds`, round-robin over
 * the sinks, keeping the total on the rate line whatever the timer jitter. `onSteady` runs once
 * when the warm-up is over. Resolves with the number of lines written.
 */
async function steadyWriter(rate: number, seconds: number, warmupS: number, sinks: ((bytes: Buffer) => void)[], onSteady: (at: number) => void): Promise<number> {
  const maker = new LineMaker(7, 80, 250);
  let written = 0;
  const t0 = Date.now();
  const steadyAt = t0 + warmupS * 1000;
  const end = t0 + seconds * 1000;
  let steady = false;
  await new Promise<void>((done) => {
    const tick = setInterval(() => {
      const now = Date.now();
      if (!steady && now >= steadyAt) {
        steady = true;
        onSteady(now);
      }
      const due = Math.floor(((Math.min(now, end) - t0) / 1000) * rate);
      const batches: string[][] = sinks.map(() => []);
      for (; written < due; written++) batches[written % sinks.length]!.push(maker.line(undefined, now));
      batches.forEach((lines, i) => {
        if (lines.length > 0) sinks[i]!(Buffer.from(lines.join(""), "latin1"));
      });
      if (now >= end) {
        clearInterval(tick);
        done();
      }
    }, 5);
  });
  return written;
}

function delayStats(delays: number[], warmupS: number) {
  const sorted = [...delays].sort((a, c) => a - c);
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN, samples: sorted.length, warmupExcludedS: warmupS };
}

/**
 * The floor of the delay measurement: the same stamped lines sent straight from this process
 * by a kafkajs producer (one record per writer tick, acks=all), seen by the same consumer.
 * (kcat -P cannot serve: it reads a pipe to its end before producing.)
 */
async function liveTailFloor(b: Bench, mock: MockClusterProcess, rate: number, seconds: number, warmupS: number): Promise<LiveTailResult["floor"]> {
  const topic = await freshTopic(mock, "kafkajs-live", b.opts.partitions);
  const kafka = new Kafka({ clientId: "bench-floor", brokers: mock.bootstraps.split(","), logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const consumer = stampedConsumer(mock.bootstraps, topic);
  let failed = 0;
  const written = await steadyWriter(rate, seconds, warmupS, [(bytes) => {
    producer.send({ topic, acks: -1, messages: [{ value: bytes }] }).catch(() => failed++);
  }], (at) => (consumer.state.measureFrom = at));
  await until(`the consumer to see the floor's ${written} lines`, 20_000, () => consumer.state.received >= written, 100).catch(() => {});
  await producer.disconnect();
  await consumer.stop();
  return { tool: `kafkajs producer in the bench process${failed ? ` (${failed} sends failed)` : ""}`, written, received: consumer.state.received, delayMs: delayStats(consumer.state.delays, warmupS) };
}

async function liveTail(b: Bench): Promise<LiveTailResult> {
  const FILES = 4;
  const RATE = 20_000;
  const seconds = b.opts.quick ? 6 : 30;
  const warmupS = b.opts.quick ? 1 : 2;
  say(`\n== live-tail: ${RATE} lines/s to ${FILES} files for ${seconds} s (the first ${warmupS} s are warm-up)`);
  const dir = join(b.work, "live-tail");
  mkdirSync(join(dir, "logs"), { recursive: true });
  const paths = Array.from({ length: FILES }, (_, i) => join(dir, "logs", `live-${i + 1}.log`));
  for (const p of paths) writeFileSync(p, "");
  const mock = await startKafka(b);
  const problems: string[] = [];
  let agent: Subprocess | null = null;
  let consumer: ReturnType<typeof stampedConsumer> | null = null;
  const fds = paths.map((p) => openSync(p, "a"));
  try {
    const floor = await liveTailFloor(b, mock, RATE, Math.min(seconds, 10), warmupS);
    say(`   measuring floor (${floor.tool} → same consumer): p50 ${fmt(floor.delayMs.p50, 0)} ms, p99 ${fmt(floor.delayMs.p99, 0)} ms`);
    const topic = await freshTopic(mock, "logship-live", b.opts.partitions);
    const config = join(dir, "logship.yaml");
    writeConfig(config, { glob: join(dir, "logs", "*.log"), bootstraps: mock.bootstraps, topic, statePath: join(dir, "state.db"), set: b.opts.set });
    const stderrPath = join(dir, "stderr.log");
    agent = spawn([b.opts.bin, "run", "--config", config], { stderr: Bun.file(stderrPath) });
    const pid = agent.pid;
    await until("logship to add the live files", 15_000, () => (readFileSync(stderrPath, "utf8").match(/file added/g)?.length ?? 0) >= FILES);
    consumer = stampedConsumer(mock.bootstraps, topic);
    let cpuStart = 0;
    let cpuStartAt = 0;
    const c = consumer;
    const written = await steadyWriter(RATE, seconds, warmupS, fds.map((fd) => (bytes: Buffer) => {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off);
    }), (at) => {
      c.state.measureFrom = at;
      cpuStart = procCpuSeconds(pid);
      cpuStartAt = performance.now();
    });
    const cpuS = procCpuSeconds(pid) - cpuStart;
    const windowS = (performance.now() - cpuStartAt) / 1000;
    const mem = procMemory(pid);
    try {
      await until(`the consumer to see all ${written} lines`, 30_000, () => c.state.received >= written, 100);
    } catch (err) {
      problems.push(`${(err as Error).message}; seen ${c.state.received}`);
    }
    const stderr = await stopLogship(agent, stderrPath);
    agent = null;
    const stopped = stoppedLine(stderr);
    if (!stopped) problems.push("no `logship stopped` line");
    else if (stopped.lines !== written) problems.push(`logship acknowledged ${stopped.lines} lines, ${written} were written`);
    if (c.state.received > written) problems.push(`consumer saw ${c.state.received} lines for ${written} written (duplicates)`);
    await c.stop();
    consumer = null;
    return {
      scenario: "live-tail",
      kind: "live-tail",
      files: FILES,
      targetLinesPerS: RATE,
      seconds,
      written,
      received: c.state.received,
      achievedLinesPerS: written / seconds,
      delayMs: delayStats(c.state.delays, warmupS),
      cpuSPerS: cpuS / windowS,
      peakRssMB: mem.peakMB,
      rssEndMB: mem.rssMB,
      floor,
      verified: problems.length === 0,
      problems,
    };
  } finally {
    for (const fd of fds) closeSync(fd);
    agent?.kill("SIGKILL");
    await consumer?.stop();
    await mock.close();
    if (!b.opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** `agentCmd` replaces `BIN run` (e.g. to run the source under the profiler). */
async function idle(b: Bench, agentCmd: string[] = [b.opts.bin, "run"]): Promise<IdleResult> {
  const FILES = b.opts.quick ? 200 : 1_000;
  const seconds = b.opts.quick ? 5 : 30;
  say(`\n== idle: ${FILES} files tracked, nothing written for ${seconds} s`);
  const dir = join(b.work, "idle");
  const data = generateLogs({ dir: join(dir, "logs"), files: FILES, totalBytes: FILES * 2_000, seed: 3 });
  const mock = await startKafka(b);
  const problems: string[] = [];
  let agent: Subprocess | null = null;
  try {
    const topic = await freshTopic(mock, "logship-idle", b.opts.partitions);
    const config = join(dir, "logship.yaml");
    writeConfig(config, { glob: join(dir, "logs", "*.log"), bootstraps: mock.bootstraps, topic, statePath: join(dir, "state.db"), set: b.opts.set });
    const stderrPath = join(dir, "stderr.log");
    agent = spawn([...agentCmd, "--config", config], { stderr: Bun.file(stderrPath) });
    const pid = agent.pid;
    // Caught up once `check` (which reads the saved offsets) shows nothing unread.
    await until("logship to ship the idle files' backlog", 120_000, async () => {
      const c = await checkUnread(b.opts.bin, config);
      return c.files === FILES && c.unread === 0;
    }, 1_000);
    await Bun.sleep(2_000); // let the last flush and any start-up work finish
    const cpu0 = procCpuSeconds(pid);
    const t0 = performance.now();
    await Bun.sleep(seconds * 1000);
    const cpuS = procCpuSeconds(pid) - cpu0;
    const windowS = (performance.now() - t0) / 1000;
    const mem = procMemory(pid);
    const stderr = await stopLogship(agent, stderrPath);
    agent = null;
    const stopped = stoppedLine(stderr);
    if (!stopped) problems.push("no `logship stopped` line");
    else if (stopped.lines !== data.lines) problems.push(`logship acknowledged ${stopped.lines} lines, expected ${data.lines}`);
    return { scenario: "idle", kind: "idle", files: FILES, seconds, cpuPercentOfOneCore: (100 * cpuS) / windowS, rssMB: mem.rssMB, peakRssMB: mem.peakMB, verified: problems.length === 0, problems };
  } finally {
    agent?.kill("SIGKILL");
    await mock.close();
    if (!b.opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * many-files-100k's idle phase: `logship run` restarted on a finished --once run's state (its
 * directory `runDir`: config, state, same topic) over the same files, all shipped already.
 * Caught up once it has added every file (its `file added` lines) and `check` shows nothing
 * unread; after SETTLE_S more, CPU and RSS are measured over the window.
 */
async function restartIdle(b: Bench, name: string, data: GeneratedLogs, runDir: string, agentCmd: string[] = [b.opts.bin, "run"]): Promise<IdleResult> {
  const files = data.files.length;
  const seconds = b.opts.quick ? 10 : 30;
  const SETTLE_S = b.opts.quick ? 5 : 10;
  say(`\n== ${name}/idle: logship run restarted over the ${files} shipped files; ${SETTLE_S} s to settle, then ${seconds} s measured (load ${loadavg().map((l) => l.toFixed(2)).join(" ")})`);
  const config = join(runDir, "logship.yaml");
  const stderrPath = join(runDir, "stderr-restart.log");
  const problems: string[] = [];
  let agent: Subprocess | null = spawn([...agentCmd, "--config", config], { stderr: Bun.file(stderrPath) });
  const pid = agent.pid;
  try {
    const t0 = performance.now();
    await until(`logship to add the ${files} files again`, 600_000, () => (readFileSync(stderrPath, "latin1").match(/ file added /g)?.length ?? 0) >= files, 1_000);
    const addedS = (performance.now() - t0) / 1000;
    const c = await checkUnread(b.opts.bin, config);
    if (c.files !== files || c.unread !== 0) problems.push(`logship check after the restart: ${c.files} files, ${c.unread} bytes unread (expected ${files}, 0)`);
    const startup = procMemory(pid);
    await Bun.sleep(SETTLE_S * 1000);
    const cpu0 = procCpuSeconds(pid);
    const w0 = performance.now();
    await Bun.sleep(seconds * 1000);
    const cpuS = procCpuSeconds(pid) - cpu0;
    const windowS = (performance.now() - w0) / 1000;
    const mem = procMemory(pid);
    say(`   all files added ${addedS.toFixed(1)} s after the start (rss then ${startup.rssMB.toFixed(0)} MB); idle: ${fmt((100 * cpuS) / windowS, 2)}% of a core, rss ${fmt(mem.rssMB, 0)} MB, peak ${fmt(mem.peakMB, 0)} MB; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
    const stderr = await stopLogship(agent, stderrPath);
    agent = null;
    const stopped = stoppedLine(stderr);
    if (!stopped) problems.push("no `logship stopped` line");
    else if (stopped.lines !== 0) problems.push(`the restart shipped ${stopped.lines} lines again (expected 0: every file was shipped)`);
    const errors = stderr.split("\n").filter((l) => / (ERROR|WARN) /.test(l));
    if (errors.length > 0) problems.push(`${errors.length} WARN/ERROR lines, first: ${errors[0]!.slice(0, 200)}`);
    return { scenario: `${name}/idle`, kind: "idle", files, seconds, cpuPercentOfOneCore: (100 * cpuS) / windowS, rssMB: mem.rssMB, peakRssMB: mem.peakMB, verified: problems.length === 0, problems };
  } finally {
    agent?.kill("SIGKILL");
  }
}

// --- profile -------------------------------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/**
 * Runs logship under Bun's sampling profiler on the backlog set and prints the top functions:
 * `bun --cpu-prof SRC/main.ts run --once` (readable names; kafkajs unpatched), or with
 * --profile-binary the compiled binary through BUN_OPTIONS (what ships; names minified).
 */
async function profile(b: Bench): Promise<void> {
  const scenario = b.opts.scenarios.length === 1 ? b.opts.scenarios[0]! : "backlog";
  if (scenario === "live-tail") usage("--profile runs a throughput scenario or idle, not live-tail");
  if (scenario === "idle") return profileIdle(b);
  const spec = dataSpec(scenario, b.opts.quick);
  const dir = join(b.work, "profile");
  const what = b.opts.profileBinary ? `BUN_OPTIONS=--cpu-prof ${b.opts.bin}` : `bun --cpu-prof ${join(b.opts.src, "main.ts")}`;
  say(`== profile: ${what} run --once on the ${scenario} set: ${spec.files} files, ${(spec.totalBytes / MB).toFixed(0)} MB`);
  const data = generateLogs({ dir: join(dir, "logs"), files: spec.files, totalBytes: spec.totalBytes, minLine: spec.minLine, maxLine: spec.maxLine, seed: 1, continuation: spec.continuation });
  const mock = await startKafka(b);
  const outDir = join(ROOT, "bench", "results");
  mkdirSync(outDir, { recursive: true });
  try {
    for (const compression of scenario === "backlog" ? b.opts.compressions : (["none"] as const)) {
      const topic = await freshTopic(mock, `profile-${compression}`, b.opts.partitions);
      const config = join(dir, `logship-${compression}.yaml`);
      writeConfig(config, { glob: join(dir, "logs", "*.log"), bootstraps: mock.bootstraps, topic, statePath: join(dir, `state-${compression}.db`), compression, set: settingsOf(b, scenario) });
      const name = `profile-${stamp()}-${scenario}-${compression}.cpuprofile`;
      const flags = ["--cpu-prof", `--cpu-prof-dir=${outDir}`, `--cpu-prof-name=${name}`];
      const stderrPath = join(dir, `stderr-${compression}.log`);
      const m = b.opts.profileBinary
        ? await measure([b.opts.bin, "run", "--once", "--config", config], stderrPath, "/dev/null", { BUN_OPTIONS: flags.join(" ") })
        : await measure([process.execPath, ...flags, join(b.opts.src, "main.ts"), "run", "--once", "--config", config], stderrPath);
      const stopped = stoppedLine(readFileSync(stderrPath, "utf8"));
      say(`\n-- compression ${compression}: ${(data.bytes / MB / m.wallS).toFixed(1)} MB/s under the profiler, wall ${m.wallS.toFixed(2)} s, cpu ${(m.userS + m.sysS).toFixed(2)} s (user ${m.userS.toFixed(2)}, sys ${m.sysS.toFixed(2)}), rss ${m.peakRssMB.toFixed(0)} MB, lines ${stopped?.lines ?? "?"}/${data.lines}, records ${stopped?.records ?? "?"}`);
      say(`   profile: ${join(outDir, name)}`);
      summarizeProfile(JSON.parse(readFileSync(join(outDir, name), "utf8")), b.opts.src);
    }
  } finally {
    await mock.close();
    if (!b.opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** The idle scenario with `bun --cpu-prof SRC/main.ts run` as the agent (the profile includes the catch-up). */
async function profileIdle(b: Bench): Promise<void> {
  const outDir = join(ROOT, "bench", "results");
  mkdirSync(outDir, { recursive: true });
  const name = `profile-${stamp()}-idle.cpuprofile`;
  const r = await idle(b, [process.execPath, "--cpu-prof", `--cpu-prof-dir=${outDir}`, `--cpu-prof-name=${name}`, join(b.opts.src, "main.ts"), "run"]);
  say(`   under the profiler: ${fmt(r.cpuPercentOfOneCore, 2)}% of a core, rss ${fmt(r.rssMB, 0)} MB; profile ${join(outDir, name)}`);
  await until("the profile to be written", 10_000, () => existsSync(join(outDir, name)));
  summarizeProfile(JSON.parse(readFileSync(join(outDir, name), "utf8")), b.opts.src);
}

function summarizeProfile(prof: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }, srcRoot: string, top = 25): void {
  // A sample's delta includes any time the thread slept before it: cap it near the sampling
  // interval so an idle process's profile shows CPU, not waiting.
  const sortedDeltas = [...prof.timeDeltas].sort((a, c) => a - c);
  const cap = Math.max(2_000, 3 * (sortedDeltas[sortedDeltas.length >> 1] ?? 1_000));
  prof = { ...prof, timeDeltas: prof.timeDeltas.map((d) => Math.min(d, cap)) };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (n: ProfileNode) => {
    const f = n.callFrame;
    const url = f.url.replace(/^.*node_modules\//, "").replace(srcRoot + "/", "");
    return `${f.functionName || "(anonymous)"} ${url ? `${url}:${f.lineNumber + 1}` : ""}`.trim();
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const byFile = new Map<string, number>();
  let all = 0;
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    all += dt;
    const leaf = byId.get(id)!;
    self.set(key(leaf), (self.get(key(leaf)) ?? 0) + dt);
    const file = leaf.callFrame.url ? leaf.callFrame.url.replace(/^.*node_modules\//, "").replace(srcRoot + "/", "").replace(/\/[^/]*$/, "/…") : leaf.callFrame.functionName;
    byFile.set(file, (byFile.get(file) ?? 0) + dt);
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const k = key(byId.get(n)!);
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + dt);
    }
  });
  const show = (title: string, m: Map<string, number>, n: number) => {
    say(`   ${title}`);
    for (const [k, v] of [...m].sort((a, c) => c[1] - a[1]).slice(0, n)) say(`   ${((100 * v) / all).toFixed(1).padStart(5)}%  ${(v / 1e6).toFixed(2).padStart(6)} s  ${k}`);
  };
  // Who calls the hottest functions (native ones like copy or alloc say little on their own).
  const callers = new Map<string, Map<string, number>>();
  prof.samples.forEach((id, i) => {
    const leaf = key(byId.get(id)!);
    const path: string[] = [];
    for (let n = parent.get(id); n !== undefined && path.length < 2; n = parent.get(n)) path.push(key(byId.get(n)!));
    const m = callers.get(leaf) ?? new Map<string, number>();
    const via = path.join(" ← ") || "(top)";
    m.set(via, (m.get(via) ?? 0) + (prof.timeDeltas[i] ?? 0));
    callers.set(leaf, m);
  });
  say(`   ${(all / 1e6).toFixed(2)} s of JavaScript-thread CPU sampled (${prof.samples.length} samples; idle gaps removed)`);
  show("self time by function:", self, top);
  show("self time by directory:", byFile, 12);
  show("total (inclusive) time by function:", total, top);
  say("   callers of the 8 hottest functions (self time, caller ← its caller):");
  for (const [k] of [...self].sort((a, c) => c[1] - a[1]).slice(0, 8)) {
    say(`   ${k}`);
    for (const [via, v] of [...callers.get(k)!].sort((a, c) => c[1] - a[1]).slice(0, 4)) say(`     ${((100 * v) / all).toFixed(1).padStart(5)}%  ← ${via}`);
  }
}

// --- report --------------------------------------------------------------------------------

function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return "-";
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmtRow = (r: string[]) => `| ${r.map((c, i) => (i === 0 || i === 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  return [fmtRow(head), `|${widths.map((w, i) => (i < 2 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|")}|`, ...rows.map(fmtRow)].join("\n");
}

function report(results: Result[]): string {
  const parts: string[] = [];
  const tp = results.filter((r): r is ThroughputResult => r.kind === "throughput");
  if (tp.length > 0) {
    const rows: string[][] = [];
    for (const r of tp) {
      for (const s of [r.summaries.kcat, r.summaries.logship]) {
        rows.push([
          r.scenario, s.tool, fmt(s.mbPerS), fmt(s.linesPerS, 0), fmt(s.tool === "logship" ? r.ratio.mbPerS : 1, 2), fmt(s.wallS, 2), fmt(s.cpuS, 2),
          fmt(s.cpuSPerGB, 1), fmt(s.peakRssMB, 0), fmt(s.recordsPerRun, 0), `${s.verified}/${s.runs}`,
        ]);
      }
    }
    parts.push(table(["scenario", "tool", "MB/s", "lines/s", "ratio", "wall s", "CPU s", "CPU s/GB", "peak RSS MB", "records", "verified"], rows));
  }
  for (const r of results) {
    if (r.kind === "live-tail") {
      parts.push(table(
        ["live-tail", "", "lines/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "CPU s/s", "peak RSS MB", "verified"],
        [
          ["floor (kafkajs)", `${r.floor.written} lines`, "-", fmt(r.floor.delayMs.p50, 0), fmt(r.floor.delayMs.p90, 0), fmt(r.floor.delayMs.p99, 0), fmt(r.floor.delayMs.max, 0), "-", "-", r.floor.received >= r.floor.written ? "yes" : "NO"],
          ["logship", `${r.files} files, ${r.seconds} s`, fmt(r.achievedLinesPerS, 0), fmt(r.delayMs.p50, 0), fmt(r.delayMs.p90, 0), fmt(r.delayMs.p99, 0), fmt(r.delayMs.max, 0), fmt(r.cpuSPerS, 3), fmt(r.peakRssMB, 0), r.verified ? "yes" : "NO"],
        ],
      ) + "\n(delay = seen by a kcat consumer - appended: an upper bound of append→ack; the floor row is the same\n measurement with the lines produced directly by kafkajs, one record per 5 ms tick)");
    }
    if (r.kind === "idle") {
      parts.push(table(
        [r.scenario, "", "CPU % of a core", "RSS MB", "peak RSS MB", "verified"],
        [["logship", `${r.files} files, ${r.seconds} s`, fmt(r.cpuPercentOfOneCore, 2), fmt(r.rssMB, 0), fmt(r.peakRssMB, 0), r.verified ? "yes" : "NO"]],
      ));
    }
  }
  const bad = results.flatMap((r) => (r.kind === "throughput" ? r.runs.filter((x) => !x.verified).map((x) => `${r.scenario} ${x.tool} run ${x.run}: ${x.problems.join("; ")}`) : r.verified ? [] : [`${r.scenario}: ${r.problems.join("; ")}`]));
  if (bad.length > 0) parts.push("NOT VERIFIED:\n" + bad.map((x) => `  ${x}`).join("\n"));
  return parts.join("\n\n");
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, "-");
}

// --- main ----------------------------------------------------------------------------------

async function main(): Promise<number> {
  const opts = options(Bun.argv.slice(2));
  if (opts.json) say = (line) => console.error(line);
  if (!existsSync(opts.bin) && !opts.profile) usage(`no logship binary at ${opts.bin}: build it first (bun run build, or npm run bench which builds)`);
  if ((await output(["kcat", "-V"]).catch(() => ({ code: 1 }))).code !== 0) usage("kcat is required (apt-get install -y kcat)");
  if (!haveTime) say(`note: ${TIME} is missing (apt-get install -y time); CPU comes from rusage and peak RSS from polling /proc instead`);
  const shm = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  if (shm !== "/dev/shm") say(`note: no /dev/shm; inputs go to ${shm}, which may not be tmpfs (cold reads skew figures)`);
  const work = join(shm, `logship-bench-${process.pid}`);
  mkdirSync(work, { recursive: true });
  const b: Bench = { opts, work };
  const cleanup = () => {
    for (const p of children) p.kill("SIGKILL");
    if (!opts.keep) rmSync(work, { recursive: true, force: true });
  };
  process.on("SIGINT", () => {
    cleanup();
    process.exit(130);
  });
  const startedAt = new Date();
  const load0 = loadavg();
  say(`logship bench: ${opts.quick ? "quick, " : ""}${opts.runs} run(s) per tool, ${opts.partitions} partitions per topic, ${cpus().length} CPUs, load ${load0.map((l) => l.toFixed(2)).join(" ")}; inputs in ${work}`);
  say(`binary ${opts.bin}; logship settings: ${Object.entries(opts.set).map(([k, v]) => `${k}=${v}`).join(" ") || "defaults"} (+ brokers, topic, state, compression)`);
  try {
    if (opts.profile) {
      await profile(b);
      return 0;
    }
    const results: Result[] = [];
    for (const s of opts.scenarios) {
      if (s === "live-tail") results.push(await liveTail(b));
      else if (s === "idle") results.push(await idle(b));
      else if (s === "many-files-100k") results.push(...(await throughput(b, s, (mock, data, lastRun) => restartIdle(b, s, data, lastRun))));
      else results.push(...(await throughput(b, s)));
    }
    const text = report(results);
    say(`\n${text}`);
    const command = `bun scripts/bench.ts ${Bun.argv.slice(2).join(" ")}`.trim();
    const doc = {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      command,
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, kernel: release(), loadavgStart: load0, loadavgEnd: loadavg() },
      versions: { logship: (await output([opts.bin, "--version"])).stdout.trim(), kcat: (await output(["kcat", "-V"])).stdout.split("\n")[0]?.trim(), bun: Bun.version },
      settings: { runs: opts.runs, quick: opts.quick, partitions: opts.partitions, logshipSettings: Object.keys(opts.set).length > 0 ? opts.set : "logship defaults", kcat: ["kcat", "-P", "-b", "BS", "-t", "T", ...KCAT_PRODUCE, "-l", "FILE"].join(" "), mb: "10^6 bytes", measuredWith: haveTime ? TIME : "rusage + /proc" },
      results,
    };
    const outDir = join(ROOT, "bench", "results");
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `${stamp()}.json`);
    writeFileSync(file, JSON.stringify(doc, null, 2) + "\n");
    say(`\nload average at the end: ${loadavg().map((l) => l.toFixed(2)).join(" ")}; results written to ${file}`);
    if (opts.json) console.log(JSON.stringify(doc, null, 2));
    const failed = results.some((r) => (r.kind === "throughput" ? r.runs.some((x) => !x.verified) : !r.verified));
    return failed ? 1 : 0;
  } finally {
    cleanup();
  }
}

process.exit(await main());
