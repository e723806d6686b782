// Sending: the queues between reading and Kafka, one per topic (a lane). Chunks enter in read
// order and are tracked by the checkpoint at once; each lane has one send in flight at a time,
// so a file's records (a file has one topic) reach Kafka in order even across retries. A
// failed send is retried, with the same chunks (the idempotent producer's sequences depend on
// it), with exponential backoff (capped) in its own lane only: a topic that
// does not exist, or whose partition has no leader, backs off alone while the other topics
// ship on (the checkpoint moves each file's offset over its acknowledged prefix, whatever
// order the lanes' acks come in). Reading of a failing lane's files pauses (readRoom), and the
// lanes' bytes count against the agent's in-flight cap. A record Kafka calls too large is cut
// at line ends and retried; a single line that is still too large is dropped, counted and
// logged, never retried for ever.
//
// Memory while a lane fails: healthy lanes read while everything queued is under the cap, or,
// when failing lanes hold the cap, while they themselves hold under half of it and everything
// is under one and a half times the cap. So a failing topic never stops the others, and the
// bytes read but not acknowledged stay under 1.5 × max_inflight_bytes (plus one read).

import { systemClock, type Cancel, type Clock } from "../clock.ts";
import type { Checkpoint } from "../state/checkpoint.ts";
import type { AgentEvents } from "../events.ts";
import { PublishError } from "../errors.ts";
import { countLines, recordsOf, runRecord, type Chunk } from "./pack.ts";
import { ackedDespite, nextBatch, TOO_LARGE, toPublishError, type Publisher } from "./publish.ts";

export interface SenderOptions {
  maxMessageBytes: number;
  maxSendBytes: number;
  /** Non-empty chunks (a record each, or a run of records: format.ts) in one send at most. Default: no limit. */
  maxSendChunks?: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  /** Non-empty chunks of healthy lanes queued or in flight at most; reading pauses there. Default: no limit. */
  maxInflightChunks?: number;
}

export class Sender {
  private readonly lanes = new Map<string, Lane>();
  private started = false;
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

  /** Chunks queued or in flight, all lanes together. */
  get queued(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.queue.length;
    return n;
  }

  /** Bytes of chunk values queued or in flight, all lanes together. */
  get inflightBytes(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.bytes;
    return n;
  }

  /** Non-empty chunks queued or in flight, all lanes together. */
  get inflightChunks(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.chunks;
    return n;
  }


  /** True while the sends of `topic` are failing. */
  failingTopic(topic: string): boolean {
    return (this.lanes.get(topic)?.failingSince ?? null) !== null;
  }

  /**
   * Bytes a file of `topic` may read now under the in-flight cap `cap` (0: none). Without a
   * topic, the most any healthy lane may read. A failing lane reads nothing; a healthy one
   * reads under the cap, or, while failing lanes hold it, within half of it (see the header).
   */
  readRoom(cap: number, topic?: string): number {
    if (topic !== undefined && this.failingTopic(topic)) return 0;
    let all = 0;
    let healthy = 0;
    let healthyChunks = 0;
    for (const lane of this.lanes.values()) {
      all += lane.bytes;
      if (lane.failingSince !== null) continue;
      healthy += lane.bytes;
      healthyChunks += lane.chunks;
    }
    // One record per line (format line, json) costs far more than its bytes in kafkajs' objects: their number is capped too.
    if (healthyChunks >= (this.opts.maxInflightChunks ?? Infinity)) return 0;
    return Math.floor(Math.max(0, cap - all, Math.min(cap / 2 - healthy, cap + cap / 2 - all)));
  }

  /** Queues chunks in read order, each in its topic's lane; their offsets now wait for these acks. */
  enqueue(chunks: Chunk[]): void {
    const now = this.clock.now();
    const woken = new Set<Lane>();
    for (const c of chunks) {
      c.queuedAt = now;
      this.checkpoint.track(c);
      const lane = this.lane(c.source.topic);
      lane.queue.push(c);
      lane.bytes += c.value.length;
      if (c.value.length > 0) lane.chunks++;
      woken.add(lane);
    }
    for (const lane of woken) this.wakeUp(lane);
  }

  start(): void {
    this.started = true;
    for (const lane of this.lanes.values()) lane.running ??= this.loop(lane);
  }

  /** Swaps the Kafka client (config reload); the current sends finish on the old one. */
  usePublisher(p: Publisher): Publisher {
    const old = this.publisher;
    this.publisher = p;
    return old;
  }

  /** Sends what is queued, then stops. Resolves true if everything was acknowledged before `deadline` (the clock's now()). */
  async drain(deadline: number): Promise<boolean> {
    this.stopping = true;
    for (const lane of this.lanes.values()) this.wakeUp(lane);
    const loops = Promise.all([...this.lanes.values()].map((lane) => lane.running ?? Promise.resolve()));
    let cancel: Cancel = () => {};
    const timedOut = new Promise<"timeout">((r) => (cancel = this.clock.after(deadline - this.clock.now(), () => r("timeout"))));
    const outcome = await Promise.race([loops.then(() => "done" as const), timedOut]);
    cancel();
    if (outcome === "timeout") this.abort();
    return this.queued === 0;
  }

  /** Stops at once: nothing more is sent; unacknowledged chunks stay unacknowledged. */
  abort(): void {
    this.aborted = true;
    this.stopping = true;
    for (const lane of this.lanes.values()) this.wakeUp(lane);
  }

  private stopping = false;
  private aborted = false;

  private lane(topic: string): Lane {
    let lane = this.lanes.get(topic);
    if (!lane) {
      lane = new Lane(topic);
      this.lanes.set(topic, lane);
      if (this.started) lane.running = this.loop(lane);
    }
    return lane;
  }

  private async loop(lane: Lane): Promise<void> {
    while (!this.aborted) {
      if (lane.queue.length === 0) {
        if (this.stopping) return;
        await new Promise<void>((r) => (lane.wake = r));
        continue;
      }
      const batch = lane.singleNext ? throughFirstRecord(lane.queue) : lane.retry > 0 ? lane.queue.slice(0, lane.retry) : nextBatch(lane.queue, this.opts, (t, k) => this.publisher.partitionOf(t, k));
      lane.singleNext = false;
      lane.retry = 0;
      const records = batch.filter((c) => c.value.length > 0);
      try {
        if (records.length > 0) await this.publisher.send(records);
        if (this.aborted) return;
        this.acked(lane, batch, records);
      } catch (err) {
        if (this.aborted) return;
        await this.failed(lane, batch, records, toPublishError(err));
      }
    }
  }

  /** `batch` (a prefix of the lane's queue) is done; `records` are the chunks of it Kafka holds now. */
  private acked(lane: Lane, batch: Chunk[], records: Chunk[]): void {
    lane.queue.splice(0, batch.length);
    this.settle(lane, batch);
    this.reportAcked(records);
    if (lane.failingSince !== null) this.events.sendRecovered(this.clock.now() - lane.failingSince);
    lane.failingSince = null;
    lane.attempt = 0;
    this.afterAck();
  }

  /** `chunks` (out of the lane's queue now) are done: their offsets may move, their buffers go back. */
  private settle(lane: Lane, chunks: readonly Chunk[]): void {
    this.checkpoint.acked(chunks);
    for (const c of chunks) {
      lane.bytes -= c.value.length;
      if (c.value.length > 0) lane.chunks--;
      c.release?.();
    }
  }

  /** Says that Kafka acknowledged `records` (their first is the oldest of the send). */
  private reportAcked(records: readonly Chunk[]): void {
    let bytes = 0;
    let lines = 0;
    let count = 0;
    for (const c of records) {
      bytes += c.value.length;
      lines += c.lines;
      count += recordsOf(c);
    }
    const queuedAt = records[0]?.queuedAt;
    this.events.chunksAcked(count, lines, bytes, queuedAt === undefined ? undefined : this.clock.now() - queuedAt);
  }

  private ackPending = false;

  /**
   * onAcked (which reads more) runs once the lanes' next sends are written: the lane loops
   * go on to their next send right after an ack, and reading the next share first held that
   * send back behind it (reading and Kafka's work took turns instead of overlapping).
   */
  private afterAck(): void {
    if (this.ackPending) return;
    this.ackPending = true;
    setImmediate(() => {
      this.ackPending = false;
      this.onAcked();
    });
  }

  /**
   * A failed send is retried with the same chunks (those Kafka did not acknowledge): with
   * idempotence, a batch the broker may have stored must be sent again exactly as it was, to
   * have the same sequence numbers (kafka/idempotence.ts); chunks queued meanwhile wait.
   */
  private async failed(lane: Lane, batch: Chunk[], records: Chunk[], err: PublishError): Promise<void> {
    const held = ackedDespite(err);
    if (held.length > 0) records = this.ackedAlone(lane, records, held);
    if (TOO_LARGE.has(err.code)) return this.tooLarge(lane, records, err);
    lane.retry = batch.length - held.length;
    lane.attempt++;
    lane.failingSince ??= this.clock.now();
    const base = Math.min(this.opts.retryBackoffMaxMs, this.opts.retryBackoffMs * 2 ** Math.min(lane.attempt - 1, 30));
    const delay = Math.round(base / 2 + Math.random() * (base / 2)); // jitter, so agents do not retry in step
    this.events.sendFailed(err.message, err.code, err.retriable, lane.attempt, delay);
    await this.sleep(lane, delay);
  }

  /**
   * A failed send whose other partitions Kafka acknowledged: their chunks (`held`, all of
   * their files' chunks in the send, since a file's records share a partition) leave the
   * queue as acknowledged, so the retry sends only the rest and nothing twice. Each file's
   * offset still moves over its acknowledged prefix only (the checkpoint). Returns the
   * records still to send.
   */
  private ackedAlone(lane: Lane, records: Chunk[], held: readonly Chunk[]): Chunk[] {
    const done = new Set(held);
    lane.queue = lane.queue.filter((c) => !done.has(c));
    this.settle(lane, held);
    this.reportAcked(held);
    this.afterAck();
    return records.filter((c) => !done.has(c));
  }

  /**
   * Kafka refused a record's size: send the first record alone, cut it at line ends (and
   * send its first half alone), or drop it when it is a single line. Each refusal makes the
   * next send smaller, so this ends; empty chunks (skipped bytes) are never the culprit.
   */
  private tooLarge(lane: Lane, records: Chunk[], err: PublishError): void {
    lane.singleNext = true;
    if (records.length !== 1) return;
    const refused = records[0]!;
    const at = lane.queue.indexOf(refused);
    const halves = splitAtLine(refused);
    if (halves) {
      lane.queue.splice(at, 1, ...halves);
      lane.chunks++; // one chunk became two
      this.checkpoint.split(refused, halves);
      return;
    }
    lane.singleNext = false;
    this.events.recordDropped(refused.source.path, refused.start, refused.value.length, err.code);
    this.acked(lane, lane.queue.slice(0, at + 1), []); // with the empty chunks ahead of it
  }

  private sleep(lane: Lane, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.clock.after(ms, () => {
        lane.sleeping = null;
        resolve();
      });
      lane.sleeping = { cancel, resolve };
    });
  }

  private wakeUp(lane: Lane): void {
    const w = lane.wake;
    lane.wake = null;
    w?.();
    if (lane.sleeping && this.aborted) {
      lane.sleeping.cancel();
      const s = lane.sleeping;
      lane.sleeping = null;
      s.resolve();
    }
  }
}

/** One topic's queue: its chunks in read order, one send in flight, its own backoff. */
class Lane {
  queue: Chunk[] = []; // replaced, not only spliced, when some of a failed send was acknowledged
  /** Bytes of chunk values queued or in flight in this lane. */
  bytes = 0;
  /** Non-empty chunks queued or in flight in this lane. */
  chunks = 0;
  attempt = 0;
  failingSince: number | null = null; // clock.now() when this lane's sends began to fail; null while they succeed
  singleNext = false; // after "too large", send the first record alone
  retry = 0; // after a failure: the next send is the queue's first `retry` chunks, the failed send less what was acknowledged
  wake: (() => void) | null = null;
  sleeping: { cancel: Cancel; resolve: () => void } | null = null;
  running: Promise<void> | null = null;

  constructor(readonly topic: string) {}
}

/** The head of the queue up to and including its first non-empty chunk (one record). */
function throughFirstRecord(queue: Chunk[]): Chunk[] {
  const i = queue.findIndex((c) => c.value.length > 0);
  return queue.slice(0, i < 0 ? queue.length : i + 1);
}

/** Cuts a chunk in two at the line end nearest its middle (a run between two of its records); null for a single line. */
export function splitAtLine(c: Chunk): [Chunk, Chunk] | null {
  if (c.run !== undefined) return splitRun(c);
  if (c.raw) return null; // a value that is not the file's bytes (json, redacted): its positions are no file offsets
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

/** Cuts a run in two between its records, at the middle one; each half a run still, or a plain chunk of one record. */
function splitRun(c: Chunk): [Chunk, Chunk] {
  const n = c.run!;
  const k = n >> 1; // n >= 2
  const raw = c.raw ?? c.value;
  let cut = 0; // where record k starts in the file's bytes
  let vcut = 0; // and in the value
  for (let i = 0; i < k; i++) ({ vto: vcut, rto: cut } = runRecord(c, i, vcut, cut));
  const per = (c.size - c.value.length) / n; // framing per record (sizes are upper bounds)
  const piece = (from: number, to: number, vfrom: number, vto: number, records: number, ends: Int32Array | undefined): Chunk => {
    const value = c.value.subarray(vfrom, vto);
    return {
      ...c, value, start: c.start + from, end: to === raw.length ? c.end : c.start + to,
      lines: countLines(raw.subarray(from, to)), size: Math.ceil(per * records) + value.length,
      raw: c.raw ? raw.subarray(from, to) : undefined,
      run: records > 1 ? records : undefined, ends: records > 1 ? ends : undefined,
    };
  };
  const a = piece(0, cut, 0, vcut, k, c.ends?.slice(0, k));
  const b = piece(cut, raw.length, vcut, c.value.length, n - k, c.ends?.slice(k).map((e) => e - vcut));
  // The read buffer goes back with the second piece, which is acknowledged after the first.
  a.release = undefined;
  return [a, b];
}
