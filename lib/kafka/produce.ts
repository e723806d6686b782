// The Produce request and response (versions 3 to 7, which share one request layout), as
// logship sends them over kafkajs' broker connections: the request body is written here from
// the chunks (records.ts encodes each partition's batch in place), kafkajs adds the request
// header and length and writes it to the socket (its connection, SASL, TLS, correlation and
// timeouts), and the response is decoded here per partition, so the caller learns which
// partitions Kafka acknowledged and which it refused, and why.
//
// Invariant: the body equals what kafkajs' own Produce v3 encoder writes for the same
// messages and timestamp (tests/records.test.ts); nothing in a response is taken as an
// acknowledgement unless its partition answered error code 0.

import type { CompressionTypes } from "kafkajs";
import Encoder from "kafkajs/src/protocol/encoder.js";
import type { Chunk } from "./pack.ts";
import type { ProducerStamp } from "./idempotence.ts";
import { writeBatch, type Writer } from "./records.ts";

/** One partition's records of a request. */
export interface PartitionRecords {
  partition: number;
  chunks: Chunk[]; // non-empty values, in send order
  producer?: ProducerStamp; // with idempotence: the batch's producer id, epoch and first sequence
}

/** One topic's partitions of a request. */
export interface TopicRecords {
  topic: string;
  partitions: PartitionRecords[];
}

/**
 * Writes a Produce request body (v3–v7) into `w` (from its start): no transactional id, `acks`,
 * `timeoutMs`, then per topic and partition its record batch (`now`: the records' timestamp).
 */
export async function writeProduceRequest(w: Writer, scratch: Writer, topics: readonly TopicRecords[], acks: number, timeoutMs: number, compression: CompressionTypes, now: number): Promise<void> {
  w.at = 0;
  w.int16(-1); // transactional id: null
  w.int16(acks);
  w.int32(timeoutMs);
  w.int32(topics.length);
  for (const t of topics) {
    const name = Buffer.from(t.topic);
    w.int16(name.length);
    w.bytes(name);
    w.int32(t.partitions.length);
    for (const p of t.partitions) {
      w.int32(p.partition);
      const sizeAt = w.at;
      w.int32(0);
      const size = await writeBatch(w, p.chunks, compression, now, scratch, p.producer);
      w.buf.writeInt32BE(size, sizeAt);
    }
  }
}

/** A partition's answer: error code 0 is an acknowledgement. */
export interface PartitionAnswer {
  topic: string;
  partition: number;
  errorCode: number;
}

export interface ProduceAnswer {
  partitions: PartitionAnswer[];
  throttleTime: number;
  clientSideThrottleTime?: number; // v6+: the client waits this long before its next request (KIP-219)
}

/** Decodes a Produce response body (after the correlation id) of `version` 3–7. */
export function decodeProduceResponse(b: Buffer, version: number): ProduceAnswer {
  let at = 0;
  const partitions: PartitionAnswer[] = [];
  const topics = b.readInt32BE(at);
  at += 4;
  for (let t = 0; t < topics; t++) {
    const len = b.readInt16BE(at);
    const topic = b.toString("utf8", at + 2, at + 2 + len);
    at += 2 + len;
    const n = b.readInt32BE(at);
    at += 4;
    for (let i = 0; i < n; i++) {
      partitions.push({ topic, partition: b.readInt32BE(at), errorCode: b.readInt16BE(at + 4) });
      at += 4 + 2 + 8 + 8; // partition, error code, base offset, log append time
      if (version >= 5) at += 8; // log start offset
    }
  }
  const throttleTime = b.readInt32BE(at);
  return version >= 6 ? { partitions, throttleTime, clientSideThrottleTime: throttleTime } : { partitions, throttleTime };
}

/** The versions of Produce this module speaks (kafkajs' lookup takes the highest the broker has). */
export const PRODUCE_VERSIONS = ["3", "4", "5", "6", "7"];

/**
 * A kafkajs protocol request (what Broker's request lookup returns) sending `body` as Produce
 * `version`; its response is the decoded answer, errors included (never thrown by parse).
 */
export function produceRequest(version: number, body: Buffer, acks: number) {
  return {
    request: {
      apiKey: 0,
      apiVersion: version,
      apiName: "Produce",
      expectResponse: () => acks !== 0,
      encode: async () => new Encoder().writeBuffer(body),
    },
    response: {
      decode: async (payload: Buffer) => decodeProduceResponse(payload, version),
      parse: async (answer: ProduceAnswer) => answer,
    },
  };
}
