// The one rule for putting text from outside (file names, error messages, config values)
// into a line logship prints: every control character is written as a visible escape, so a
// file named "\x1b]0;pwned\x07.log" cannot retitle or recolour the operator's terminal, and
// one named "a\nINFO forged" cannot forge a second log line. C0 (0x00-0x1f), DEL (0x7f) and
// C1 (0x80-0x9f) are escaped: \n \r \t by their usual names, the rest as \xHH (two lowercase
// hex digits). The backslash itself becomes \\, so the escaping is reversible (unescapeText)
// and a literal "\x1b" in a name stays distinguishable from an ESC.
// Applied once, where a line is printed: LogEvents (lib/events.ts), check's table
// (lib/check.ts) and the command line's own output (main.ts). Data stays raw until then.
// (Names that are not valid UTF-8 are another matter: they reach here already decoded.)

const NAMED: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `s` with backslashes and C0/DEL/C1 control characters escaped; see the header. */
export function escapeText(s: string): string {
  return s.replace(/[\\\x00-\x1f\x7f-\x9f]/g, (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/**
 * The inverse of escapeText, for readers of logship's output and tests; it also reads \"
 * as " (how a quoted value of a log line holds a quote; see lib/events.ts).
 */
export function unescapeText(s: string): string {
  return s.replace(/\\(x[0-9a-f]{2}|[\\"nrt])/g, (_, e: string) => (e[0] === "x" ? String.fromCharCode(parseInt(e.slice(1), 16)) : (UNNAMED[e] ?? e)));
}

const UNNAMED: Record<string, string> = { n: "\n", r: "\r", t: "\t" };
