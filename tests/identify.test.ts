// identify.ts: which file a path holds — device + inode confirmed by a fingerprint of the
// first bytes; compressed files recognised; only regular files opened, never blocking.
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { closeSync, readSync } from "node:fs";
import { join } from "node:path";
import { compressedFormat, currentFingerprint, FINGERPRINT_BYTES, fingerprint, identify, observeFd, openIdentified, sameFile, type KnownIdentity, type Observed } from "../lib/files/identify.ts";
import { makeLogDir } from "./helpers/logDir.ts";

const dir = makeLogDir("identify");
afterAll(() => dir.cleanup());

/** What the agent would have saved for a file after shipping up to `offset`. */
function remember(seen: Observed, offset: number): KnownIdentity {
  return { dev: seen.dev, ino: seen.ino, ...currentFingerprint(seen), offset, born: seen.birthtimeMs, size: seen.size };
}

describe("sameFile", () => {
  test("the same file, unchanged or grown, is the same", () => {
    dir.write("a.log", "first line\nsecond line\n");
    const known = remember(identify(dir.path("a.log")), 23);
    expect(sameFile(known, identify(dir.path("a.log")))).toBe(true);
    dir.append("a.log", "third\n");
    expect(sameFile(known, identify(dir.path("a.log")))).toBe(true);
  });

  test("a saved offset beyond the current size means truncated or replaced: not the same", () => {
    dir.write("b.log", "x".repeat(100));
    const seen = identify(dir.path("b.log"));
    expect(sameFile(remember(seen, 100), seen)).toBe(true);
    expect(sameFile(remember(seen, 101), seen)).toBe(false);
    dir.truncate("b.log", 50);
    expect(sameFile(remember(seen, 100), identify(dir.path("b.log")))).toBe(false);
  });

  test("different first bytes on the same inode (reused, or rewritten in place) are not the same", () => {
    dir.write("c.log", "original header\n" + "y".repeat(2_000));
    const known = remember(identify(dir.path("c.log")), 10);
    dir.write("c.log", "replaced header\n" + "y".repeat(2_000)); // same inode, same size
    const now = identify(dir.path("c.log"));
    expect([now.dev, now.ino]).toEqual([known.dev, known.ino]);
    expect(sameFile(known, now)).toBe(false);
  });

  test("a different inode is never the same, even with identical content", () => {
    dir.write("d1.log", "same content\n");
    dir.write("d2.log", "same content\n");
    const known = remember(identify(dir.path("d1.log")), 0);
    const other = identify(dir.path("d2.log"));
    expect(fingerprint(other.head)).toBe(known.fingerprint);
    expect(sameFile(known, other)).toBe(false);
  });

  test("a short file growing past the fingerprint size stays the same file", () => {
    dir.write("e.log", "tiny\n");
    const small = identify(dir.path("e.log"));
    const known = remember(small, 5);
    expect(known.fpLen).toBe(5);
    dir.append("e.log", "z".repeat(3 * FINGERPRINT_BYTES));
    const big = identify(dir.path("e.log"));
    expect(big.head.length).toBe(FINGERPRINT_BYTES);
    expect(sameFile(known, big)).toBe(true);
    // Lengthened as it grew, the fingerprint still matches later.
    const longer = remember(big, 5);
    expect(longer.fpLen).toBe(FINGERPRINT_BYTES);
    dir.append("e.log", "more\n");
    expect(sameFile(longer, identify(dir.path("e.log")))).toBe(true);
  });

  test("a file now shorter than its fingerprint is not the same", () => {
    dir.write("f.log", "k".repeat(2_000));
    const known = remember(identify(dir.path("f.log")), 0); // fpLen 1024, offset 0
    dir.truncate("f.log", 500);
    expect(sameFile(known, identify(dir.path("f.log")))).toBe(false);
  });

  test("a renamed file is found again by its inode, under its new name", () => {
    dir.write("g.log", "rotate me\n");
    const known = remember(identify(dir.path("g.log")), 10);
    dir.rename("g.log", "g.log.1");
    const moved = identify(dir.path("g.log.1"));
    expect(moved.path).toBe(dir.path("g.log.1"));
    expect(sameFile(known, moved)).toBe(true);
  });
});

describe("compressedFormat", () => {
  const observed = (name: string, head: number[] | string): Observed => {
    dir.write(name, typeof head === "string" ? head : Buffer.from(head));
    return identify(dir.path(name));
  };

  test("recognises compressed files by their magic bytes, whatever their name", () => {
    expect(compressedFormat(observed("m1.log", [0x1f, 0x8b, 0x08, 0x00, 0x01]))).toBe("gzip");
    expect(compressedFormat(observed("m2.log", [0x28, 0xb5, 0x2f, 0xfd, 0x00]))).toBe("zstd");
    expect(compressedFormat(observed("m3.log", [0x42, 0x5a, 0x68, 0x39]))).toBe("bzip2");
    expect(compressedFormat(observed("m4.log", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00]))).toBe("xz");
    expect(compressedFormat(observed("m5.log", [0x04, 0x22, 0x4d, 0x18, 0x60]))).toBe("lz4");
    expect(compressedFormat(observed("m6.log", [0x50, 0x4b, 0x03, 0x04, 0x14]))).toBe("zip");
  });

  test("text is text, even under a compressed-looking name", () => {
    expect(compressedFormat(observed("plain.log", "hello\n"))).toBeNull();
    expect(compressedFormat(observed("plain.log.gz", "not really gzip\n"))).toBeNull();
    expect(compressedFormat(observed("short.log", [0x1f]))).toBeNull();
  });

  test("an empty file is judged by its name", () => {
    expect(compressedFormat(observed("empty.log.gz", ""))).not.toBeNull();
    expect(compressedFormat(observed("empty.tar.zst", ""))).not.toBeNull();
    expect(compressedFormat(observed("EMPTY.LOG.XZ", ""))).not.toBeNull();
    expect(compressedFormat(observed("empty.log", ""))).toBeNull();
    expect(compressedFormat(observed("empty.gzip.log", ""))).toBeNull();
  });
});

describe("openIdentified", () => {
  test("opens a regular file and identifies it through the same descriptor", () => {
    dir.write("h.log", "abc\n");
    const { fd, seen } = openIdentified(dir.path("h.log"));
    try {
      dir.rename("h.log", "h.log.1"); // renamed after opening: the descriptor still reads it
      dir.write("h.log", "new file\n");
      const buf = Buffer.alloc(4);
      expect(readSync(fd, buf, 0, 4, 0)).toBe(4);
      expect(buf.toString()).toBe("abc\n");
      expect(seen).toMatchObject({ path: dir.path("h.log"), size: 4 });
      expect(seen.head.toString()).toBe("abc\n");
      const again = observeFd(fd, dir.path("h.log.1"));
      expect([again.dev, again.ino]).toEqual([seen.dev, seen.ino]);
      expect(again.ino).not.toBe(identify(dir.path("h.log")).ino);
    } finally {
      closeSync(fd);
    }
  });

  test("refuses a FIFO at once, without blocking on it", () => {
    const fifo = dir.path("pipe.log");
    expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
    // In a child process: an open that blocked would hang this one for good (nobody writes).
    const script = `
      const { openIdentified, identify } = await import(${JSON.stringify(join(import.meta.dir, "../lib/files/identify.ts"))});
      const out = [];
      for (const fn of [openIdentified, identify]) {
        try { fn(${JSON.stringify(fifo)}); out.push("opened"); } catch (e) { out.push(e.code + ": " + e.message); }
      }
      console.log(JSON.stringify(out));`;
    const child = spawnSync(process.execPath, ["-e", script], { timeout: 20_000, encoding: "utf8" });
    expect(child.signal).toBeNull(); // not killed by the timeout
    expect(JSON.parse(child.stdout)).toEqual(["ENOTFILE: not a regular file (a FIFO)", "ENOTFILE: not a regular file (a FIFO)"]);
  });

  test("refuses a directory, and reports a missing path as ENOENT", () => {
    dir.mkdir("adir.log");
    expect(() => openIdentified(dir.path("adir.log"))).toThrow(/not a regular file \(a directory\)/);
    let code: string | undefined;
    try {
      openIdentified(dir.path("missing.log"));
    } catch (e) {
      code = (e as NodeJS.ErrnoException).code;
    }
    expect(code).toBe("ENOENT");
  });

  test("reads at most FINGERPRINT_BYTES for the head", () => {
    dir.write("big.log", Buffer.alloc(10 * FINGERPRINT_BYTES, 0x41));
    const seen = identify(dir.path("big.log"));
    expect(seen.size).toBe(10 * FINGERPRINT_BYTES);
    expect(seen.head.length).toBe(FINGERPRINT_BYTES);
    expect(fingerprint(seen.head)).toMatch(/^[0-9a-f]{32}$/);
  });
});
