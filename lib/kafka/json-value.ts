// The bytes of `format: json` record values, written into shared slabs instead of a string
// and a Buffer per line (Buffer.from per line was 30% of json's CPU on the backlog set). A
// value is `{"@timestamp":"…","message":` + the message as a JSON string + the envelope
// (host, path) + the offset + the file id and static fields + `}`: everything but the message
// and the offset is the same for every line of a read, encoded once. A line of ASCII bytes is
// escaped here byte by byte as JSON.stringify would (no decoding, no string); a line with
// other bytes is decoded and goes through JSON.stringify as before.
//
// Invariant: a value is byte for byte what format.ts' template string gave, encoded as UTF-8
// (tests/format.test.ts compares them). A slab is written again only once every record cut
// from it was released (acknowledged or dropped): format.ts holds the slab of each chunk it
// makes (memory.ts' WriteSlabs) as soon as its first value is written.

import { BufferPool, WriteSlabs } from "../memory.ts";
import { digitsOf, putDigits } from "./records.ts";

const SLAB = 256 * 1024;

/** JSON.stringify's escape of each control character: \b \t \n \f \r, the others as \u00xx. */
const ESCAPE: string[] = Array.from({ length: 0x20 }, (_, c) => JSON.stringify(String.fromCharCode(c)).slice(1, -1));

/** Bytes JSON.stringify adds to a byte of a line when escaping it; 255: not ASCII (the line is decoded instead). */
const EXTRA = Uint8Array.from({ length: 256 }, (_, b) => (b >= 0x80 ? 255 : b < 0x20 ? ESCAPE[b]!.length - 1 : b === 0x22 || b === 0x5c ? 1 : 0));

/** The slabs values are written into, shared by every input and file (one thread writes); a few free ones are kept. */
export const jsonSlabs = new WriteSlabs(new BufferPool(8 * SLAB), SLAB);
const shared = jsonSlabs;

export class JsonValues {
  private ts = "";
  private head = Buffer.alloc(0); // {"@timestamp":"TS","message":
  private readonly mid: Buffer; // ,"host":…,"path":…,"offset":
  private readonly tail: Buffer; // ,"file":…FIELDS}

  constructor(envelope: string, fileId: string, fieldsJson: string) {
    this.mid = Buffer.from(envelope);
    this.tail = Buffer.from(`,"file":${JSON.stringify(fileId)}${fieldsJson}}`);
  }

  /** The read time of the lines that follow, as RFC 3339 with ms. */
  timestamp(ts: string): void {
    if (ts === this.ts) return;
    this.ts = ts;
    this.head = Buffer.from(`{"@timestamp":"${ts}","message":`);
  }

  /**
   * Writes the value of the line bytes[from, to) when they are ASCII (its final "\n" aside),
   * escaped as JSON.stringify escapes them; returns where it starts in `jsonSlabs.buf` (it
   * ends at `jsonSlabs.at`), or -1 when the line holds a byte of 0x80 or more (then it is decoded).
   */
  plain(bytes: Buffer, from: number, to: number, offset: number): number {
    const n = to > from && bytes[to - 1] === 0x0a ? to - 1 : to;
    let extra = 0;
    for (let i = from; i < n; i++) {
      const e = EXTRA[bytes[i]!]!; // one look-up per byte: most bytes need nothing
      if (e === 0) continue;
      if (e === 255) return -1;
      extra += e;
    }
    const buf = shared.room(this.head.length + (n - from) + extra + 2 + this.mid.length + 16 + this.tail.length);
    const start = shared.at;
    let at = start;
    buf.set(this.head, at);
    at += this.head.length;
    buf[at++] = 0x22;
    if (extra === 0) {
      bytes.copy(buf, at, from, n);
      at += n - from;
    } else {
      for (let i = from; i < n; i++) {
        const b = bytes[i]!;
        if (b < 0x20) {
          const e = ESCAPE[b]!;
          for (let k = 0; k < e.length; k++) buf[at++] = e.charCodeAt(k);
        } else {
          if (b === 0x22 || b === 0x5c) buf[at++] = 0x5c;
          buf[at++] = b;
        }
      }
    }
    buf[at++] = 0x22;
    this.finish(buf, at, offset);
    return start;
  }

  /** Writes the value of a line given as its JSON string (JSON.stringify'd message, with `extra` after it: `,"invalid_utf8":true` or ""); returns where it starts (see plain). */
  fromJson(message: string, extra: string, offset: number): number {
    const most = this.head.length + message.length * 3 + extra.length + this.mid.length + 16 + this.tail.length;
    const buf = shared.room(most);
    const start = shared.at;
    let at = start;
    buf.set(this.head, at);
    at += this.head.length;
    at += buf.write(message, at, "utf8");
    at += buf.write(extra, at, "latin1");
    this.finish(buf, at, offset);
    return start;
  }

  private finish(buf: Buffer, at: number, offset: number): void {
    buf.set(this.mid, at);
    at += this.mid.length;
    const digits = digitsOf(offset);
    putDigits(buf, at, offset, digits);
    at += digits;
    buf.set(this.tail, at);
    at += this.tail.length;
    shared.at = at;
  }
}
