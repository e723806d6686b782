// A fake Kafka for tests: implements lib/kafka/publish.ts' Publisher in memory and records every
// send. Each send() becomes a SendCall whose fate a policy decides: acknowledge it at once,
// reject it with a given error, or hold it until the test acks or rejects it (in any order,
// which is how out-of-order acknowledgements are made).
//
//   const kafka = new FakePublisher();              // acks everything
//   kafka.next(retriableError(), tooLargeError());  // the next two sends fail, then acks again
//   kafka.holdAll();                                // from now on sends wait ...
//   await kafka.waitForCalls(2);
//   kafka.calls[1]!.ack(); kafka.calls[0]!.ack();   // ... and are acked out of order
//   kafka.ackAll();                                 // release what is pending, ack what comes
//   expect(kafka.ackedText()).toBe("line 1\n...");  // values Kafka acknowledged, in ack order
//
// Outcomes are decided when send() is called: first from the queue filled by next(), then
// by `policy` (default: ack). An acknowledged or rejected SendCall settles on a later
// microtask, like a real network reply. After close(), send() rejects with a retriable
// PublishError (code "CLOSED").

import { PublishError } from "../../lib/errors.ts";
import { recordChunks, type Chunk } from "../../lib/kafka/pack.ts";
import type { Publisher } from "../../lib/kafka/publish.ts";

/** What happens to one send: acknowledged now, held for the test to settle, or rejected. */
export type Outcome = "ack" | "hold" | Error;

/** Decides a send's outcome from its chunks and its 0-based call number. */
export type Policy = (chunks: Chunk[], call: number) => Outcome;

export type SendStatus = "pending" | "acked" | "rejected";

/** One send() call as the fake saw it. */
export class SendCall {
  status: SendStatus = "pending";
  error: Error | undefined;
  private settle!: { resolve: () => void; reject: (err: Error) => void };
  readonly promise: Promise<void>;

  constructor(
    readonly n: number,
    readonly chunks: Chunk[],
    private readonly onAck: (call: SendCall) => void,
  ) {
    this.promise = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
  }

  /** The record values in this send, in order. */
  get values(): Buffer[] {
    return this.chunks.map((c) => c.value);
  }

  /** Acknowledges a pending send (no-op when already settled). */
  ack(): void {
    if (this.status !== "pending") return;
    this.status = "acked";
    this.onAck(this);
    this.settle.resolve();
  }

  /** Rejects a pending send (no-op when already settled). */
  reject(err: Error = retriableError()): void {
    if (this.status !== "pending") return;
    this.status = "rejected";
    this.error = err;
    this.settle.reject(err);
  }
}

export interface FakePublisherOptions {
  /** Partition count of every topic; undefined = partitions unknown (partitionOf returns undefined). */
  partitions?: number;
  policy?: Policy;
}

export class FakePublisher implements Publisher {
  /** Every send() in call order. */
  readonly calls: SendCall[] = [];
  /** Records of acknowledged sends, in the order the acks happened (a run's records one by one, as Kafka holds them). */
  readonly acked: Chunk[] = [];
  policy: Policy;
  partitions: number | undefined;
  closed = false;
  /** How often the agent, idle, asked it to drop its reusable buffers. */
  private readonly scripted: Outcome[] = [];
  private readonly waiters: { n: number; resolve: () => void }[] = [];

  constructor(opts: FakePublisherOptions = {}) {
    this.policy = opts.policy ?? (() => "ack");
    this.partitions = opts.partitions;
  }


  send(chunks: Chunk[]): Promise<void> {
    if (this.closed) return Promise.reject(new PublishError("publisher closed", { retriable: true, code: "CLOSED" }));
    const call = new SendCall(this.calls.length, [...chunks], (c) => this.acked.push(...c.chunks.flatMap(recordChunks)));
    this.calls.push(call);
    const outcome = this.scripted.length > 0 ? this.scripted.shift()! : this.policy(call.chunks, call.n);
    if (outcome === "ack") queueMicrotask(() => call.ack());
    else if (outcome instanceof Error) queueMicrotask(() => call.reject(outcome));
    for (const w of this.waiters.filter((w) => this.calls.length >= w.n)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
    return call.promise;
  }

  /** A stable hash of the key over `partitions`, like a real partitioner; undefined when unknown. */
  partitionOf(_topic: string, key: string): number | undefined {
    if (this.partitions === undefined) return undefined;
    let h = 2166136261;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
    return (h >>> 0) % this.partitions;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** The next sends get these outcomes, in order, before `policy` applies again. */
  next(...outcomes: Outcome[]): this {
    this.scripted.push(...outcomes);
    return this;
  }

  /** From now on every send waits until the test settles it. */
  holdAll(): this {
    this.policy = () => "hold";
    return this;
  }

  /** Acks every pending send (in call order) and every later one. */
  ackAll(): this {
    this.policy = () => "ack";
    this.release();
    return this;
  }

  /** Acks every pending send in call order; later sends follow `policy`. */
  release(): void {
    for (const c of this.pending) c.ack();
  }

  /** Sends neither acked nor rejected yet, in call order. */
  get pending(): SendCall[] {
    return this.calls.filter((c) => c.status === "pending");
  }

  /** Resolves once send() has been called at least `n` times in all. */
  waitForCalls(n: number, timeoutMs = 5_000): Promise<void> {
    if (this.calls.length >= n) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`FakePublisher: ${this.calls.length} sends, waited for ${n}`)), timeoutMs);
      this.waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  /** Every record ever sent (acked, rejected or pending), one entry per attempt (a run's records one by one). */
  get sent(): Chunk[] {
    return this.calls.flatMap((c) => c.chunks.flatMap(recordChunks));
  }

  /** Acknowledged record values concatenated, as one Buffer. */
  ackedBytes(): Buffer {
    return Buffer.concat(this.acked.map((c) => c.value));
  }

  /** Acknowledged record values concatenated, decoded as UTF-8 (for text fixtures). */
  ackedText(): string {
    return this.ackedBytes().toString("utf8");
  }
}

/** A transient failure (the sender retries it), e.g. a broker that is down. */
export function retriableError(message = "fake: leader not available", code = "LEADER_NOT_AVAILABLE"): PublishError {
  return new PublishError(message, { retriable: true, code });
}

/** Kafka refusing a record's size (not retriable as is: the sender must cut or drop it). */
export function tooLargeError(code: "MESSAGE_TOO_LARGE" | "RECORD_LIST_TOO_LARGE" = "MESSAGE_TOO_LARGE"): PublishError {
  return new PublishError("fake: the request included a message larger than the max message size the server will accept", { retriable: false, code });
}
