// Test Kafka cluster: owns librdkafka's built-in mock cluster, reached through
// bun:ffi. librdkafka runs the mock brokers on its own threads, so the cluster
// keeps serving while the Bun event loop runs normally. Brokers listen on
// 127.0.0.1 ephemeral ports; broker ids start at 1.
//
// Mock quirks (librdkafka 2.0.2) worth knowing:
// - any client's Metadata request for an unknown topic auto-creates it with 4
//   partitions (kafkajs producers and librdkafka consumers alike);
// - metadata lists every broker as replica/ISR whatever replicationFactor is;
// - it keeps only ~5 MB / 100k messages per partition and does not enforce
//   message.max.bytes (inject MSG_SIZE_TOO_LARGE with pushRequestErrors);
// - close() can block the calling thread for up to ~1 s (a librdkafka
//   internal broker thread only notices termination on its 1 s tick), so
//   share a cluster across tests rather than starting one per test.
import { dlopen, type Pointer } from "bun:ffi";

/** Kafka protocol request types (ApiKey), for pushRequestErrors/clearRequestErrors. */
export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  ApiVersions: 18,
  CreateTopics: 19,
  InitProducerId: 22,
} as const;

/** Kafka protocol error codes (same numbers as kafkajs `error.type` lookups). */
export const KafkaErr = {
  NO_ERROR: 0,
  UNKNOWN_SERVER_ERROR: -1,
  /** librdkafka-internal: makes the mock broker drop the connection. */
  TRANSPORT: -195,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  INVALID_MSG_SIZE: 4,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  BROKER_NOT_AVAILABLE: 8,
  MSG_SIZE_TOO_LARGE: 10,
  NETWORK_EXCEPTION: 13,
  COORDINATOR_NOT_AVAILABLE: 15,
  NOT_COORDINATOR: 16,
  INVALID_TOPIC_EXCEPTION: 17,
  RECORD_LIST_TOO_LARGE: 18,
  NOT_ENOUGH_REPLICAS: 19,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 20,
  INVALID_REQUIRED_ACKS: 21,
  TOPIC_AUTHORIZATION_FAILED: 29,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  UNSUPPORTED_VERSION: 35,
  POLICY_VIOLATION: 44,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46,
  INVALID_PRODUCER_EPOCH: 47,
  KAFKA_STORAGE_ERROR: 56,
  UNKNOWN_PRODUCER_ID: 59,
  THROTTLING_QUOTA_EXCEEDED: 89,
} as const;

export interface MockCluster {
  /** "127.0.0.1:PORT,127.0.0.1:PORT" */
  readonly bootstraps: string;
  createTopic(name: string, partitions?: number, replicationFactor?: number): void;
  brokerDown(id: number): void;
  brokerUp(id: number): void;
  setRtt(id: number, ms: number): void;
  pushRequestErrors(apiKey: number, errors: number[]): void;
  clearRequestErrors(apiKey: number): void;
  setTopicError(topic: string, err: number): void;
  close(): void;
}

const RD_KAFKA_PRODUCER = 0;
const RD_KAFKA_CONF_OK = 0;
const ERRSTR_SIZE = 512;

function openLibrdkafka() {
  return dlopen("librdkafka.so.1", {
    rd_kafka_conf_new: { args: [], returns: "ptr" },
    rd_kafka_conf_set: { args: ["ptr", "ptr", "ptr", "ptr", "u64"], returns: "i32" },
    rd_kafka_conf_destroy: { args: ["ptr"], returns: "void" },
    rd_kafka_new: { args: ["i32", "ptr", "ptr", "u64"], returns: "ptr" },
    rd_kafka_destroy: { args: ["ptr"], returns: "void" },
    rd_kafka_err2name: { args: ["i32"], returns: "cstring" },
    rd_kafka_mock_cluster_new: { args: ["ptr", "i32"], returns: "ptr" },
    rd_kafka_mock_cluster_destroy: { args: ["ptr"], returns: "void" },
    rd_kafka_mock_cluster_bootstraps: { args: ["ptr"], returns: "cstring" },
    rd_kafka_mock_topic_create: { args: ["ptr", "ptr", "i32", "i32"], returns: "i32" },
    rd_kafka_mock_topic_set_error: { args: ["ptr", "ptr", "i32"], returns: "void" },
    rd_kafka_mock_broker_set_down: { args: ["ptr", "i32"], returns: "i32" },
    rd_kafka_mock_broker_set_up: { args: ["ptr", "i32"], returns: "i32" },
    rd_kafka_mock_broker_set_rtt: { args: ["ptr", "i32", "i32"], returns: "i32" },
    rd_kafka_mock_push_request_errors_array: { args: ["ptr", "i16", "u64", "ptr"], returns: "void" },
    rd_kafka_mock_clear_request_errors: { args: ["ptr", "i16"], returns: "void" },
  });
}

type Lib = ReturnType<typeof openLibrdkafka>["symbols"];
/** A non-NULL C pointer as bun:ffi hands it out. */
type Ptr = Pointer | bigint;
let lib: Lib | undefined;

function rdkafka(): Lib {
  lib ??= openLibrdkafka().symbols;
  return lib;
}

/** NUL-terminated copy of a JS string, for `const char *` arguments. */
function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, "utf8");
}

function errstrText(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString("utf8", 0, end < 0 ? buf.length : end);
}

/** Throws if a librdkafka call returned a non-zero rd_kafka_resp_err_t. */
function check(what: string, err: number): void {
  if (err !== 0) throw new Error(`${what} failed: ${errName(err)} (${err})`);
}

function setConf(conf: Ptr, name: string, value: string): void {
  const errstr = Buffer.alloc(ERRSTR_SIZE);
  const res = rdkafka().rd_kafka_conf_set(conf, cstr(name), cstr(value), errstr, ERRSTR_SIZE);
  if (res !== RD_KAFKA_CONF_OK) throw new Error(`rd_kafka_conf_set(${name}): ${errstrText(errstr)}`);
}

/** A producer handle that only exists to own the mock cluster. */
function newHandle(): Ptr {
  const L = rdkafka();
  const conf = L.rd_kafka_conf_new();
  if (conf === null) throw new Error("rd_kafka_conf_new returned NULL");
  const errstr = Buffer.alloc(ERRSTR_SIZE);
  try {
    setConf(conf, "log_level", "3"); // errors only; keep test output clean
  } catch (e) {
    L.rd_kafka_conf_destroy(conf);
    throw e;
  }
  const rk = L.rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, ERRSTR_SIZE);
  if (rk === null) {
    L.rd_kafka_conf_destroy(conf); // ownership only passes to rd_kafka_new on success
    throw new Error(`rd_kafka_new: ${errstrText(errstr)}`);
  }
  return rk;
}

function assertBrokerCount(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`broker count must be a positive integer, got ${n}`);
}

export function startMockCluster(opts: { brokers?: number } = {}): MockCluster {
  const brokers = opts.brokers ?? 1;
  assertBrokerCount(brokers);
  const L = rdkafka();
  const rk = newHandle();
  const mc = L.rd_kafka_mock_cluster_new(rk, brokers);
  if (mc === null) {
    L.rd_kafka_destroy(rk);
    throw new Error("rd_kafka_mock_cluster_new returned NULL");
  }
  return wrapCluster(rk, mc);
}

/**
 * librdkafka 2.0.2's mock thread serves its op queue *before* draining its
 * wake-up fd, so an op enqueued right after the previous op's reply has its
 * wake-up byte swallowed and waits for the 1 s poll timeout. Leaving a few ms
 * between consecutive ops lets the mock thread get back into poll() first.
 */
const OP_GAP_MS = 3;

function opPacer(): () => void {
  let lastOpAt = -Infinity;
  return () => {
    const wait = lastOpAt + OP_GAP_MS - performance.now();
    if (wait > 0) Bun.sleepSync(wait);
    lastOpAt = performance.now();
  };
}

function wrapCluster(rk: Ptr, mc: Ptr): MockCluster {
  const L = rdkafka();
  const bootstraps = String(L.rd_kafka_mock_cluster_bootstraps(mc) ?? "");
  const pace = opPacer();
  let closed = false;
  const live = (): Ptr => {
    if (closed) throw new Error("mock cluster is closed");
    pace();
    return mc;
  };
  return {
    bootstraps,
    createTopic(name, partitions = 1, replicationFactor = 1) {
      check(`createTopic(${name})`, L.rd_kafka_mock_topic_create(live(), cstr(name), partitions, replicationFactor));
    },
    brokerDown(id) {
      check(`brokerDown(${id})`, L.rd_kafka_mock_broker_set_down(live(), id));
    },
    brokerUp(id) {
      check(`brokerUp(${id})`, L.rd_kafka_mock_broker_set_up(live(), id));
    },
    setRtt(id, ms) {
      check(`setRtt(${id})`, L.rd_kafka_mock_broker_set_rtt(live(), id, ms));
    },
    pushRequestErrors(apiKey, errors) {
      if (errors.length === 0) return;
      const arr = Int32Array.from(errors); // rd_kafka_resp_err_t is a C enum (int)
      L.rd_kafka_mock_push_request_errors_array(live(), apiKey, errors.length, arr);
    },
    clearRequestErrors(apiKey) {
      L.rd_kafka_mock_clear_request_errors(live(), apiKey);
    },
    setTopicError(topic, err) {
      L.rd_kafka_mock_topic_set_error(live(), cstr(topic), err);
    },
    close() {
      if (closed) return;
      closed = true;
      L.rd_kafka_mock_cluster_destroy(mc);
      L.rd_kafka_destroy(rk);
    },
  };
}

/** Name of a librdkafka error code, e.g. 10 -> "MSG_SIZE_TOO_LARGE". */
export function errName(err: number): string {
  return String(rdkafka().rd_kafka_err2name(err) ?? err);
}
