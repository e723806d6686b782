// Publishing: owns the kafkajs client and its cluster (connections, metadata, SASL/TLS); the
// Produce requests themselves are logship's (cluster-send.ts, produce.ts, records.ts: record
// batches encoded straight from the chunks). send() resolves only once Kafka has
// acknowledged every chunk given to it (acks=all by default) and rejects with a
// PublishError otherwise; it never retries on its own beyond a few quiet whole retries, so
// the agent decides about backoff and order. Every attempt sends every chunk to its
// partition's leader as the metadata says then (kafkajs' own retry skipped brokers that had
// answered, which lost records when leadership moved: tests/kafka-real-cluster.test.ts).
// nextBatch() chooses which queued chunks go into one send so that no partition's record
// batch exceeds max_message_bytes. With kafka.idempotent, the batches carry a producer id and
// sequences (idempotence.ts), so a retry of a batch the broker stored already is not stored twice.

import type { ConnectionOptions } from "node:tls";
import { CompressionTypes, Kafka, KafkaJSSASLAuthenticationError, logLevel, Partitioners, type PartitionMetadata, type SASLOptions } from "kafkajs";
import type Cluster from "kafkajs/src/cluster/index.js";
// The built-in SASL authenticators, wrapped below so that a failure names the user, mechanism and broker.
import plainProvider from "kafkajs/src/broker/saslAuthenticator/plain.js";
import scram256Provider from "kafkajs/src/broker/saslAuthenticator/scram256.js";
import scram512Provider from "kafkajs/src/broker/saslAuthenticator/scram512.js";
import type { KafkaConfig } from "../config.ts";
import { PublishError } from "../errors.ts";
import { collector } from "../memory.ts";
import { exactName } from "../names.ts";
import { installKafkajsPatches, withEncoderArena } from "./patches/index.ts";
import { ClusterSend } from "./cluster-send.ts";
import { Idempotence } from "./idempotence.ts";
import { BATCH_OVERHEAD, chunkKey, type Chunk } from "./pack.ts";
import { probe } from "./probe.ts";

/** What the agent needs from Kafka; tests substitute a fake. */
export interface Publisher {
  send(chunks: Chunk[]): Promise<void>;
  /** The partition a key goes to, when the topic's partition count is known. */
  partitionOf(topic: string, key: string): number | undefined;
  close(): Promise<void>;
}

const ACKS = { all: -1, leader: 1, none: 0 } as const;
const COMPRESSION = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy, lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD } as const;

export class KafkaPublisher implements Publisher {
  private readonly kafka: Kafka;
  /** kafkajs' cluster (connections, metadata, SASL/TLS); the Produce requests are logship's own (cluster-send.ts). */
  private readonly cluster: Cluster;
  private readonly sender: ClusterSend;
  private connected: Promise<void> | null = null;
  private probed = false; // the broker addresses were probed since the last successful send
  private readonly partitionCounts = new Map<string, number>();
  /** The partitioner's view of a topic of n partitions, made once per n. */
  private readonly partitionLists = new Map<number, PartitionMetadata[]>();
  private readonly hash = Partitioners.DefaultPartitioner();
  /**
   * Partition by topic, then key, for the topic's partition count when it was filled. kafkajs'
   * murmur2 runs on BigInt-backed longs, about 1 µs a key: asked twice per record (nextBatch,
   * send), it was 40% of the CPU of `format: line` (a record per line), where keys repeat.
   */
  private readonly partitionCache = new Map<string, { n: number; byKey: Map<string, number> }>();

  constructor(
    private readonly config: KafkaConfig,
    /** Says that the idempotent producer's session was reset (one line, with the reason). */
    producerReset: (reason: string) => void = () => {},
  ) {
    installKafkajsPatches(); // before kafkajs encodes anything; once per process
    this.kafka = new Kafka({
      clientId: config.client_id,
      brokers: config.brokers,
      logLevel: logLevel.NOTHING, // failures reach the operator through the agent's events, once
      requestTimeout: config.request_timeout,
      connectionTimeout: Math.min(10_000, config.request_timeout),
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 },
      ssl: tlsOptions(config),
      sasl: saslOptions(config),
    });
    this.cluster = makeCluster(this.kafka);
    this.sender = new ClusterSend(
      this.cluster,
      (topic, key, n) => {
        this.partitionCounts.set(topic, n);
        return this.partitionOf(topic, key)!;
      },
      config.idempotent ? new Idempotence(producerReset) : undefined,
    );
  }

  partitionOf(topic: string, key: string): number | undefined {
    const n = this.partitionCounts.get(topic);
    if (n === undefined) return undefined;
    let cache = this.partitionCache.get(topic);
    if (!cache || cache.n !== n || cache.byKey.size > 100_000) this.partitionCache.set(topic, (cache = { n, byKey: new Map() }));
    const known = cache.byKey.get(key);
    if (known !== undefined) return known;
    let partitionMetadata = this.partitionLists.get(n);
    if (!partitionMetadata) {
      partitionMetadata = Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
      this.partitionLists.set(n, partitionMetadata);
    }
    const p = this.hash({ topic, partitionMetadata, message: { key: exactName(key), value: null } }); // the key's bytes, as sent
    cache.byKey.set(key, p);
    return p;
  }

  async send(chunks: Chunk[]): Promise<void> {
    const topics = [...new Set(chunks.map((c) => c.source.topic))];
    let pending: readonly Chunk[] = chunks;
    const acked: Chunk[] = [];
    try {
      // A retriable failure (a topic being auto-created, a leader moving, a connection
      // dropped) is retried here a few times, quietly: each attempt sends what Kafka has not
      // acknowledged yet (the partitions that answered an error, or whose leader could not be
      // reached), each to its leader as the metadata says after the failure (cluster-send.ts
      // refreshes it as kafkajs' own send did). Then the agent's backoff takes over.
      for (let attempt = 0; ; attempt++) {
        try {
          await this.connect();
          const outcome = await withEncoderArena(
            () => this.sender.send(pending, { acks: ACKS[this.config.acks], timeoutMs: this.config.request_timeout, compression: COMPRESSION[this.config.compression] }),
            this.config.acks !== "none",
          );
          for (const c of outcome.acked) acked.push(c);
          if (outcome.error === null) break;
          pending = outcome.failed;
          throw outcome.error;
        } catch (err) {
          if (attempt >= QUIET_RETRIES || !toPublishError(err).retriable) throw err;
          await Bun.sleep(Math.min(1_000, 100 * 2 ** attempt));
        }
      }
    } catch (err) {
      const e = await this.notKafka(toPublishError(err, topics));
      // A TLS listener closes a plaintext client's connection without a word: say what to check
      // (unless the probe found what answers there instead).
      if (e.code === "KafkaJSConnectionClosedError" && !this.config.tls && !e.message.includes("is not a Kafka broker")) e.message += "; if the broker's listener is TLS (SSL or SASL_SSL), set kafka.tls";
      throw acked.length > 0 ? partlyAcknowledged(e, acked) : e;
    }
    this.probed = false;
    let bytes = 0;
    let lines = 0;
    for (const c of chunks) {
      bytes += c.value.length;
      lines += c.lines;
    }
    collector.sent(bytes, chunks.length, lines);
  }

  /** Once per outage, a connection failure names what answers at a broker address that is not Kafka (probe.ts). */
  private async notKafka(err: PublishError): Promise<PublishError> {
    if (this.probed || ![...NOT_CONNECTED].some((m) => err.message.startsWith(m))) return err;
    this.probed = true;
    const found = await Promise.all(this.config.brokers.map(async (b) => ((await probe(b)) ?? "").replace(/^./, (c) => `${b} is not a Kafka broker: ${c}`)));
    const why = found.filter((f) => f !== "").join("; ");
    return why === "" ? err : new PublishError(`${err.message} (${why})`, { retriable: err.retriable, code: err.code, cause: err });
  }

  private connect(): Promise<void> {
    if (!this.connected) {
      this.connected = this.cluster.connect().catch((err) => {
        this.connected = null; // try again on the next send
        throw err;
      });
    }
    return this.connected;
  }

  async close(): Promise<void> {
    try {
      await this.cluster.disconnect();
    } catch {
      // disconnecting from an unreachable cluster has nothing left to release
    }
  }
}

/**
 * The cluster kafkajs' producer would use, with its settings: auto-creation of topics on, one
 * request at a time per broker connection (keeps each file's records in order across retries,
 * and is within the idempotent producer's limit of 5 in flight per broker). kafkajs keeps its
 * cluster factory under a Symbol on the client, found here by its description.
 */
function makeCluster(kafka: Kafka): Cluster {
  const key = Object.getOwnPropertySymbols(kafka).find((s) => s.description === "private:Kafka:createCluster");
  if (!key) throw new Error("kafkajs' client has no private:Kafka:createCluster (another kafkajs version?)");
  const create = (kafka as unknown as Record<symbol, (o: object) => Cluster>)[key]!;
  return create({ metadataMaxAge: 300_000, allowAutoTopicCreation: true, maxInFlightRequests: 1 });
}

/** kafkajs' messages for a broker address that does not talk Kafka (among others). */
const NOT_CONNECTED = new Set(["Broker not connected", "Closed connection", "Connection closed"]);

/** kafkajs' `ssl`: undefined (plaintext), true (system CAs) or tls.connect options from kafka.tls. */
export function tlsOptions(config: KafkaConfig): ConnectionOptions | boolean | undefined {
  const tls = config.tls;
  if (!tls) return undefined;
  const m = config.secrets?.reveal() ?? {};
  const opts: ConnectionOptions = { rejectUnauthorized: tls.verify };
  if (m.ca) opts.ca = [m.ca];
  if (m.cert && m.key) {
    opts.cert = m.cert;
    opts.key = m.key;
  }
  if (tls.server_name) opts.servername = tls.server_name;
  if (!tls.verify) opts.checkServerIdentity = () => undefined;
  return Object.keys(opts).length === 1 && tls.verify ? true : opts;
}

type Provider = SaslAuthenticatorProvider;
const PROVIDERS: Record<string, [Provider, string]> = {
  plain: [plainProvider, "PLAIN"],
  "scram-sha-256": [scram256Provider, "SCRAM-SHA-256"],
  "scram-sha-512": [scram512Provider, "SCRAM-SHA-512"],
};

/**
 * kafkajs' `sasl` from kafka.sasl: its built-in authenticator, whose failure is rethrown as one
 * sentence naming user, mechanism and broker ("SASL authentication failed for user logship
 * (SCRAM-SHA-512) at 127.0.0.1:9093"), never the password.
 */
export function saslOptions(config: KafkaConfig): SASLOptions | undefined {
  const sasl = config.sasl;
  if (!sasl) return undefined;
  const password = config.secrets?.reveal().password ?? "";
  const [provider, name] = PROVIDERS[sasl.mechanism]!;
  const inner = provider({ username: sasl.username, password });
  return {
    mechanism: sasl.mechanism,
    username: sasl.username,
    password,
    authenticationProvider: (args: Parameters<ReturnType<Provider>>[0]) => ({
      async authenticate() {
        try {
          await inner(args).authenticate();
        } catch (err) {
          const why = (err as Error).message ?? "";
          const cause = /invalid credentials|Invalid username or password|authentication failed/i.test(why) ? "" : `: ${why.replace(password, "***")}`;
          throw new (KafkaJSSASLAuthenticationError as unknown as new (m: string) => Error)(`SASL authentication failed for user ${sasl.username} (${name}) at ${args.host}:${args.port}${cause}`);
        }
      },
    }),
  } as unknown as SASLOptions;
}

/** The chunks of failed sends that Kafka acknowledged all the same (their partitions answered 0). */
const partlyAcked = new WeakMap<PublishError, readonly Chunk[]>();

/** Marks a send's failure as partial: Kafka holds `acked` (the sender acknowledges them and retries only the rest). */
export function partlyAcknowledged(err: PublishError, acked: readonly Chunk[]): PublishError {
  partlyAcked.set(err, acked);
  return err;
}

/** The chunks of a failed send that Kafka acknowledged nonetheless (none for most failures). */
export function ackedDespite(err: PublishError): readonly Chunk[] {
  return partlyAcked.get(err) ?? [];
}

/** Quiet retries inside send() before a retriable failure reaches the agent (as kafkajs' own 2 did). */
const QUIET_RETRIES = 2;

/** Kafka error types that a smaller record can fix. */
export const TOO_LARGE = new Set(["MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE"]);

/**
 * Digs the Kafka error type out of kafkajs' wrappers (retries exceeded, aggregates). A Kafka
 * error code (as opposed to a connection problem) is about the records sent, so the message
 * names the `topics` they were for: "not authorized" alone does not say what to fix.
 */
export function toPublishError(err: unknown, topics: string[] = []): PublishError {
  if (err instanceof PublishError) return err;
  const root = innermost(err);
  const kafkaCode = typeof (root as { type?: unknown }).type === "string" ? (root as { type: string }).type : undefined;
  const code = kafkaCode ?? (root as Error).name ?? "UNKNOWN";
  const retriable = TOO_LARGE.has(code) ? false : (root as { retriable?: boolean }).retriable !== false || isConnectionError(root);
  let message = (root as Error).message ?? String(root);
  const tls = tlsFailure(root);
  if (tls) return new PublishError(tls, { retriable: true, code: "TLS", cause: err });
  const broker = (root as { broker?: unknown }).broker;
  if (isConnectionError(root) && typeof broker === "string" && !message.includes(broker)) message += ` (broker ${broker})`;
  if (kafkaCode && topics.length > 0) message += ` (topic${topics.length > 1 ? "s" : ""} ${topics.join(", ")})`;
  return new PublishError(message, { retriable, code, cause: err });
}

/** What Node/BoringSSL said about a TLS handshake, in words, with the broker; undefined when it is not about TLS. */
const TLS_CAUSES: [RegExp, string][] = [
  [/unable to verify|self[- ]signed|unable to get (local )?issuer|UNABLE_TO_VERIFY|SELF_SIGNED|UNABLE_TO_GET_ISSUER/i, "certificate signed by unknown authority (set kafka.tls.ca to the CA that signed the brokers' certificates)"],
  [/altnames|does not match certificate|ALTNAME/i, "certificate name mismatch"],
  [/has expired|CERT_HAS_EXPIRED/i, "the broker's certificate has expired"],
  [/not yet valid|CERT_NOT_YET_VALID/i, "the broker's certificate is not valid yet"],
  [/BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|CERTIFICATE_REQUIRED|UNKNOWN_CA|CERTIFICATE_EXPIRED|HANDSHAKE_FAILURE/i, "the broker rejected the client certificate (none given, expired, or not signed by a CA it trusts)"],
  [/before secure TLS connection|WRONG_VERSION|wrong version number|packet length too long|http request/i, "the broker did not answer TLS (a plaintext listener? then remove kafka.tls)"],
];

function tlsFailure(root: unknown): string | undefined {
  const e = root as { name?: string; message?: string; broker?: string; host?: string; port?: number };
  const text = e.message ?? "";
  const at = e.broker ?? (e.host ? `${e.host}:${e.port}` : undefined);
  const where = at ? ` at ${at}` : "";
  for (const [re, words] of TLS_CAUSES) {
    if (re.test(text)) return words === "certificate name mismatch" ? `TLS: certificate name mismatch${where}: ${text.replace(/^Connection error: /, "")}` : `TLS: ${words}${where}`;
  }
  return undefined;
}

function innermost(err: unknown): unknown {
  let e = err as { cause?: unknown; originalError?: unknown; errors?: unknown[] } | undefined;
  for (let i = 0; i < 10 && e; i++) {
    const next = e.errors?.[0] ?? e.originalError ?? e.cause;
    if (!next || next === e) break;
    e = next as typeof e;
  }
  return e ?? err;
}

function isConnectionError(e: unknown): boolean {
  const name = (e as Error)?.name ?? "";
  return name === "KafkaJSConnectionError" || name === "KafkaJSConnectionClosedError" || name === "KafkaJSRequestTimeoutError" || name === "KafkaJSNoBrokerAvailableError";
}

export interface BatchLimits {
  maxMessageBytes: number; // per partition record batch
  maxSendBytes: number; // per send, all partitions together
  maxSendChunks?: number; // non-empty chunks (a record, or a run of records) per send (default: no limit)
}

/**
 * Takes chunks from the front of `queue`, in order, for one send: stops before a chunk that
 * would push its partition's batch over maxMessageBytes, the send over maxSendBytes, or its
 * non-empty chunks over maxSendChunks. When a topic's partitions are not known yet, the whole topic
 * is held to one batch's size.
 */
export function nextBatch(queue: Chunk[], limits: BatchLimits, partitionOf: (topic: string, key: string) => number | undefined): Chunk[] {
  const perPartition = new Map<string, number[]>(); // topic → bytes per partition (index: partition + 1; 0: partitions unknown)
  const maxChunks = limits.maxSendChunks ?? Infinity;
  let total = 0;
  let chunks = 0;
  let n = 0;
  // Consecutive chunks mostly share their file: its partition is looked up once per run.
  let lastSource: Chunk["source"] | null = null;
  let lastKey: string | null | undefined;
  let slot = 0;
  let used: number[] = [];
  for (; n < queue.length; n++) {
    const c = queue[n]!;
    if (c.source !== lastSource || c.key !== lastKey) {
      lastSource = c.source;
      lastKey = c.key;
      const p = partitionOf(c.source.topic, chunkKey(c) ?? c.source.path); // no key: the path's partition (see send)
      slot = p === undefined ? 0 : p + 1;
      let u = perPartition.get(c.source.topic);
      if (!u) perPartition.set(c.source.topic, (u = []));
      used = u;
    }
    const before = used[slot] ?? BATCH_OVERHEAD;
    if (n > 0 && (before + c.size > limits.maxMessageBytes || total + c.size > limits.maxSendBytes || chunks >= maxChunks)) break;
    used[slot] = before + c.size;
    total += c.size;
    if (c.value.length > 0) chunks++;
  }
  return queue.slice(0, n);
}
