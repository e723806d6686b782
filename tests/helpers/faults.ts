// Fault-test helpers (the binary itself runs through agentProcess.ts' AgentProcess): a mock
// cluster whose partition leaders can be moved (startLeaderCluster) and the key=value fields
// of a log line (fields).
//
// Re-exported here, so fault tests import everything from this one module: one mock cluster
// per test file (useCluster.ts), the workspace, config writer and state reader
// (workspace.ts), the sequenced lines (lines.ts: `TAG SEQ PAYLOAD\n`) and the delivery
// check (delivery.ts: verifyDelivery, shortfall).

import { dlopen } from "bun:ffi";
import { unescapeText } from "../../lib/text.ts";

/** key=value fields of a LogEvents line, unescaped (values are quoted when they hold spaces). */
export function fields(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const v = m[2]!;
    out[m[1]!] = unescapeText(v.startsWith('"') ? v.slice(1, -1) : v);
  }
  return out;
}

// --- re-exported from the kit's modules, for existing imports ------------------------------

export { appendLines, linesBytes, seqLine, seqLines } from "./lines.ts";
export { configYaml, mkdir, removeWorkspace, savedOffsetOf, savedOffsets, savedRows, workspace, writeConfig, type ConfigOptions } from "./workspace.ts";
export { shortfall, verifyDelivery, type Delivery } from "./delivery.ts";
export { useCluster } from "./useCluster.ts";

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
