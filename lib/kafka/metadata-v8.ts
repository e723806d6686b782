// One broker, reached the way kafkajs reaches it, for `check --connect`: a kafkajs Broker over
// its own ConnectionPool (TLS, ApiVersions, SASL exactly as the producer does them), plus the
// one request kafkajs cannot send: Metadata v8 with include_topic_authorized_operations, which
// says per topic what this client may do there (KIP-430, Kafka 2.3). kafkajs' own Metadata
// stops at v6, which has no authorized operations. The request is encoded with kafkajs'
// Encoder and decoded with its Decoder; v8 is the last non-flexible version, so kafkajs'
// request header (v1) fits it as it is.
//
// Invariant: the request never creates a topic (allow_auto_topic_creation=false) and writes
// nothing; a topic's write permission is read from the WRITE bit of its authorized operations
// and is `undefined`, not guessed, when the broker did not report them.

import Broker from "kafkajs/src/broker/index.js";
import ConnectionPool from "kafkajs/src/network/connectionPool.js";
import socketFactory from "kafkajs/src/network/socketFactory.js";
import Decoder from "kafkajs/src/protocol/decoder.js";
import Encoder from "kafkajs/src/protocol/encoder.js";
import { createErrorFromCode } from "kafkajs/src/protocol/error.js";
import { createLogger, LEVELS } from "kafkajs/src/loggers/index.js";
import type { SASLOptions } from "kafkajs";
import type { ConnectionOptions } from "node:tls";
import type { ApiVersions } from "./releases.ts";

const METADATA = 3;
/** AclOperation WRITE is 4; authorized operations are a bit field of 1 << operation. */
const WRITE_BIT = 1 << 4;
/** What a broker puts in topic_authorized_operations when it does not say (Int32 MIN_VALUE). */
export const OPERATIONS_UNKNOWN = -2147483648;

export interface TopicAccess {
  name: string;
  /** Kafka error code: 0, 3 (UNKNOWN_TOPIC_OR_PARTITION), 29 (TOPIC_AUTHORIZATION_FAILED), ... */
  errorCode: number;
  /** Its Kafka error type ("TOPIC_AUTHORIZATION_FAILED"), or undefined for 0. */
  error?: string;
  partitions: { id: number; errorCode: number; leader: number }[];
  authorizedOperations: number;
}

/** Whether the operations bit field allows WRITE; undefined when the broker did not report them. */
export function mayWrite(operations: number): boolean | undefined {
  if (operations === OPERATIONS_UNKNOWN) return undefined;
  return (operations & WRITE_BIT) !== 0;
}

/** Metadata Request v8: [topics] allow_auto_topic_creation include_cluster_authorized_operations include_topic_authorized_operations. */
export function encodeMetadataV8(topics: string[]): Encoder {
  return new Encoder().writeArray(topics, "string").writeBoolean(false).writeBoolean(false).writeBoolean(true);
}

/**
 * Metadata Response v8: throttle_time_ms [brokers: node_id host port rack] cluster_id
 * controller_id [topics: error_code name is_internal [partitions: error_code partition_index
 * leader_id leader_epoch [replica_nodes] [isr_nodes] [offline_replicas]]
 * topic_authorized_operations] cluster_authorized_operations.
 */
export function decodeMetadataV8(payload: Buffer): { throttleTime: number; topics: TopicAccess[] } {
  const d = new Decoder(payload);
  const throttleTime = d.readInt32();
  d.readArray((b) => [b.readInt32(), b.readString(), b.readInt32(), b.readString()]);
  d.readString(); // cluster_id
  d.readInt32(); // controller_id
  const ints = (x: Decoder) => x.readArray((y) => y.readInt32());
  const topics = d.readArray((t): TopicAccess => {
    const errorCode = t.readInt16();
    const name = t.readString() ?? "";
    t.readBoolean(); // is_internal
    const partitions = t.readArray((p) => {
      const partitionError = p.readInt16();
      const id = p.readInt32();
      const leader = p.readInt32();
      p.readInt32(); // leader_epoch
      ints(p);
      ints(p);
      ints(p);
      return { id, errorCode: partitionError, leader };
    });
    const authorizedOperations = t.readInt32();
    return { name, errorCode, ...(errorCode !== 0 && { error: createErrorFromCode(errorCode).type }), partitions, authorizedOperations };
  });
  return { throttleTime, topics };
}

export interface BrokerOptions {
  clientId: string;
  ssl: ConnectionOptions | boolean | undefined;
  sasl: SASLOptions | undefined;
  /** Per connection attempt and per request. */
  timeoutMs: number;
}

/** A broker reached as kafkajs reaches it: connected, asked ApiVersions, authenticated. */
export interface RawBroker {
  readonly versions: ApiVersions;
  /** Metadata v8 for `topics`; rejects when the broker's Metadata stops below v8 (check `versions` first). */
  topicAccess(topics: string[]): Promise<TopicAccess[]>;
  /** Sends one request of another kind (a kafkajs protocol pair: request, response decode and parse). */
  send<T>(protocol: { request: unknown; response: unknown }): Promise<T>;
  close(): Promise<void>;
}

const quiet = createLogger({ level: LEVELS.NOTHING, logCreator: () => () => {} });

/** Connects to host:port with kafkajs' Broker; rejects with kafkajs' error (TLS, SASL, refused...). */
export async function connectBroker(host: string, port: number, o: BrokerOptions): Promise<RawBroker> {
  const connectionPool = new ConnectionPool({
    host, port, logger: quiet, socketFactory: socketFactory(), clientId: o.clientId,
    requestTimeout: o.timeoutMs, connectionTimeout: o.timeoutMs, ssl: o.ssl, sasl: o.sasl,
  });
  const broker = new Broker({ connectionPool, logger: quiet, authenticationTimeout: o.timeoutMs, allowAutoTopicCreation: false });
  try {
    await broker.connect();
  } catch (err) {
    await broker.disconnect().catch(() => {});
    throw err;
  }
  const versions: ApiVersions = new Map(Object.entries(broker.versions ?? {}).map(([k, v]) => [Number(k), [v.minVersion, v.maxVersion]]));
  return {
    versions,
    async topicAccess(topics) {
      const max = versions.get(METADATA)?.[1] ?? -1;
      if (max < 8) throw new Error(`the broker's Metadata stops at v${max}; authorized operations need v8`);
      const res = await connectionPool.send({
        request: { apiKey: METADATA, apiVersion: 8, apiName: "Metadata", encode: async () => encodeMetadataV8(topics) },
        response: {
          decode: async (payload: Buffer) => {
            const r = decodeMetadataV8(payload);
            return { ...r, clientSideThrottleTime: r.throttleTime };
          },
          parse: async (decoded: unknown) => (decoded as ReturnType<typeof decodeMetadataV8>).topics,
        },
      });
      return res;
    },
    send: (protocol) => connectionPool.send(protocol as never),
    close: () => broker.disconnect().catch(() => {}),
  };
}
