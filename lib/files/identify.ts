// File identity: says which file a path holds now, so an offset is never applied to the
// wrong bytes, and recognises copies of a file, so its bytes are not shipped twice.
//
// The rule. A file is its device + inode, confirmed by a fingerprint: a hash of its first
// FINGERPRINT_BYTES bytes (or of all of it, when it is shorter; the length hashed is stored
// with the hash). A saved entry with the same device + inode is the same file only if
//   - its saved offset, and its size at the last look, are not beyond the current size
//     (otherwise the file was truncated or replaced: a file never holds less under one
//     identity),
//   - its birth time, where the file system keeps one, is the one saved (otherwise the inode
//     number was reused by a new file while logship was stopped), and
//   - the first fpLen bytes of the file still hash to the saved fingerprint (otherwise the
//     inode was reused by a new file, or the file was truncated and rewritten past the
//     saved offset).
// Failing any, the file is new and is read from byte 0. A short file keeps shipping: its
// fingerprint covers what it had when last checked and is lengthened as it grows, up to
// FINGERPRINT_BYTES, so growing past the fingerprint size never makes it look new. While a
// file is open its fingerprint is checked again whenever its size or mtime changes, so a
// truncation is noticed even when the file was rewritten past the old offset (a truncation
// that rewrites the very same first bytes and passes the offset cannot be told apart while
// logship runs; across a restart the saved size tells it when the file is now shorter).
// Renames keep device + inode, so a rotated file is found again under its new name. The
// fingerprint alone is never trusted across inodes: two unrelated files may share their
// first kilobyte (a CSV header, a banner), and taking one for the other would skip its bytes.
//
// The copy rule (logrotate `copytruncate`, and `copy`, cp, mv across file systems). A file is
// never skipped because its bytes look like another file's. A new inode carries another
// file's identity on only when that file's inode lost its bytes (truncated, replaced, or
// deleted or renamed away before it was read to its end) and the new inode holds them:
//   - It is named like a rotation of the original (app.log.1, app.log-20250101; after its
//     current name or the one it had before its latest rename), it is at least as long as
//     what was read, its first fpLen bytes hash to the original's fingerprint with fpLen
//     covering everything read or a full FINGERPRINT_BYTES, and it holds the last bytes read
//     where they were (a read mark: CRC-32 of up to MARK_BYTES before the read offset, kept
//     in memory and, for the acknowledged offset, in the saved row). Then the bytes it does
//     not ship are exactly those shipped, and the lines between what was read and the
//     truncation are read from it under the original `file` id and offsets: copytruncate
//     loses nothing. Below COPY_MIN_BYTES fingerprinted it must also be the only candidate.
//   - A new file whose bytes are, so far, all a followed file's (found through an index of
//     first lines, compared byte for byte), or that was compared while its original changed
//     (a truncation landing mid-scan), is held back for two scan intervals at most: long
//     enough for copytruncate's truncation to follow. Then, unless it carries an identity
//     on, it is shipped from 0 under its own identity: at worst twice, never skipped.
//   - Any other copy is a file of its own, shipped from 0.
// Files that already have an identity of their own are never taken for copies.

import { closeSync, constants, fstatSync, openSync, readlinkSync, readSync, statSync, type Stats } from "node:fs";
import { basename, exactName, nameFromBytes } from "../names.ts";
import { collector } from "../memory.ts";
export { inodeKey, type InodeKey } from "../inode.ts";

export const FINGERPRINT_BYTES = 1024;
/** Below this many fingerprinted bytes a file that merely starts alike cannot be told from a copy. */
export const COPY_MIN_BYTES = 64;

/** What a path holds at the moment it was looked at. */
export interface Observed {
  path: string;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  birthtimeMs: number; // 0 where the file system does not keep it
  head: Buffer; // the first min(size, FINGERPRINT_BYTES) bytes
}

/** The first 16 bytes of SHA-256, in hex: what a state row stores. */
export function fingerprint(bytes: Uint8Array): string {
  // One-shot (no hasher object left for the collector), and hex of only the bytes kept, so
  // the string is not a slice holding a longer one alive: a row is kept per file.
  return (Bun.CryptoHasher.hash("sha256", bytes) as Buffer).toString("hex", 0, 16);
}

/** Opens `path`, reads its head and stats it. Throws the fs error when it cannot be read. */
export function identify(path: string): Observed {
  const { fd, seen } = openIdentified(path);
  closeSync(fd);
  return seen;
}

/**
 * Opens `path` for reading and identifies it through the same descriptor, so the identity
 * belongs to the bytes that will be read even if the path is renamed meanwhile. Only
 * regular files are opened (a FIFO would block, a directory cannot be read as lines);
 * `st` is a stat of `path` the caller just took, if it has one (what is opened is checked
 * again through the descriptor).
 */
export function openIdentified(path: string, st: Stats = statSync(exactName(path))): { fd: number; seen: Observed } {
  if (!st.isFile()) throw Object.assign(new Error(`not a regular file (${kindOf(st)})`), { code: "ENOTFILE" });
  const fd = openSync(exactName(path), constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const seen = observeFd(fd, path);
    // The file judged is the file read: a name swapped (a symlink put in place) between the
    // stat and the open is not read now; the next scan judges what it leads to then.
    if (seen.dev !== st.dev || seen.ino !== st.ino) throw Object.assign(new Error("changed while being opened (judged again at the next scan)"), { code: "ECHANGED" });
    return { fd, seen };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  return "not a file";
}

const MAGIC: [string, number[]][] = [
  ["gzip", [0x1f, 0x8b]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["bzip2", [0x42, 0x5a, 0x68]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["lz4", [0x04, 0x22, 0x4d, 0x18]],
  ["zip", [0x50, 0x4b, 0x03, 0x04]],
];
const COMPRESSED_SUFFIX = /\.(gz|tgz|zst|zstd|bz2|xz|lz4|zip|7z|lzma|z)$/i;

/** The compression format of a file, by its first bytes or (while empty) its name; null for text. */
export function compressedFormat(seen: Observed): string | null {
  for (const [name, magic] of MAGIC) {
    if (seen.head.length >= magic.length && magic.every((b, i) => seen.head[i] === b)) return name;
  }
  if (seen.head.length === 0) {
    const m = COMPRESSED_SUFFIX.exec(seen.path);
    if (m) return m[1]!.toLowerCase();
  }
  return null;
}

/** Same as identify(), on a descriptor already open (the file may have been renamed). */
export function observeFd(fd: number, path: string, st: Stats = fstatSync(fd)): Observed {
  if (!st.isFile()) throw Object.assign(new Error(`not a regular file`), { code: "ENOTFILE" });
  collector.observed(); // identifying leaves garbage: memory.ts decides when to collect it
  const want = Math.min(st.size, FINGERPRINT_BYTES);
  const head = Buffer.alloc(want);
  let got = 0;
  while (got < want) {
    const n = readSync(fd, head, got, want - got, got);
    if (n === 0) break;
    got += n;
  }
  return { path, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, birthtimeMs: st.birthtimeMs, head: head.subarray(0, got) };
}

/** The saved identity facts matched against what is on disk. */
export interface KnownIdentity {
  dev: number;
  ino: number;
  fingerprint: string;
  fpLen: number;
  offset: number;
  born: number; // birth time at the last look; 0 when unknown
  size: number; // size at the last look
}

/** True when `known` and `seen` are the same file by the rule above. */
export function sameFile(known: KnownIdentity, seen: Observed): boolean {
  if (known.dev !== seen.dev || known.ino !== seen.ino) return false;
  if (known.offset > seen.size || known.size > seen.size) return false;
  if (!sameBirth(known.born, seen.birthtimeMs)) return false;
  return headMatches(known, seen.head);
}

/** Birth times that do not tell two files apart: equal, or either unknown (0: the file system keeps none). */
export function sameBirth(a: number, b: number): boolean {
  return a === 0 || b === 0 || a === b;
}

/** True when `head` (a file's first bytes) starts with the bytes the fingerprint was taken of. */
export function headMatches(known: { fingerprint: string; fpLen: number }, head: Uint8Array): boolean {
  if (head.length < known.fpLen) return false;
  return fingerprint(head.subarray(0, known.fpLen)) === known.fingerprint;
}

/**
 * True when a file with this `head` is a copy of `known`, of which `read` bytes were read (the
 * copy rule): the fingerprint must cover everything read, or a full FINGERPRINT_BYTES.
 */
export function isCopyOf(known: { fingerprint: string; fpLen: number }, head: Uint8Array, read: number): boolean {
  if (known.fpLen === 0 || known.fpLen < Math.min(FINGERPRINT_BYTES, read)) return false;
  return headMatches(known, head);
}

/** True when `candidate` is named like a rotation of `original` (same directory not checked): app.log → app.log.1. */
export function rotationOf(original: string, candidate: string): boolean {
  const o = basename(original);
  const c = basename(candidate);
  return c.length > o.length && c.startsWith(o);
}

/** Whether a file with `head` at `path` is a copy of `known` (known as any of `knownPaths`), `read` bytes of which were read, by the copy rule. */
export function isNamedCopyOf(known: { fingerprint: string; fpLen: number }, knownPaths: readonly string[], head: Uint8Array, path: string, read: number): boolean {
  return isCopyOf(known, head, read) && knownPaths.some((k) => rotationOf(k, path));
}

/**
 * A key for a file's first line (up to its newline, or its first FINGERPRINT_BYTES bytes when
 * it has no newline there); null while the first line is incomplete. Copies of a file share
 * it, so it is how a new file finds the followed file it may be a copy of. It is a 32-bit
 * hash, kept in memory only: files that share a key by chance are told apart by comparing
 * their bytes (a candidate is only ever confirmed byte for byte).
 */
export function firstLineKey(head: Uint8Array): number | null {
  const nl = head.indexOf(0x0a);
  if (nl >= 0) return Bun.hash.crc32(head.subarray(0, nl + 1));
  return head.length >= FINGERPRINT_BYTES ? Bun.hash.crc32(head.subarray(0, FINGERPRINT_BYTES)) : null;
}

/** How many bytes from 0 two open files share: compares [from, to), which must already be equal before `from`. */
export function commonPrefix(fdA: number, fdB: number, from: number, to: number): number {
  const size = 64 * 1024;
  const a = Buffer.allocUnsafe(size);
  const b = Buffer.allocUnsafe(size);
  for (let pos = from; pos < to; pos += size) {
    const want = Math.min(size, to - pos);
    const na = readAt(fdA, a, want, pos);
    const nb = readAt(fdB, b, want, pos);
    const n = Math.min(na, nb);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return pos + i;
    if (n < want) return pos + n;
  }
  return Math.max(from, to);
}

/** Where a file's last complete line ends (start_at: end), looking back at most 64 KiB; `size` when no newline is that close. */
export function lastLineEnd(fd: number, size: number): number {
  const look = Math.min(size, 64 * 1024);
  if (look === 0) return size;
  const buf = Buffer.allocUnsafe(look);
  const n = readAt(fd, buf, look, size - look);
  const nl = buf.subarray(0, n).lastIndexOf(0x0a);
  return nl === -1 ? size : size - look + nl + 1;
}

/** True when a remembered size and mtime are those of `st`: the file did not change. */
export function sameLook(was: { size: number; mtimeMs: number } | undefined, st: Stats): boolean {
  return was !== undefined && was.size === st.size && was.mtimeMs === st.mtimeMs;
}

/** Where an open descriptor's file is now (Linux /proc); null when unknown or deleted. */
export function pathOfFd(fd: number): string | null {
  try {
    const p = nameFromBytes(readlinkSync(`/proc/self/fd/${fd}`, { encoding: "buffer" })); // the exact name (lib/names.ts)
    return p.endsWith(" (deleted)") ? null : p;
  } catch {
    return null;
  }
}

/** The first min(size, FINGERPRINT_BYTES) bytes of the file at `path`. */
export function readHead(path: string): Buffer {
  const fd = openSync(exactName(path), constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const head = Buffer.alloc(FINGERPRINT_BYTES);
    return head.subarray(0, readAt(fd, head, FINGERPRINT_BYTES, 0));
  } finally {
    closeSync(fd);
  }
}

/** Reads `want` bytes into buf from `position`, or fewer at EOF; returns the byte count. */
export function readAt(fd: number, buf: Buffer, want: number, position: number): number {
  let got = 0;
  while (got < want) {
    const n = readSync(fd, buf, got, want - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/** The fingerprint to store now: lengthened while the file is shorter than FINGERPRINT_BYTES. */
export function currentFingerprint(seen: Observed): { fingerprint: string; fpLen: number } {
  return { fingerprint: fingerprint(seen.head), fpLen: seen.head.length };
}
