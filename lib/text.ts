// The one rule for putting text from outside (file names, error messages, config values)
// into a line logship prints: every control character is written as a visible escape, so a
// file named "\x1b]0;pwned\x07.log" cannot retitle or recolour the operator's terminal, and
// one named "a\nINFO forged" cannot forge a second log line. Escapes are the bytes of the
// text's UTF-8, as \xHH (two lowercase hex digits): C0 (0x00-0x1f) and DEL (0x7f) as their byte
// (\n \r \t by their usual names), C1 (U+0080-U+009F) as its two bytes (U+009B is \xc2\x9b),
// and a byte of a file name that is not UTF-8 (U+DC80 + byte inside logship, lib/names.ts) as
// that byte (\xff). So an escape never means two things: \x9b is the byte 0x9b, and what is
// printed is the name's bytes, which `printf` turns back into the name. The backslash itself
// becomes \\, so the escaping is reversible (unescapeText) and a literal "\x1b" in a name stays
// distinguishable from an ESC.
// Applied once, where a line is printed: LogEvents (lib/events.ts), check's table
// (lib/check.ts) and the command line's own output (main.ts). Data stays raw until then.

import { nameFromBytes } from "./names.ts";

const NAMED: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

const hex = (b: number) => `\\x${b.toString(16).padStart(2, "0")}`;

/** `s` with backslashes, control characters and escaped name bytes written as escapes; see the header. */
export function escapeText(s: string): string {
  // The u flag: a lone surrogate matches alone, never the second half of a pair (a character).
  return s.replace(/[\\\x00-\x1f\x7f-\x9f\udc80-\udcff]/gu, (c) => {
    const u = c.charCodeAt(0);
    if (u >= 0xdc80) return hex(u - 0xdc00); // a byte of a name that is not UTF-8
    if (u >= 0x80) return hex(0xc2) + hex(u); // C1: its UTF-8 bytes
    return NAMED[c] ?? hex(u);
  });
}

/**
 * The inverse of escapeText, for readers of logship's output and tests; it also reads \"
 * as " (how a quoted value of a log line holds a quote; see lib/events.ts). A run of \xHH
 * escapes is bytes, read as a name is (lib/names.ts).
 */
export function unescapeText(s: string): string {
  return s.replace(/(?:\\x[0-9a-f]{2})+|\\([\\"nrt])/g, (m: string, e: string | undefined) => (e === undefined ? nameFromBytes(Buffer.from(m.replace(/\\x/g, ""), "hex")) : (UNNAMED[e] ?? e)));
}

const UNNAMED: Record<string, string> = { n: "\n", r: "\r", t: "\t" };
