// What logship changes inside kafkajs, and why. Imported once, by publish.ts, before the
// first record is encoded.
//
// kafkajs' Encoder grows its buffer to the next power of two with Buffer.alloc (zero
// filled) each time a write does not fit. A record holding a 256 KiB value is therefore
// copied into a fresh 512 KiB zeroed buffer, and so again for the batch and the request.
// Here the buffer grows to what is needed plus a little room (or doubles, for a buffer
// that keeps growing, e.g. a batch collecting records), without zero filling: an Encoder
// only ever reads back the bytes it wrote. Measured on the backlog benchmark: about 20%
// less wall time with identical output.

// @ts-expect-error kafkajs ships no types for its internals
import Encoder from "kafkajs/src/protocol/encoder.js";

interface EncoderState {
  buf: Buffer;
  offset: number;
}

const ROOM = 4096; // room left after a large write, for the small fields that follow it

function ensureAvailable(this: EncoderState, length: number): void {
  const need = this.offset + length;
  if (need <= this.buf.length) return;
  const next = Buffer.allocUnsafe(Math.max(need + ROOM, this.buf.length * 2));
  this.buf.copy(next, 0, 0, this.offset);
  this.buf = next;
}

(Encoder as { prototype: { ensureAvailable: typeof ensureAvailable } }).prototype.ensureAvailable = ensureAvailable;

export const kafkajsPatched = true;
