// File identity: says which file a path holds now, so an offset is never applied to the
// wrong bytes.
//
// The rule. A file is its device + inode, confirmed by a fingerprint: a hash of its first
// FINGERPRINT_BYTES bytes (or of all of it, when it is shorter; the length hashed is stored
// with the hash). A saved entry with the same device + inode is the same file only if
//   - its saved offset is not beyond the current size (otherwise the file was truncated or
//     replaced), and
//   - the first fp_len bytes of the file still hash to the saved fingerprint (otherwise the
//     inode was reused by a new file, or the file was truncated and rewritten past the
//     saved offset).
// Failing either, the file is new and is read from byte 0. A short file keeps shipping: its
// fingerprint covers what it had when last checked and is lengthened as it grows, up to
// FINGERPRINT_BYTES, so growing past the fingerprint size never makes it look new.
// Renames keep device + inode, so a rotated file is found again under its new name. The
// fingerprint alone is not trusted across inodes: two unrelated files may share their
// first kilobyte (a common header), and taking one for the other would skip its bytes.

import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from "node:fs";
import { createHash } from "node:crypto";

export const FINGERPRINT_BYTES = 1024;

/** What a path holds at the moment it was looked at. */
export interface Observed {
  path: string;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  head: Buffer; // the first min(size, FINGERPRINT_BYTES) bytes
}

export function inodeKey(dev: number, ino: number): string {
  return `${dev}:${ino}`;
}

export function fingerprint(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex").slice(0, 32);
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
 * regular files are opened (a FIFO would block, a directory cannot be read as lines).
 */
export function openIdentified(path: string): { fd: number; seen: Observed } {
  const st = statSync(path);
  if (!st.isFile()) throw Object.assign(new Error(`not a regular file (${kindOf(st)})`), { code: "ENOTFILE" });
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    return { fd, seen: observeFd(fd, path) };
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
  const want = Math.min(st.size, FINGERPRINT_BYTES);
  const head = Buffer.alloc(want);
  let got = 0;
  while (got < want) {
    const n = readSync(fd, head, got, want - got, got);
    if (n === 0) break;
    got += n;
  }
  return { path, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, head: head.subarray(0, got) };
}

/** The saved identity facts matched against what is on disk. */
export interface KnownIdentity {
  dev: number;
  ino: number;
  fingerprint: string;
  fp_len: number;
  offset: number;
}

/** True when `known` and `seen` are the same file by the rule above. */
export function sameFile(known: KnownIdentity, seen: Observed): boolean {
  if (known.dev !== seen.dev || known.ino !== seen.ino) return false;
  if (known.offset > seen.size) return false;
  if (seen.head.length < known.fp_len) return false;
  return fingerprint(seen.head.subarray(0, known.fp_len)) === known.fingerprint;
}

/** The fingerprint to store now: lengthened while the file is shorter than FINGERPRINT_BYTES. */
export function currentFingerprint(seen: Observed): { fingerprint: string; fp_len: number } {
  return { fingerprint: fingerprint(seen.head), fp_len: seen.head.length };
}
