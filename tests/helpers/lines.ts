// The test kit's one line generator: `TAG SEQ PAYLOAD\n`, SEQ zero-padded, PAYLOAD a letter
// derived from tag and seq repeated `width` times, so a line read back proves where it came
// from (verifyDelivery in delivery.ts parses and re-derives it). The presets below are the
// shapes the tests use; lifecycle-model.test.ts keeps its own lineText (its variable payload
// is part of what the model checks).
//
//   seqLine("a", 3)                   "a 00000003 " + 40 × letter + "\n"  (faults tests)
//   seqLines("a", 0, 100)             lines 0..99 as one string
//   appendLines(path, "a", 0, 100)    appends them to a file; returns the next seq (100)
//   linesBytes("a", 0, 100)           the bytes they take
//   lines("app", 0, 3)                "app 0000\napp 0001\napp 0002\n"  (harness tests: no payload)
//   fixedLines("b0", 1, 101)          lines 1..100 of exactly 40 bytes each, as a Buffer (e2e tests)

import { appendFileSync } from "node:fs";

/** Line `seq` of `tag`: SEQ padded to `digits`; `width` payload letters (0: no payload, no space before it). */
export function seqLine(tag: string, seq: number, width = 40, digits = 8): string {
  const base = `${tag} ${String(seq).padStart(digits, "0")}`;
  if (width <= 0) return `${base}\n`;
  const fill = ((seq * 7919 + tag.length * 31) % 26) + 97;
  return `${base} ${String.fromCharCode(fill).repeat(width)}\n`;
}

/** Lines from..from+count-1 of `tag`, joined. */
export function seqLines(tag: string, from: number, count: number, width = 40, digits = 8): string {
  const parts: string[] = [];
  for (let s = from; s < from + count; s++) parts.push(seqLine(tag, s, width, digits));
  return parts.join("");
}

/** Appends lines seq from..from+count-1 of `tag` to `path`; returns the next seq. */
export function appendLines(path: string, tag: string, from: number, count: number, width = 40): number {
  appendFileSync(path, seqLines(tag, from, count, width));
  return from + count;
}

/** Bytes of `count` lines of `tag` from seq `from` (the size they take in a file). */
export function linesBytes(tag: string, from: number, count: number, width = 40): number {
  return Buffer.byteLength(seqLines(tag, from, count, width));
}

/** Lines `prefix 0000\n` ... with a fixed width, so sizes are easy to reason about. */
export function lines(prefix: string, from: number, count: number): string {
  return seqLines(prefix, from, count, 0, 4);
}

/** Lines from..to-1 of `tag`, each exactly `size` bytes ("TAG NNNNNN payload\n"), as a Buffer. */
export function fixedLines(tag: string, from: number, to: number, size = 40): Buffer {
  return Buffer.from(seqLines(tag, from, to - from, fixedWidth(tag, size), 6));
}

/** The payload width that makes a six-digit line of `tag` exactly `size` bytes. */
export function fixedWidth(tag: string, size = 40): number {
  return size - tag.length - 9;
}
