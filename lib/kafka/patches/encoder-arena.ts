// The encoder arena: where the patched kafkajs Encoder (encoder.ts) takes its buffers from.
//   - while a send is under way (withEncoderArena), buffers under 4 KiB (a record's or a
//     header's fields) are cut from 64 KiB blocks, and buffers of 64 KiB and more (the
//     rope's joins, encoder.ts) come whole from a pool; all go back to the pool once Kafka answered
//     that send, when the request bytes are surely written. A failed send's buffers are left to the garbage
//     collector, since a timed-out request may still sit in the socket. The request is
//     still written as one joined buffer: writing the parts would leave read buffers (the
//     values) referenced by the socket after a failed send, when they may be reused.
// (Measurements: encoder.ts' header; the cut small buffers are part of the small-records gain.)
//
// Invariant: a buffer goes back to the pool only after the send that took it was answered
// by Kafka, and between sends no buffer of the pool is in use. There is one EncoderArena for
// the process (`encoderArena`): kafkajs' Encoder is patched once, process-wide. The sender
// has one send in flight per topic; a send that starts while another is under way runs
// unpooled, and the arena of a send that was overlapped is not pooled either (its buffers
// may hold the other send's request).

import { BufferPool } from "../../memory.ts";

const POOLED_MIN = 64 * 1024;
const SMALL_MAX = 4096; // smaller buffers are carved from SMALL_BLOCK blocks during a send
const SMALL_BLOCK = 64 * 1024;

export class EncoderArena {
  private readonly pool = new BufferPool(48 * 1024 * 1024); // about what two 8 MiB sends use
  /** The pooled buffers handed out during the send under way; null between sends. */
  private arena: Buffer[] | null = null;
  /** The block small buffers are carved from during a send (a block of the arena). */
  private small: { buf: Buffer; used: number } | null = null;
  /** Joined buffers (views) with free bytes in front of them, and how many. */
  readonly roomBefore = new WeakMap<Buffer, number>();

  /** A buffer of at least `size` bytes, contents garbage: pooled during a send, fresh otherwise. */
  take(size: number): Buffer {
    const arena = this.arena;
    if (arena === null) return Buffer.allocUnsafe(size);
    if (size < SMALL_MAX) return this.carve(size);
    if (size < POOLED_MIN) return Buffer.allocUnsafe(size);
    let sizeClass = POOLED_MIN; // powers of two, so a freed buffer fits the next send's needs
    while (sizeClass < size) sizeClass *= 2;
    const b = this.pool.take(sizeClass);
    arena.push(b);
    return b;
  }

  /** A small buffer cut from the arena's current block: no allocation of its own. */
  private carve(size: number): Buffer {
    let small = this.small;
    if (small === null || small.used + size > small.buf.length) {
      const block = this.pool.take(SMALL_BLOCK);
      this.arena!.push(block);
      small = this.small = { buf: block, used: 0 };
    }
    const b = small.buf.subarray(small.used, small.used + size);
    small.used += size;
    return b;
  }

  /** Sends under way, pooled or not. */
  private active = 0;
  /** The arena's buffers may hold another send's request (sends overlapped): they go to the collector, not the pool. */
  private shared = false;

  /** See withEncoderArena. */
  async run<T>(send: () => Promise<T>, answered: boolean): Promise<T> {
    this.active++;
    if (this.arena !== null || this.active > 1 || !answered) {
      // Overlapping sends (the sender's lanes) cannot tell whose encoding takes a buffer:
      // whatever the arena handed out during the overlap is left to the collector.
      if (this.arena !== null) this.shared = true;
      try {
        return await send();
      } finally {
        this.active--;
      }
    }
    const mine: Buffer[] = [];
    this.arena = mine;
    this.shared = false;
    let ok = false;
    try {
      const result = await send();
      ok = true;
      return result;
    } finally {
      this.active--;
      this.arena = null;
      this.small = null;
      if (ok && !this.shared) for (const b of mine) this.pool.give(b);
    }
  }
}

/** The process' one arena: the patched Encoder prototype is shared by every kafkajs client. */
export const encoderArena = new EncoderArena();

/**
 * Runs one send with pooled encoder buffers; they return to the pool if it succeeds.
 * Overlapping sends (one per topic lane) are safe: they run unpooled, see EncoderArena.run.
 * `answered` must be false when the send resolves without a broker response (acks=none):
 * its request may then still be queued in the socket, so its buffers are not reused.
 */
export function withEncoderArena<T>(send: () => Promise<T>, answered = true): Promise<T> {
  return encoderArena.run(send, answered);
}

