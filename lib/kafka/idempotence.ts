// The idempotent producer (kafka.idempotent): this producer session's id and epoch, asked once
// with InitProducerId (ApiKey 22, no transactional id) over a kafkajs broker connection, and
// each partition's next sequence number. Every record batch sent with idempotence carries the
// id, the epoch and its first sequence (records.ts writes them); the broker keeps the last
// five batches' sequences per producer and partition, stores a batch whose first sequence
// follows the last one stored, answers a batch it already holds as a success without storing
// it again (a retry after a timeout or a leader change duplicates nothing), and refuses a
// gap (OUT_OF_ORDER_SEQUENCE_NUMBER).
//
// Invariant: a sequence range of a partition is only ever sent with the same records: a
// partition's batch that was sent and not acknowledged stays open, and the next batch for
// that partition must be exactly the same chunks, in order, to get the same first sequence.
// When it is not (the send was cut differently) and the broker may have stored the first
// attempt, the session is reset instead (a new producer id, sequences from 0), because
// reusing the range for other records would let the broker take them for the stored ones and
// acknowledge records it never stored. A reset (also on OUT_OF_ORDER_SEQUENCE_NUMBER,
// UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_EPOCH) can duplicate what the old session stored
// without an answer, never lose it: offsets move over acknowledged records only. A producer
// id lives for one process (and publisher): a restart starts a new session, as Java's
// non-transactional idempotent producer does.

import Decoder from "kafkajs/src/protocol/decoder.js";
import Encoder from "kafkajs/src/protocol/encoder.js";
import { createErrorFromCode } from "kafkajs/src/protocol/error.js";
import { recordsOf, type Chunk } from "./pack.ts";

export const INIT_PRODUCER_ID = 22;
/** Java's transaction_timeout_ms for a producer without a transactional id (the broker ignores it). */
const NO_TRANSACTION_TIMEOUT = 2147483647;

/** What a batch carries when sent with idempotence. */
export interface ProducerStamp {
  producerId: bigint;
  epoch: number;
  base: number; // the first record's sequence
}

/** InitProducerId request v0/v1 (same layout): transactional_id (null), transaction_timeout_ms. */
export function encodeInitProducerId(): Encoder {
  return new Encoder().writeString(null).writeInt32(NO_TRANSACTION_TIMEOUT);
}

/** InitProducerId response v0/v1: throttle_time_ms error_code producer_id producer_epoch. */
export function decodeInitProducerId(payload: Buffer): { throttleTime: number; errorCode: number; producerId: bigint; epoch: number } {
  const d = new Decoder(payload);
  const throttleTime = d.readInt32();
  const errorCode = d.readInt16();
  const producerId = BigInt(d.readInt64().toString());
  const epoch = d.readInt16();
  return { throttleTime, errorCode, producerId, epoch };
}

/** A kafkajs protocol request (as Broker's lookup returns) for InitProducerId `version` (0 or 1). */
export function initProducerIdRequest(version: number) {
  return {
    request: { apiKey: INIT_PRODUCER_ID, apiVersion: version, apiName: "InitProducerId", encode: async () => encodeInitProducerId() },
    response: {
      decode: async (payload: Buffer) => {
        const r = decodeInitProducerId(payload);
        return version >= 1 ? { ...r, clientSideThrottleTime: r.throttleTime } : r;
      },
      parse: async (r: ReturnType<typeof decodeInitProducerId>) => {
        if (r.errorCode !== 0) {
          const err = createErrorFromCode(r.errorCode);
          if (err.type === "CLUSTER_AUTHORIZATION_FAILED") err.message += ` (${INIT_DENIED_ADVICE})`;
          throw err;
        }
        return r;
      },
    },
  };
}

/** What to do when InitProducerId is refused (CLUSTER_AUTHORIZATION_FAILED): added to the error by the request's parse, for run and check --connect alike. */
const INIT_DENIED_ADVICE = "InitProducerId, for kafka.idempotent: this principal may WRITE to no topic, or, before Kafka 2.8, lacks IDEMPOTENT_WRITE on the cluster: grant it, or set kafka.idempotent: false";
/** A broker without InitProducerId (older than Kafka 0.11). */
export const NO_INIT_PRODUCER_ID = "does not support InitProducerId (Kafka 0.11 or later): set kafka.idempotent: false to write to it";

/** Kafka's sequence numbers wrap from 2^31 - 1 to 0. */
export function nextSequence(base: number, records: number): number {
  return (base + records) % 0x80000000;
}

/** Error codes that reset the session: the broker lost or refuses this producer's state. */
export const RESET_CODES: ReadonlyMap<number, string> = new Map([
  [45, "OUT_OF_ORDER_SEQUENCE_NUMBER"],
  [47, "INVALID_PRODUCER_EPOCH"],
  [59, "UNKNOWN_PRODUCER_ID"],
]);
/** DUPLICATE_SEQUENCE_NUMBER: the broker holds this batch already; an acknowledgement. */
export const DUPLICATE_SEQUENCE = 46;
/**
 * Partition error codes given before the batch was appended to the log (so its sequences
 * were not used): CORRUPT_MESSAGE, UNKNOWN_TOPIC_OR_PARTITION, MESSAGE_TOO_LARGE,
 * RECORD_LIST_TOO_LARGE, NOT_ENOUGH_REPLICAS, TOPIC_AUTHORIZATION_FAILED, INVALID_RECORD.
 * Not NOT_LEADER_OR_FOLLOWER nor REQUEST_TIMED_OUT: acks=all gives them also after the append.
 */
const NOT_APPENDED = new Set([2, 3, 10, 18, 19, 29, 87]);

/** A partition's batch sent and not acknowledged yet. */
interface Open {
  chunks: readonly Chunk[];
  base: number;
  uncertain: boolean; // an attempt ended without saying whether the broker stored it
}

class Session {
  readonly next = new Map<string, number>(); // topic \0 partition → next sequence
  readonly open = new Map<string, Open>();
  constructor(
    readonly producerId: bigint,
    readonly epoch: number,
  ) {}
}

/** A stamp handed out for one partition's batch, with what `settle` needs. */
export interface Stamped extends ProducerStamp {
  session: Session;
  key: string;
}

export type Outcome = "acked" | "failed";

export class Idempotence {
  private session: Session | null = null;
  private starting: Promise<Session> | null = null;

  constructor(
    /** Says, in one line, that the session was reset and why. */
    private readonly said: (line: string) => void,
  ) {}

  /** The producer id of the current session (undefined before the first). */
  get producerId(): bigint | undefined {
    return this.session?.producerId;
  }

  /** Starts a session with `init` (InitProducerId) if there is none; one request for all callers waiting. */
  async ready(init: () => Promise<{ producerId: bigint; epoch: number }>): Promise<void> {
    if (this.session) return;
    this.starting ??= init().then(
      (r) => {
        this.starting = null;
        return (this.session = new Session(r.producerId, r.epoch));
      },
      (err) => {
        this.starting = null;
        throw err;
      },
    );
    await this.starting;
  }

  /**
   * The stamp for `chunks` as `topic`/`partition`'s next batch, or null when they differ from
   * the partition's open batch, which the broker may hold: then reset() and ask again.
   */
  stamp(topic: string, partition: number, chunks: readonly Chunk[]): Stamped | null {
    const s = this.session;
    if (!s) throw new Error("Idempotence.stamp before ready()");
    const key = `${topic}\u0000${partition}`;
    const open = s.open.get(key);
    if (open) {
      if (same(open.chunks, chunks)) return { producerId: s.producerId, epoch: s.epoch, base: open.base, session: s, key };
      if (open.uncertain) return null;
      s.next.set(key, open.base); // never stored: its sequences are free again
    }
    const base = s.next.get(key) ?? 0;
    let records = 0; // a run is a chunk of many records, each its own sequence number
    for (const c of chunks) records += recordsOf(c);
    s.next.set(key, nextSequence(base, records));
    s.open.set(key, { chunks, base, uncertain: false });
    return { producerId: s.producerId, epoch: s.epoch, base, session: s, key };
  }

  /**
   * What became of a stamped batch: acknowledged, or failed with Kafka error `code` (undefined:
   * no answer, e.g. a timeout or a closed connection). A reset code ends the session.
   */
  settle(st: Stamped, outcome: Outcome, code?: number): void {
    const s = st.session;
    if (s !== this.session) return; // an old session's batch: its state went with it
    const open = s.open.get(st.key);
    if (!open || open.base !== st.base) return;
    if (outcome === "acked") {
      s.open.delete(st.key);
      return;
    }
    if (code !== undefined && RESET_CODES.has(code)) {
      this.reset(`${RESET_CODES.get(code)} from the partition leader`);
      return;
    }
    if (code === undefined || !NOT_APPENDED.has(code)) open.uncertain = true;
  }

  /** Ends the session: the next ready() asks for a new producer id; sequences start from 0. */
  reset(why: string): void {
    const s = this.session;
    if (!s) return;
    this.session = null;
    this.said(`idempotent producer ${s.producerId} reset (${why}): a new producer id, sequences from 0; records it sent without an answer may be stored twice`);
  }
}

function same(a: readonly Chunk[], b: readonly Chunk[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
