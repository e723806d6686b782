// One send over kafkajs' cluster: logship's chunks go to their partitions' leaders as Produce
// requests written by produce.ts and records.ts, through kafkajs' Cluster (seed connection,
// metadata, auto-creation of topics, the broker pool) and its brokers' connections (SASL,
// TLS, request framing, timeouts). kafkajs' producer is not used: it builds several objects
// per record and encodes each record through them (issue 14: `format: line`, a record per
// line, spent most of its CPU there).
//
// Invariant: a chunk is reported acknowledged only when its partition's leader answered
// error code 0 for the request that carried it (or with acks=none, when the request was
// written); every other chunk of the send is reported failed, with the error that failed it.
// Each failure updates the cluster's view as kafkajs' own send does (a closed broker is
// removed, stale metadata refreshed), so the next attempt asks the new leaders. With
// idempotence (idempotence.ts), each partition's batch carries the session's producer id and
// its sequence; an answer that the broker holds the batch already (DUPLICATE_SEQUENCE_NUMBER)
// is an acknowledgement.

import type { CompressionTypes, PartitionMetadata } from "kafkajs";
import type Broker from "kafkajs/src/broker/index.js";
import type Cluster from "kafkajs/src/cluster/index.js";
import { KafkaJSMetadataNotLoaded } from "kafkajs/src/errors.js";
import { createErrorFromCode, staleMetadata } from "kafkajs/src/protocol/error.js";
import { chunkKey, type Chunk } from "./pack.ts";
import { PRODUCE_VERSIONS, produceRequest, writeProduceRequest, type ProduceAnswer, type TopicRecords } from "./produce.ts";
import { Writer } from "./records.ts";
import { DUPLICATE_SEQUENCE, Idempotence, initProducerIdRequest, NO_INIT_PRODUCER_ID, RESET_CODES, type Stamped } from "./idempotence.ts";

const LEADER_NOT_AVAILABLE = 5;
const UNKNOWN_SERVER_ERROR = -1;

export interface SendOptions {
  acks: number; // -1 all, 1 leader, 0 none
  timeoutMs: number;
  compression: CompressionTypes;
}

/** What became of a send's chunks. */
export interface SendOutcome {
  acked: Chunk[];
  failed: Chunk[];
  error: unknown; // the first failure (null when none failed)
}

/** Broker's private request sender (kafkajs keeps it under a Symbol; found once by its description). */
let sendRequestKey: symbol | undefined;
function sendRequest<T>(broker: Broker, request: unknown): Promise<T> {
  if (!sendRequestKey) {
    sendRequestKey = Object.getOwnPropertySymbols(Object.getPrototypeOf(broker)).find((s) => s.description === "private:Broker:sendRequest");
    if (!sendRequestKey) throw new Error("kafkajs' Broker has no private:Broker:sendRequest method (another kafkajs version?)");
  }
  return (broker as unknown as Record<symbol, (r: unknown) => Promise<T>>)[sendRequestKey]!(request);
}

export class ClusterSend {
  /** Request and compression buffers, reused from send to send (one pair per request in flight). */
  private readonly free: [Writer, Writer][] = [];

  constructor(
    private readonly cluster: Cluster,
    /** The partition of a record key in a topic of `n` partitions (the publisher's cached murmur2). */
    private readonly partitionOf: (topic: string, key: string, n: number) => number,
    /** The idempotent producer's session and sequences; undefined without idempotence. */
    private readonly idempotence?: Idempotence,
  ) {}

  async send(chunks: readonly Chunk[], o: SendOptions): Promise<SendOutcome> {
    const cluster = this.cluster;
    const topics = [...new Set(chunks.map((c) => c.source.topic))];
    let plan: Map<number, TopicRecords[]>;
    try {
      await cluster.addMultipleTargetTopics(topics);
      await cluster.refreshMetadataIfNecessary();
      plan = this.plan(chunks);
      if (this.idempotence) await this.stamp(plan, this.idempotence);
    } catch (err) {
      await this.afterFailure(err);
      return { acked: [], failed: [...chunks], error: err };
    }
    const now = Date.now();
    const results = await Promise.all([...plan].map(([nodeId, topicRecords]) => this.request(nodeId, topicRecords, o, now)));
    const out: SendOutcome = { acked: [], failed: [], error: null };
    for (const r of results) {
      for (const c of r.acked) out.acked.push(c);
      for (const c of r.failed) out.failed.push(c);
      if (out.error === null && r.error !== null) out.error = r.error;
    }
    if (out.error !== null) await this.afterFailure(out.error);
    return out;
  }

  /** The chunks by leader, topic and partition, in send order within each partition. */
  private plan(chunks: readonly Chunk[]): Map<number, TopicRecords[]> {
    const byTopic = new Map<string, { parts: (Chunk[] | undefined)[]; meta: PartitionMetadata[] }>();
    let topic = "";
    let current: { parts: (Chunk[] | undefined)[]; meta: PartitionMetadata[] } | undefined;
    for (const c of chunks) {
      if (c.source.topic !== topic || !current) {
        topic = c.source.topic;
        current = byTopic.get(topic);
        if (!current) {
          const meta = this.cluster.findTopicPartitionMetadata(topic);
          if (meta.length === 0) throw new KafkaJSMetadataNotLoaded("Producing to topic without metadata");
          current = { parts: new Array(meta.length), meta };
          byTopic.set(topic, current);
        }
      }
      // Without a key (key: none), the path's partition: a file's records stay in one partition, in order.
      const p = this.partitionOf(topic, chunkKey(c) ?? c.source.path, current.meta.length);
      (current.parts[p] ??= []).push(c);
    }
    const plan = new Map<number, TopicRecords[]>();
    for (const [name, { parts, meta }] of byTopic) {
      const byLeader = new Map<number, TopicRecords>();
      parts.forEach((list, partition) => {
        if (!list) return;
        const leader = meta.find((m) => m.partitionId === partition)?.leader;
        if (leader === undefined || leader === null || leader < 0) throw createErrorFromCode(LEADER_NOT_AVAILABLE);
        let t = byLeader.get(leader);
        if (!t) {
          t = { topic: name, partitions: [] };
          byLeader.set(leader, t);
          const list2 = plan.get(leader) ?? [];
          list2.push(t);
          plan.set(leader, list2);
        }
        t.partitions.push({ partition, chunks: list });
      });
    }
    return plan;
  }

  /**
   * Gives every partition's batch of `plan` its producer stamp, starting a session first when
   * there is none (InitProducerId to one of the leaders: any broker answers it without a
   * transactional id); when a batch cannot have its first attempt's sequence, the session is
   * reset and every batch stamped anew.
   */
  private async stamp(plan: Map<number, TopicRecords[]>, idem: Idempotence): Promise<void> {
    const nodeId = plan.keys().next().value!;
    for (let round = 0; ; round++) {
      await idem.ready(() => this.initProducerId(nodeId));
      let refused: string | null = null;
      for (const topics of plan.values()) {
        for (const t of topics) {
          for (const p of t.partitions) {
            const st = idem.stamp(t.topic, p.partition, p.chunks);
            if (st === null) refused ??= `${t.topic}/${p.partition}: a retry carried other records than the attempt it repeats`;
            else p.producer = st;
          }
        }
      }
      if (refused === null) return;
      if (round > 0) throw new Error(`idempotence: ${refused} after a reset (a logship bug: set kafka.idempotent: false and report it)`);
      idem.reset(refused);
    }
  }

  /** A new producer id and epoch from broker `nodeId` (InitProducerId v0 or v1, no transactional id). */
  private async initProducerId(nodeId: number): Promise<{ producerId: bigint; epoch: number }> {
    const broker = await this.cluster.findBroker({ nodeId });
    let request: unknown = null;
    try {
      request = broker.lookupRequest(22, { versions: ["0", "1"], protocol: ({ version }: { version: number }) => initProducerIdRequest(version) } as never);
    } catch {
      // an old broker: no InitProducerId
    }
    if (!request) throw new Error(`broker ${nodeId} ${NO_INIT_PRODUCER_ID}`);
    return sendRequest(broker, request);
  }

  /** One Produce request to one leader; the chunks it acknowledged and those it did not. */
  private async request(nodeId: number, topics: TopicRecords[], o: SendOptions, now: number): Promise<SendOutcome> {
    const all = () => topics.flatMap((t) => t.partitions.flatMap((p) => p.chunks));
    const buffers = this.free.pop() ?? [new Writer(), new Writer()];
    try {
      const broker = await this.cluster.findBroker({ nodeId });
      await writeProduceRequest(buffers[0], buffers[1], topics, o.acks, o.timeoutMs, o.compression, now);
      const body = buffers[0].view();
      const request = broker.lookupRequest(0, { versions: PRODUCE_VERSIONS, protocol: ({ version }) => (version >= 3 ? produceRequest(version, body, o.acks) : null) });
      if (!request) throw new Error(`broker ${nodeId} does not support Produce v3 or later (Kafka 0.11): logship cannot write to it`);
      const answer = await sendRequest<ProduceAnswer | undefined>(broker, request);
      if (!answer) return { acked: all(), failed: [], error: null }; // acks=none: written is all there is
      return judge(topics, answer, this.idempotence);
    } catch (err) {
      for (const t of topics) for (const p of t.partitions) if (p.producer) this.idempotence?.settle(p.producer as Stamped, "failed");
      return { acked: [], failed: all(), error: err };
    } finally {
      // kafkajs copied the body into its request buffer before sending: these can be reused.
      this.free.push(buffers);
    }
  }

  /** What kafkajs' send does after a failure, so that the next attempt finds the new leaders. */
  private async afterFailure(e: unknown): Promise<void> {
    const err = e as { name?: string; host?: string; port?: number; retriable?: boolean };
    try {
      if (err.name === "KafkaJSConnectionClosedError" && err.host !== undefined && err.port !== undefined) this.cluster.removeBroker({ host: err.host, port: err.port });
      if (!this.cluster.isConnected()) {
        await this.cluster.connect();
        await this.cluster.refreshMetadata();
        return;
      }
      if (staleMetadata(err) || err.name === "KafkaJSMetadataNotLoaded" || err.name === "KafkaJSConnectionError" || err.name === "KafkaJSConnectionClosedError" || (err.name === "KafkaJSProtocolError" && err.retriable)) {
        await this.cluster.refreshMetadata();
      }
    } catch {
      // the cluster is unreachable now: the next attempt connects and asks again
    }
  }
}

/** Splits a request's chunks by their partitions' answers. */
function judge(topics: TopicRecords[], answer: ProduceAnswer, idem?: Idempotence): SendOutcome {
  const codes = new Map<string, number>();
  for (const p of answer.partitions) codes.set(`${p.topic}\u0000${p.partition}`, p.errorCode);
  const out: SendOutcome = { acked: [], failed: [], error: null };
  for (const t of topics) {
    for (const p of t.partitions) {
      const answered = codes.get(`${t.topic}\u0000${p.partition}`);
      const code = answered ?? UNKNOWN_SERVER_ERROR; // no answer for it: not acknowledged
      if (code === 0 || (code === DUPLICATE_SEQUENCE && p.producer)) {
        if (p.producer) idem?.settle(p.producer as Stamped, "acked");
        for (const c of p.chunks) out.acked.push(c);
        continue;
      }
      if (p.producer) idem?.settle(p.producer as Stamped, "failed", answered);
      for (const c of p.chunks) out.failed.push(c);
      if (out.error === null) {
        const err = createErrorFromCode(code) as Error & { retriable: boolean };
        if (RESET_CODES.has(code) && p.producer) err.retriable = true; // retried at once with a new producer id
        out.error = err;
      }
    }
  }
  return out;
}
