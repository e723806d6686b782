// Sending: the queue between reading and Kafka. Chunks enter in read order and are tracked
// by the checkpoint at once; one send is in flight at a time, so a file's records reach
// Kafka in order even across retries. A failed send is retried with exponential backoff
// (capped) and reading stays paused meanwhile, because the queue's bytes count against the
// agent's in-flight cap. A record Kafka calls too large is cut at line ends and retried;
// a single line that is still too large is dropped, counted and logged, never retried for ever.

import { systemClock, type Cancel, type Clock } from "../clock.ts";
import type { Checkpoint } from "../state/checkpoint.ts";
import type { AgentEvents } from "../events.ts";
import { PublishError } from "../errors.ts";
import { countLines, type Chunk } from "./pack.ts";
import { nextBatch, TOO_LARGE, toPublishError, type Publisher } from "./publish.ts";

export interface SenderOptions {
  maxMessageBytes: number;
  maxSendBytes: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
}

export class Sender {
  private queue: Chunk[] = [];
  private wake: (() => void) | null = null;
  private sleeping: { cancel: Cancel; resolve: () => void } | null = null;
  private running: Promise<void> | null = null;
  private stopping = false;
  private aborted = false;
  private attempt = 0;
  private failingSince: number | null = null; // clock.now() when sends began to fail; null while they succeed
  private singleNext = false; // after "too large", send the first record alone
  /** Bytes of chunk values queued or in flight. */
  inflightBytes = 0;
  /** Called after every acknowledged send (room for more reading). */
  onAcked: () => void = () => {};

  constructor(
    private publisher: Publisher,
    private readonly checkpoint: Checkpoint,
    private readonly events: AgentEvents,
    private opts: SenderOptions,
    private readonly clock: Clock = systemClock,
  ) {}

  configure(opts: SenderOptions): void {
    this.opts = opts;
  }

  get queued(): number {
    return this.queue.length;
  }


  /** Queues chunks in read order; their offsets now wait for these acks. */
  enqueue(chunks: Chunk[]): void {
    const now = this.clock.now();
    for (const c of chunks) {
      c.queuedAt = now;
      this.checkpoint.track(c);
      this.queue.push(c);
      this.inflightBytes += c.value.length;
    }
    this.wakeUp();
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Swaps the Kafka client (config reload); the current send finishes on the old one. */
  usePublisher(p: Publisher): Publisher {
    const old = this.publisher;
    this.publisher = p;
    return old;
  }

  /** Sends what is queued, then stops. Resolves true if everything was acknowledged before `deadline` (the clock's now()). */
  async drain(deadline: number): Promise<boolean> {
    this.stopping = true;
    this.wakeUp();
    const loop = this.running ?? Promise.resolve();
    let cancel: Cancel = () => {};
    const timedOut = new Promise<"timeout">((r) => (cancel = this.clock.after(deadline - this.clock.now(), () => r("timeout"))));
    const outcome = await Promise.race([loop.then(() => "done" as const), timedOut]);
    cancel();
    if (outcome === "timeout") this.abort();
    return this.queue.length === 0;
  }

  /** Stops at once: nothing more is sent; unacknowledged chunks stay unacknowledged. */
  abort(): void {
    this.aborted = true;
    this.stopping = true;
    this.wakeUp();
  }

  private async loop(): Promise<void> {
    while (!this.aborted) {
      if (this.queue.length === 0) {
        if (this.stopping) return;
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      const batch = this.singleNext ? throughFirstRecord(this.queue) : nextBatch(this.queue, this.opts, (t, k) => this.publisher.partitionOf(t, k));
      this.singleNext = false;
      const records = batch.filter((c) => c.value.length > 0);
      try {
        if (records.length > 0) await this.publisher.send(records);
        if (this.aborted) return;
        this.acked(batch, records);
      } catch (err) {
        if (this.aborted) return;
        await this.failed(records, toPublishError(err));
      }
    }
  }

  /** `batch` (a prefix of the queue) is done; `records` are the chunks of it Kafka holds now. */
  private acked(batch: Chunk[], records: Chunk[]): void {
    this.queue.splice(0, batch.length);
    this.checkpoint.acked(batch);
    for (const c of batch) {
      this.inflightBytes -= c.value.length;
      c.release?.();
    }
    let bytes = 0;
    let lines = 0;
    for (const c of records) {
      bytes += c.value.length;
      lines += c.lines;
    }
    const queuedAt = records[0]?.queuedAt; // the oldest record of the send
    this.events.chunksAcked(records.length, lines, bytes, queuedAt === undefined ? undefined : this.clock.now() - queuedAt);
    if (this.failingSince !== null) this.events.sendRecovered(this.clock.now() - this.failingSince);
    this.failingSince = null;
    this.attempt = 0;
    this.onAcked();
  }

  private async failed(records: Chunk[], err: PublishError): Promise<void> {
    if (TOO_LARGE.has(err.code)) return this.tooLarge(records, err);
    this.attempt++;
    this.failingSince ??= this.clock.now();
    const base = Math.min(this.opts.retryBackoffMaxMs, this.opts.retryBackoffMs * 2 ** Math.min(this.attempt - 1, 30));
    const delay = Math.round(base / 2 + Math.random() * (base / 2)); // jitter, so agents do not retry in step
    this.events.sendFailed(err.message, err.code, err.retriable, this.attempt, delay);
    await this.sleep(delay);
  }

  /**
   * Kafka refused a record's size: send the first record alone, cut it at line ends (and
   * send its first half alone), or drop it when it is a single line. Each refusal makes the
   * next send smaller, so this ends; empty chunks (skipped bytes) are never the culprit.
   */
  private tooLarge(records: Chunk[], err: PublishError): void {
    this.singleNext = true;
    if (records.length !== 1) return;
    const refused = records[0]!;
    const at = this.queue.indexOf(refused);
    const halves = splitAtLine(refused);
    if (halves) {
      this.queue.splice(at, 1, ...halves);
      this.checkpoint.split(refused, halves);
      return;
    }
    this.singleNext = false;
    this.events.recordDropped(refused.source.path, refused.start, refused.value.length, err.code);
    this.acked(this.queue.slice(0, at + 1), []); // with the empty chunks ahead of it
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.clock.after(ms, () => {
        this.sleeping = null;
        resolve();
      });
      this.sleeping = { cancel, resolve };
    });
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
    if (this.sleeping && this.aborted) {
      this.sleeping.cancel();
      const s = this.sleeping;
      this.sleeping = null;
      s.resolve();
    }
  }
}

/** The head of the queue up to and including its first non-empty chunk (one record). */
function throughFirstRecord(queue: Chunk[]): Chunk[] {
  const i = queue.findIndex((c) => c.value.length > 0);
  return queue.slice(0, i < 0 ? queue.length : i + 1);
}

/** Cuts a chunk in two at the line end nearest its middle; null for a single line. */
export function splitAtLine(c: Chunk): [Chunk, Chunk] | null {
  const v = c.value;
  const mid = v.length >> 1;
  let cut = v.lastIndexOf(0x0a, mid - 1) + 1;
  if (cut <= 0) cut = v.indexOf(0x0a, mid) + 1;
  if (cut <= 0 || cut >= v.length) return null;
  const a = v.subarray(0, cut);
  const b = v.subarray(cut);
  const overhead = c.size - c.value.length;
  // The read buffer goes back with the second piece, which is acknowledged after the first.
  return [
    { ...c, value: a, end: c.start + cut, lines: countLines(a), size: overhead + a.length, release: undefined },
    { ...c, value: b, start: c.start + cut, lines: countLines(b), size: overhead + b.length },
  ];
}
