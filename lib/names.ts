// File names as bytes (issue 11, item 4). On Linux a name is bytes, not text: "a\xff.log" is a
// valid file name that no UTF-8 decoding reproduces. node:fs hands such a name out lossily
// (U+FFFD for the bad byte) and cannot open what it handed out, so a file named so would be
// listed and then never read, silently.
//
// The rule, Python's `surrogateescape` (PEP 383): inside logship a name stays a JS string, and
// a byte that is not part of valid UTF-8 is the lone surrogate U+DC80 + byte (0x80-0xff) in
// it. Valid UTF-8 decodes as usual, so every name that is text is unchanged, and the mapping is
// one to one: a valid name never holds a lone surrogate, so nameFromBytes(b) gives each byte
// sequence its own string and nameBytes() gives the exact bytes back. Strings keep every
// path-handling line of logship (maps by path, template strings, globs: `?` matches one such
// byte) as it is; bytes cross only at the boundaries, each through this module:
//   - node:fs: exactName(path) (the path itself when it is well-formed text, else its bytes)
//     for every path handed to fs; readEntries()/readNames() list a directory with exact
//     names, and nameFromBytes() reads readlink/realpath's `encoding: "buffer"` answer;
//   - Kafka: the `path` header and the key are exactName() (kafka/pack.ts, publish.ts), so a
//     consumer receives the original bytes; `format: json` writes lossyName() with a flag
//     (kafka/format.ts), since JSON text cannot hold them;
//   - the state database: the TEXT path column holds the name's exact bytes (state/store.ts);
//   - printing: escapeText (text.ts) shows such a byte as \xHH; JSON (log.format json, /status)
//     has it as the escape \udcHH, which JSON.parse (and Python's surrogateescape) reads back;
//   - node:path: Bun's turns a lone surrogate into U+FFFD, so join, dirname and basename here
//     are the ones lib/files/ uses (below).
// Why not Buffers throughout: every module that handles paths would change, for names that
// are rare; with strings, forgetting a boundary shows as a name that is not found, and
// tests/names.test.ts checks that each node:fs call in lib/files/ goes through exactName.
// Invariant: nameBytes(nameFromBytes(b)) equals b for every byte sequence b, and
// nameFromBytes(b) === b.toString("utf8") whenever b is valid UTF-8.

import { isUtf8 } from "node:buffer";
import { lstatSync, readdirSync, type Dirent } from "node:fs";
import * as path from "node:path";

/** The name a byte sequence is inside logship: its UTF-8 text, with each byte that is not part of valid UTF-8 as U+DC80 + byte. */
export function nameFromBytes(b: Uint8Array): string {
  if (isUtf8(b)) return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8");
  let out = "";
  let i = 0;
  while (i < b.length) {
    const n = validLength(b, i);
    if (n === 0) {
      out += String.fromCharCode(0xdc00 + b[i]!);
      i++;
    } else {
      out += Buffer.from(b.buffer, b.byteOffset + i, n).toString("utf8");
      i += n;
    }
  }
  return out;
}

/**
 * How many bytes from `i` form one well-formed UTF-8 sequence (Unicode table 3-7), or a
 * longest run of them; 0 when the byte at `i` starts none (it is escaped alone).
 */
function validLength(b: Uint8Array, i: number): number {
  let j = i;
  while (j < b.length) {
    const c = b[j]!;
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c < 0x80) need = 0;
    else if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f; // UTF-16 surrogates are not UTF-8
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else break;
    let ok = true;
    for (let k = 1; k <= need; k++) {
      const d = b[j + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) {
        ok = false;
        break;
      }
    }
    if (!ok) break;
    j += need + 1;
  }
  return j - i;
}

/** The exact bytes of a name (see the header); a lone surrogate this module did not make is written as U+FFFD's bytes. */
export function nameBytes(name: string): Buffer {
  if (name.isWellFormed()) return Buffer.from(name, "utf8");
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 0; i < name.length; i++) {
    const u = name.charCodeAt(i);
    if (u < 0xdc80 || u > 0xdcff) continue;
    const prev = i > 0 ? name.charCodeAt(i - 1) : 0;
    if (prev >= 0xd800 && prev <= 0xdbff) continue; // the second half of a pair: a character
    parts.push(Buffer.from(name.slice(from, i), "utf8"), Buffer.of(u - 0xdc00));
    from = i + 1;
  }
  parts.push(Buffer.from(name.slice(from), "utf8"));
  return Buffer.concat(parts);
}

/**
 * A name as node:fs, bun:sqlite and kafkajs take it: the string itself when it is well-formed
 * (they encode it as UTF-8, exactly), else its bytes. The one conversion at every boundary.
 */
export function exactName(name: string): string | Buffer {
  return name.isWellFormed() ? name : nameBytes(name);
}

/** Whether a name holds bytes that are not UTF-8 (it is no text as it is). */
export function isBytesName(name: string): boolean {
  return !name.isWellFormed();
}

/** A name as text for where only text goes (JSON): each byte that is not UTF-8 as U+FFFD. */
export function lossyName(name: string): string {
  return name.isWellFormed() ? name : name.toWellFormed();
}

// Bun's node:path turns a lone surrogate into U+FFFD (its path functions work on UTF-8), so
// the path functions logship applies to file names are these: node:path's own, applied to a
// stand-in where a name is no text. The stand-in writes each escaped byte as a private-use
// character the name does not hold (path functions treat every character but "/" and "."
// alike), and the result is mapped back.

/** node:path's join, for names that may hold escaped bytes. */
export function join(...parts: string[]): string {
  return parts.every((p) => p.isWellFormed()) ? path.join(...parts) : viaStandIn(parts, (p) => path.join(...p));
}

/** node:path's dirname, for names that may hold escaped bytes. */
export function dirname(p: string): string {
  return p.isWellFormed() ? path.dirname(p) : viaStandIn([p], ([q]) => path.dirname(q!));
}

/** node:path's basename, for names that may hold escaped bytes. */
export function basename(p: string): string {
  return p.isWellFormed() ? path.basename(p) : viaStandIn([p], ([q]) => path.basename(q!));
}

const ESCAPED = /[\udc80-\udcff]/gu; // a lone surrogate of an escaped byte (not half of a pair: the u flag)

function viaStandIn(parts: string[], f: (parts: string[]) => string): string {
  // 0x80 consecutive code points none of the parts holds, in the private-use planes 15 and 16:
  // 1,024 windows, more than a path can fill (each blocking character takes 4 of its bytes).
  const taken = new Set<number>();
  for (const c of parts.join("/")) if (c.codePointAt(0)! >= 0xf0000) taken.add((c.codePointAt(0)! - 0xf0000) >> 7);
  let window = 0;
  while (taken.has(window)) window++;
  if (window >= 1024) throw new RangeError("a path too long to handle (ENAMETOOLONG)");
  const base = 0xf0000 + (window << 7);
  const to = (s: string) => s.replace(ESCAPED, (c) => String.fromCodePoint(base + c.charCodeAt(0) - 0xdc80));
  const back = (s: string) => {
    let out = "";
    for (const c of s) {
      const cp = c.codePointAt(0)!;
      out += cp >= base && cp < base + 0x80 ? String.fromCharCode(0xdc80 + cp - base) : c;
    }
    return out;
  };
  return back(f(parts.map(to)));
}

/** A directory entry with its exact name. */
export interface NamedEntry {
  name: string;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/**
 * The entries of directory `dir` with exact names. readdir's own names are used, except where
 * one holds U+FFFD: then the directory is read again as bytes, and each name that is not
 * UTF-8 is taken from there (its type from lstat; one gone meanwhile is left out).
 */
export function readEntries(dir: string): NamedEntry[] {
  const entries: NamedEntry[] = readdirSync(exactName(dir), { withFileTypes: true }) as Dirent[];
  if (!entries.some((e) => e.name.includes("\uFFFD"))) return entries;
  const out = entries.filter((e) => !e.name.includes("\uFFFD"));
  for (const raw of readdirSync(exactName(dir), { encoding: "buffer" })) {
    const name = nameFromBytes(raw);
    if (!name.includes("\uFFFD") && name.isWellFormed()) continue; // listed above
    try {
      const st = lstatSync(exactName(join(dir, name)));
      out.push({ name, isDirectory: () => st.isDirectory(), isSymbolicLink: () => st.isSymbolicLink() });
    } catch {
      // gone since it was listed
    }
  }
  return out;
}

/** The names in directory `dir`, exact (see readEntries). */
export function readNames(dir: string): string[] {
  const names = readdirSync(exactName(dir));
  if (!names.some((n) => n.includes("\uFFFD"))) return names;
  return readdirSync(exactName(dir), { encoding: "buffer" }).map(nameFromBytes);
}
