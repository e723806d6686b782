// Fault-test helpers (the binary itself runs through agentProcess.ts' AgentProcess): lay
// out a workspace of log files with sequenced lines, read offsets the way an operator would
// (the state database, read-only), and check what arrived in Kafka line by line.
//
// Every generated line is `TAG SEQ PAYLOAD\n` with SEQ counting from 0 per tag and PAYLOAD
// derived from both, so a line read back proves where it came from. verifyDelivery walks
// each tag's lines in the order Kafka holds them: the next expected line advances the tag,
// an earlier line is a duplicate (a re-send), a later one is a gap (lost or reordered).

import { dlopen } from "bun:ffi";
import { Database } from "bun:sqlite";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll } from "bun:test";
import { unescapeText } from "../../lib/text.ts";
import type { ConsumedRecord } from "./consume.ts";
import { startMockCluster, type MockCluster } from "./mockCluster.ts";

/** key=value fields of a LogEvents line, unescaped (values are quoted when they hold spaces). */
export function fields(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const v = m[2]!;
    out[m[1]!] = unescapeText(v.startsWith('"') ? v.slice(1, -1) : v);
  }
  return out;
}

// --- workspace: files, config, state -----------------------------------------------------

/** A scratch directory (on /dev/shm when it exists: fast, and no disk wear). */
export function workspace(name: string): string {
  const base = existsSync("/dev/shm") ? "/dev/shm" : "/tmp";
  return mkdtempSync(join(base, `logship-${name}-`));
}

export function removeWorkspace(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * One mock cluster for a whole test file (closing one can block ~1 s), and scratch
 * workspaces removed after the file's tests. Call at the top level of a test file.
 */
export function useCluster(brokers = 1): { readonly cluster: MockCluster; scratch(name: string): string } {
  let started: MockCluster | undefined;
  const dirs: string[] = [];
  beforeAll(() => {
    started = startMockCluster({ brokers });
  });
  afterAll(() => {
    started?.close();
    for (const d of dirs) removeWorkspace(d);
  });
  return {
    get cluster(): MockCluster {
      if (!started) throw new Error("useCluster: the cluster starts in beforeAll; use it inside tests");
      return started;
    },
    scratch(name: string): string {
      const d = workspace(name);
      dirs.push(d);
      return d;
    },
  };
}

export interface ConfigOptions {
  inputs: { paths: string[]; topic?: string; extra?: Record<string, string | number> }[];
  brokers: string;
  topic?: string;
  state: string;
  kafka?: Record<string, string | number>; // overrides of the test defaults below
  stateExtra?: Record<string, string | number>;
  top?: Record<string, string | number>;
}

/** Writes a config tuned for tests: fast scans and polls, short backoff and shutdown. */
export function writeConfig(path: string, o: ConfigOptions): string {
  const block = (entries: Record<string, string | number | undefined>, indent: string) =>
    Object.entries(entries)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${indent}${k}: ${typeof v === "number" ? v : JSON.stringify(v)}`)
      .join("\n");
  const inputs = o.inputs
    .map((i) => [`  - paths: [${i.paths.map((p) => JSON.stringify(p)).join(", ")}]`, block({ topic: i.topic, ...i.extra }, "    ")].filter(Boolean).join("\n"))
    .join("\n");
  const kafka = { topic: o.topic, retry_backoff: "20ms", retry_backoff_max: "500ms", request_timeout: "5s", ...o.kafka };
  const state = { path: o.state, flush_interval: "100ms", ...o.stateExtra };
  const top = { scan_interval: "200ms", poll_interval: "50ms", shutdown_timeout: "2s", stats_interval: "500ms", ...o.top };
  const text = [
    "inputs:",
    inputs,
    "kafka:",
    `  brokers: [${o.brokers.split(",").map((b) => JSON.stringify(b)).join(", ")}]`,
    block(kafka, "  "),
    "state:",
    block(state, "  "),
    block(top, ""),
    "",
  ].join("\n");
  writeFileSync(path, text);
  return path;
}

/** One generated line: `TAG SEQ PAYLOAD\n`, PAYLOAD a function of both (width ≥ 0 pads it). */
export function seqLine(tag: string, seq: number, width = 40): string {
  const base = `${tag} ${String(seq).padStart(8, "0")} `;
  const fill = ((seq * 7919 + tag.length * 31) % 26) + 97;
  return `${base}${String.fromCharCode(fill).repeat(Math.max(1, width))}\n`;
}

/** Appends lines seq from..from+count-1 of `tag` to `path`; returns the next seq. */
export function appendLines(path: string, tag: string, from: number, count: number, width = 40): number {
  const parts: string[] = [];
  for (let s = from; s < from + count; s++) parts.push(seqLine(tag, s, width));
  appendFileSync(path, parts.join(""));
  return from + count;
}

/** Bytes of `count` lines of `tag` from seq `from` (the size they take in a file). */
export function linesBytes(tag: string, from: number, count: number, width = 40): number {
  let n = 0;
  for (let s = from; s < from + count; s++) n += Buffer.byteLength(seqLine(tag, s, width));
  return n;
}

/** Saved offsets by last known path, read-only (safe beside a running agent). */
export function savedOffsets(statePath: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!existsSync(statePath)) return out;
  const db = new Database(statePath, { readonly: true });
  try {
    for (const r of db.query("SELECT path, offset FROM files").all() as { path: string; offset: number }[]) out.set(r.path, r.offset);
  } finally {
    db.close();
  }
  return out;
}

/** Saved rows (id, inode, path, offset), read-only. */
export function savedRows(statePath: string): { id: string; ino: number; path: string; offset: number }[] {
  if (!existsSync(statePath)) return [];
  const db = new Database(statePath, { readonly: true });
  try {
    return db.query("SELECT id, ino, path, offset FROM files").all() as { id: string; ino: number; path: string; offset: number }[];
  } finally {
    db.close();
  }
}

/** The saved offset of the file now at `path` (matched by inode), or undefined. */
export function savedOffsetOf(statePath: string, path: string): number | undefined {
  const ino = statSync(path).ino;
  return savedRows(statePath).find((r) => r.ino === ino)?.offset;
}

// --- what arrived ------------------------------------------------------------------------

export interface Delivery {
  /** Lines delivered per tag, duplicates excluded (the next seq expected). */
  next: Map<string, number>;
  /** Lines that arrived again (re-sends after a crash or a retried send). */
  duplicates: number;
  /** Problems: gaps (a line arrived before an earlier one), corrupt lines, partial records. */
  errors: string[];
}

/**
 * Checks records read back from Kafka: every record holds whole lines; for each tag, lines
 * arrive in order, each one byte-exact; a line seen again is counted as a duplicate; a line
 * that skips ahead is an error (lost or reordered). `skip` lists (tag, seq) known to be gone
 * (dropped on purpose), which the walk steps over.
 */
export function verifyDelivery(records: ConsumedRecord[], skip: Map<string, Set<number>> = new Map()): Delivery {
  const next = new Map<string, number>();
  const errors: string[] = [];
  let duplicates = 0;
  for (const r of records) {
    const text = r.value.toString("latin1");
    if (!text.endsWith("\n")) errors.push(`record p${r.partition}@${r.offset} does not end with a newline`);
    for (const line of text.split("\n").slice(0, -1)) {
      const m = /^(\S+) (\d{8}) /.exec(line);
      if (!m) {
        errors.push(`unparseable line ${JSON.stringify(line.slice(0, 60))}`);
        continue;
      }
      const tag = m[1]!;
      const seq = Number(m[2]);
      if (`${line}\n` !== seqLine(tag, seq, line.length - m[0].length)) errors.push(`corrupt line ${JSON.stringify(line.slice(0, 60))}`);
      let want = next.get(tag) ?? 0;
      while (skip.get(tag)?.has(want)) want++;
      if (seq === want) next.set(tag, want + 1);
      else if (seq < want) duplicates++;
      else errors.push(`${tag}: line ${seq} arrived where ${want} was due`);
    }
  }
  return { next, duplicates, errors };
}

/** Asserts-friendly summary: for each tag, how many lines arrived against how many were written. */
export function shortfall(d: Delivery, written: Record<string, number>): string[] {
  const out: string[] = [];
  for (const [tag, n] of Object.entries(written)) {
    const got = d.next.get(tag) ?? 0;
    if (got !== n) out.push(`${tag}: ${got} of ${n} lines arrived`);
  }
  for (const tag of d.next.keys()) if (!(tag in written)) out.push(`${tag}: unexpected tag`);
  return out;
}

/** Creates `dir` (and parents). */
export function mkdir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

// --- a mock cluster whose partition leaders can be moved ----------------------------------
// tests/helpers/mockCluster.ts does not expose rd_kafka_mock_partition_set_leader, which
// "leadership changes" needs (the mock never elects a new leader by itself). This is the
// smallest wrapper that does; the op pacing follows mockCluster.ts (see its OP_GAP_MS note).

export interface LeaderCluster {
  readonly bootstraps: string;
  createTopic(name: string, partitions: number, replicationFactor: number): void;
  brokerDown(id: number): void;
  brokerUp(id: number): void;
  setPartitionLeader(topic: string, partition: number, brokerId: number): void;
  close(): void;
}

export function startLeaderCluster(brokers: number): LeaderCluster {
  const { symbols: L } = dlopen("librdkafka.so.1", {
    rd_kafka_conf_new: { args: [], returns: "ptr" },
    rd_kafka_conf_set: { args: ["ptr", "ptr", "ptr", "ptr", "u64"], returns: "i32" },
    rd_kafka_new: { args: ["i32", "ptr", "ptr", "u64"], returns: "ptr" },
    rd_kafka_destroy: { args: ["ptr"], returns: "void" },
    rd_kafka_mock_cluster_new: { args: ["ptr", "i32"], returns: "ptr" },
    rd_kafka_mock_cluster_destroy: { args: ["ptr"], returns: "void" },
    rd_kafka_mock_cluster_bootstraps: { args: ["ptr"], returns: "cstring" },
    rd_kafka_mock_topic_create: { args: ["ptr", "ptr", "i32", "i32"], returns: "i32" },
    rd_kafka_mock_broker_set_down: { args: ["ptr", "i32"], returns: "i32" },
    rd_kafka_mock_broker_set_up: { args: ["ptr", "i32"], returns: "i32" },
    rd_kafka_mock_partition_set_leader: { args: ["ptr", "ptr", "i32", "i32"], returns: "i32" },
  });
  const cstr = (s: string) => Buffer.from(`${s}\0`);
  const errstr = Buffer.alloc(512);
  const conf = L.rd_kafka_conf_new();
  L.rd_kafka_conf_set(conf, cstr("log_level"), cstr("3"), errstr, 512);
  const rk = L.rd_kafka_new(0, conf, errstr, 512);
  if (rk === null) throw new Error(`rd_kafka_new: ${errstr.toString().replace(/\0.*$/s, "")}`);
  const mc = L.rd_kafka_mock_cluster_new(rk, brokers);
  if (mc === null) throw new Error("rd_kafka_mock_cluster_new returned NULL");
  let last = -Infinity;
  const op = (what: string, f: () => number) => {
    const wait = last + 3 - performance.now();
    if (wait > 0) Bun.sleepSync(wait);
    last = performance.now();
    const err = f();
    if (err !== 0) throw new Error(`${what} failed (${err})`);
  };
  return {
    bootstraps: String(L.rd_kafka_mock_cluster_bootstraps(mc)),
    createTopic: (name, partitions, rf) => op(`createTopic(${name})`, () => L.rd_kafka_mock_topic_create(mc, cstr(name), partitions, rf)),
    brokerDown: (id) => op(`brokerDown(${id})`, () => L.rd_kafka_mock_broker_set_down(mc, id)),
    brokerUp: (id) => op(`brokerUp(${id})`, () => L.rd_kafka_mock_broker_set_up(mc, id)),
    setPartitionLeader: (topic, partition, id) => op(`setPartitionLeader(${topic}, ${partition})`, () => L.rd_kafka_mock_partition_set_leader(mc, cstr(topic), partition, id)),
    close: () => {
      L.rd_kafka_mock_cluster_destroy(mc);
      L.rd_kafka_destroy(rk);
    },
  };
}
