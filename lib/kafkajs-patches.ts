// What logship changes inside kafkajs, and why. Imported once, by publish.ts, before the
// first record is encoded.
//
// kafkajs' Encoder grows its buffer to the next power of two with Buffer.alloc (zero
// filled) each time a write does not fit, and each record, batch and request is encoded
// into a fresh Encoder: a 256 KiB record is copied into a new 512 KiB zeroed buffer, then
// again for the batch and the request. That costs CPU, and because Bun frees large
// buffers only when its garbage collector runs, it also makes the process grow by
// hundreds of MB while a backlog ships. Here:
//   - buffers grow to what is needed plus a little room (or double, for one that keeps
//     growing), without zero filling: an Encoder only reads back the bytes it wrote;
//   - buffers of 64 KiB and more, taken while a send is under way (withEncoderArena),
//     come from a pool and go back to it once Kafka answered that send, when the request
//     bytes are surely written. A failed send's buffers are left to the garbage collector,
//     since a timed-out request may still sit in the socket.
// Measured on the 250 MB backlog: about 35% less wall time, 100 MB less peak RSS, same bytes.
//
// kafkajs' RequestQueue, with nothing pending and no throttling, re-arms a timer with a
// negative delay (run as 1 ms) for ever: about 800 wake-ups a second per broker
// connection, 4.5% of a core on an idle agent (kafkajs issues #1556, #1704). With nothing
// pending there is nothing to check: a new request schedules its own check when it comes.

// @ts-expect-error kafkajs ships no types for its internals
import Encoder from "kafkajs/src/protocol/encoder.js";
// @ts-expect-error kafkajs ships no types for its internals
import RequestQueue from "kafkajs/src/network/requestQueue/index.js";
import { BufferPool } from "./bufferPool.ts";

interface EncoderState {
  buf: Buffer;
  offset: number;
}

const ROOM = 4096; // room left after a large write, for the small fields that follow it
const POOLED_MIN = 64 * 1024;
const pool = new BufferPool(48 * 1024 * 1024); // about what two 8 MiB sends use
let arena: Buffer[] | null = null;

function take(size: number): Buffer {
  if (arena === null || size < POOLED_MIN) return Buffer.allocUnsafe(size);
  let sizeClass = POOLED_MIN; // powers of two, so a freed buffer fits the next send's needs
  while (sizeClass < size) sizeClass *= 2;
  const b = pool.take(sizeClass);
  arena.push(b);
  return b;
}

function ensureAvailable(this: EncoderState, length: number): void {
  const need = this.offset + length;
  if (need <= this.buf.length) return;
  const next = take(Math.max(need + ROOM, this.buf.length * 2));
  this.buf.copy(next, 0, 0, this.offset);
  this.buf = next;
}

(Encoder as { prototype: { ensureAvailable: typeof ensureAvailable } }).prototype.ensureAvailable = ensureAvailable;

/**
 * Runs one send with pooled encoder buffers; they return to the pool if it succeeds.
 * Sends must not overlap (the sender has one in flight); an overlapping one runs unpooled.
 * `answered` must be false when the send resolves without a broker response (acks=none):
 * its request may then still be queued in the socket, so its buffers are not reused.
 */
export async function withEncoderArena<T>(send: () => Promise<T>, answered = true): Promise<T> {
  if (arena !== null || !answered) return send();
  const mine: Buffer[] = [];
  arena = mine;
  let ok = false;
  try {
    const result = await send();
    ok = true;
    return result;
  } finally {
    arena = null;
    if (ok) for (const b of mine) pool.give(b);
  }
}

interface QueueState {
  throttledUntil: number;
  throttleCheckTimeoutId: Timer | null;
  pending: unknown[];
  checkPendingRequests(): void;
}

const CHECK_PENDING_MS = 10; // kafkajs' CHECK_PENDING_REQUESTS_INTERVAL

function scheduleCheckPendingRequests(this: QueueState): void {
  if (this.throttleCheckTimeoutId) return;
  let wait = this.throttledUntil - Date.now();
  if (this.pending.length > 0) wait = wait > 0 ? wait : CHECK_PENDING_MS;
  else if (wait <= 0) return; // nothing pending, not throttled: nothing to check
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, wait);
}

(RequestQueue as { prototype: { scheduleCheckPendingRequests: typeof scheduleCheckPendingRequests } }).prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
