// checkpoint.ts: a file's offset moves only over the contiguous acknowledged prefix of what
// was handed to the sender, whatever order acks arrive in; flush writes changed rows and
// deletes forgotten ones, and a failed flush loses nothing.
import { afterAll, describe, expect, test } from "bun:test";
import { Checkpoint } from "../lib/state/checkpoint.ts";
import type { Chunk, Source } from "../lib/kafka/pack.ts";
import { openStore, type SavedFile } from "../lib/state/store.ts";
import { makeLogDir } from "./helpers/logDir.ts";

const dir = makeLogDir("checkpoint");
afterAll(() => dir.cleanup());

let rowSeq = 0;
function row(over: Partial<SavedFile> = {}): SavedFile {
  const n = rowSeq++;
  return { id: `file-${n}`, dev: 1, ino: 1000 + n, fingerprint: "ab".repeat(16), fpLen: 1024, path: `/logs/${n}.log`, offset: 0, seenAt: 1_700_000_000_000, goneSince: null, born: 0, size: 0, mtimeMs: 0, markLen: 0, markCrc: 0, ...over };
}

const sources = new Map<string, Source>();
function chunk(r: SavedFile, start: number, end: number, value = Buffer.alloc(end - start, 0x61)): Chunk {
  let source = sources.get(r.id);
  if (!source) sources.set(r.id, (source = { file: r.id, path: r.path, topic: "t", host: "h" }));
  return { source, value, start, end, lines: 1, size: value.length + 100 };
}

/** Consecutive chunks of `sizes` bytes from `from`. */
function chunks(r: SavedFile, sizes: number[], from = r.offset): Chunk[] {
  let at = from;
  return sizes.map((n) => chunk(r, at, (at += n)));
}

let dbSeq = 0;
const newStore = () => openStore(dir.path(`state-${dbSeq++}.db`));

describe("offsets move on acks only", () => {
  test("the saved offset keeps a mark of the acknowledged bytes just before it (how a copy proves it holds them)", () => {
    const cp = new Checkpoint();
    const r = row();
    cp.register(r);
    const line = Buffer.from("x".repeat(300) + "\n");
    const a = chunk(r, 0, line.length, line);
    const skipped = chunk(r, line.length, line.length + 50, Buffer.alloc(0)); // a dropped line: its bytes unknown
    cp.track(a);
    cp.track(skipped);
    cp.acked([a]);
    expect(cp.row(r.id)).toMatchObject({ offset: line.length, markLen: 256, markCrc: Bun.hash.crc32(line.subarray(line.length - 256)) });
    cp.acked([skipped]);
    expect(cp.row(r.id)).toMatchObject({ offset: line.length + 50, markLen: 0, markCrc: 0 });
  });

  test("a tracked chunk moves nothing until acknowledged", () => {
    const cp = new Checkpoint();
    const r = row();
    cp.register(r);
    const [a, b] = chunks(r, [10, 20]);
    cp.track(a!);
    cp.track(b!);
    expect(cp.offsetOf(r.id)).toBe(0);
    expect(cp.waiting(r.id)).toBe(2);
    cp.acked([a!]);
    expect(cp.offsetOf(r.id)).toBe(10);
    cp.acked([b!]);
    expect(cp.offsetOf(r.id)).toBe(30);
    expect(cp.waiting(r.id)).toBe(0);
  });

  test("out-of-order acks wait for the gap before them", () => {
    const cp = new Checkpoint();
    const r = row({ offset: 100 });
    cp.register(r);
    const [a, b, c] = chunks(r, [10, 10, 10]);
    for (const x of [a, b, c]) cp.track(x!);
    cp.acked([c!]);
    expect(cp.offsetOf(r.id)).toBe(100);
    cp.acked([b!]);
    expect(cp.offsetOf(r.id)).toBe(100);
    expect(cp.waiting(r.id)).toBe(3);
    cp.acked([a!]);
    expect(cp.offsetOf(r.id)).toBe(130);
    expect(cp.waiting(r.id)).toBe(0);
  });

  test("property: any ack order keeps the offset at the end of the acknowledged prefix", () => {
    let seed = 99;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let round = 0; round < 50; round++) {
      const cp = new Checkpoint();
      const r = row();
      cp.register(r);
      const list = chunks(r, Array.from({ length: 1 + rand(150) }, () => 1 + rand(500)));
      list.forEach((c) => cp.track(c));
      const order = list.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = rand(i + 1);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const acked = new Set<number>();
      for (const i of order) {
        cp.acked([list[i]!]);
        acked.add(i);
        let prefix = 0;
        while (acked.has(prefix)) prefix++;
        expect(cp.offsetOf(r.id)).toBe(prefix === 0 ? 0 : list[prefix - 1]!.end);
        expect(cp.waiting(r.id)).toBe(list.length - prefix);
      }
      // Tracking goes on after the ranges were compacted.
      const more = chunk(r, list.at(-1)!.end, list.at(-1)!.end + 5);
      cp.track(more);
      cp.acked([more]);
      expect(cp.offsetOf(r.id)).toBe(more.end);
    }
  });

  test("files are independent: one file's gap does not hold another back", () => {
    const cp = new Checkpoint();
    const r1 = row();
    const r2 = row();
    cp.register(r1);
    cp.register(r2);
    const [a1, b1] = chunks(r1, [5, 5]);
    const [a2] = chunks(r2, [7]);
    for (const c of [a1, a2, b1]) cp.track(c!);
    cp.acked([b1!, a2!]);
    expect(cp.offsetOf(r1.id)).toBe(0);
    expect(cp.offsetOf(r2.id)).toBe(7);
  });

  test("an empty chunk (bytes the reader skipped) moves the offset when acknowledged", () => {
    const cp = new Checkpoint();
    const r = row();
    cp.register(r);
    const skipped = chunk(r, 0, 5_000, Buffer.alloc(0));
    const next = chunk(r, 5_000, 5_010);
    cp.track(skipped);
    cp.track(next);
    cp.acked([next]);
    expect(cp.offsetOf(r.id)).toBe(0);
    cp.acked([skipped]);
    expect(cp.offsetOf(r.id)).toBe(5_010);
  });

  test("acking twice, or acking an untracked chunk, changes nothing", () => {
    const cp = new Checkpoint();
    const r = row();
    cp.register(r);
    const [a, b] = chunks(r, [10, 10]);
    cp.track(a!);
    cp.track(b!);
    cp.acked([a!]);
    cp.acked([a!]);
    cp.acked([chunk(r, 50, 60)]);
    expect(cp.offsetOf(r.id)).toBe(10);
    expect(cp.waiting(r.id)).toBe(1);
  });

  test("a chunk that overlaps what was already tracked (or acknowledged) is refused", () => {
    const cp = new Checkpoint();
    const r = row({ offset: 100 });
    cp.register(r);
    expect(() => cp.track(chunk(r, 90, 110))).toThrow(/overlaps/);
    cp.track(chunk(r, 100, 110));
    expect(() => cp.track(chunk(r, 105, 120))).toThrow(/overlaps/);
    expect(() => cp.track(chunk(row(), 0, 1))).toThrow(/not registered/);
  });

  test("split(): a waiting chunk is replaced by its pieces, acked piece by piece", () => {
    const cp = new Checkpoint();
    const r = row();
    cp.register(r);
    const [head, whole, tail] = chunks(r, [10, 30, 10]);
    for (const c of [head, whole, tail]) cp.track(c!);
    const p1 = chunk(r, 10, 25);
    const p2 = chunk(r, 25, 40);
    cp.split(whole!, [p1, p2]);
    expect(cp.waiting(r.id)).toBe(4);
    cp.acked([head!, p2, tail!]);
    expect(cp.offsetOf(r.id)).toBe(10); // p1 is still waiting
    cp.acked([whole!]); // the whole no longer exists as a range
    expect(cp.offsetOf(r.id)).toBe(10);
    cp.acked([p1]);
    expect(cp.offsetOf(r.id)).toBe(50);
  });

  test("split() of an unknown chunk or file does nothing", () => {
    const cp = new Checkpoint();
    const r = row();
    cp.register(r);
    const [a] = chunks(r, [10]);
    cp.track(a!);
    cp.split(chunk(r, 3, 7), [chunk(r, 3, 5), chunk(r, 5, 7)]);
    cp.split(chunk(row(), 0, 10), []);
    expect(cp.waiting(r.id)).toBe(1);
    cp.acked([a!]);
    expect(cp.offsetOf(r.id)).toBe(10);
  });

  test("acks for a forgotten file are ignored", () => {
    const cp = new Checkpoint();
    const r = row();
    cp.register(r);
    const [a] = chunks(r, [10]);
    cp.track(a!);
    cp.forget(r.id);
    cp.acked([a!]);
    expect(cp.row(r.id)).toBeUndefined();
    expect(cp.offsetOf(r.id)).toBeUndefined();
  });
});

describe("rows and inodes", () => {
  test("load() takes saved rows unchanged and dirty-free; register() marks a row to write", () => {
    const store = newStore();
    const cp = new Checkpoint();
    const saved = row({ offset: 42, dev: 7, ino: 77 });
    cp.load([saved]);
    expect(cp.size).toBe(1);
    expect(cp.byInode(7, 77)).toBe(saved);
    expect(cp.byInode(7, 78)).toBeUndefined();
    expect(cp.flush(store)).toBe(0);
    const fresh = row({ dev: 7, ino: 77 }); // the inode now holds a new file
    cp.register(fresh);
    expect(cp.byInode(7, 77)).toBe(fresh);
    expect(cp.flush(store)).toBe(1);
    expect(store.all().map((r) => r.id)).toEqual([fresh.id]);
    cp.forget(saved.id); // the old row goes; the inode still maps to the new one
    expect(cp.byInode(7, 77)).toBe(fresh);
    store.close();
  });

  test("load(): of rows sharing an inode, the one that took it last (seenAt) owns it, in either order", () => {
    const gone = row({ dev: 7, ino: 77, seenAt: 1_000 }); // its file deleted, the number reused
    const moved = row({ dev: 7, ino: 77, seenAt: 2_000 }); // carried on into a copy at that number
    for (const order of [[gone, moved], [moved, gone]]) {
      const cp = new Checkpoint();
      cp.load(order);
      expect(cp.size).toBe(2);
      expect(cp.byInode(7, 77)).toBe(moved);
    }
  });

  test("identity fields change through named methods, each marking the row for the next flush", () => {
    const store = newStore();
    const cp = new Checkpoint();
    const r = row();
    cp.load([r]);
    expect(cp.flush(store)).toBe(0);
    cp.renamed(r.id, "/logs/renamed.log");
    cp.renamed("no-such-file", "/x");
    expect(cp.flush(store)).toBe(1);
    expect(store.all()[0]!.path).toBe("/logs/renamed.log");
    cp.lengthened(r.id, { fingerprint: "f".repeat(32), fpLen: 900 });
    cp.goneSince(r.id, 5_000);
    expect(cp.flush(store)).toBe(1);
    expect(store.all()[0]).toMatchObject({ fingerprint: "f".repeat(32), fpLen: 900, goneSince: 5_000 });
    cp.seenAt(r.id, "/logs/back.log", 6_000);
    cp.flush(store);
    expect(store.all()[0]).toMatchObject({ path: "/logs/back.log", goneSince: null, seenAt: 6_000 });
    store.close();
  });

  test("movedTo(): the identity carries on at another inode, and the inode index follows it", () => {
    const store = newStore();
    const cp = new Checkpoint();
    const r = row();
    cp.load([r]);
    const was = { dev: r.dev, ino: r.ino };
    cp.movedTo(r.id, { dev: r.dev, ino: 4242, path: "/logs/app.log.1", born: 123.5, size: 900, mtimeMs: 456.25 }, 7_000);
    expect(cp.byInode(was.dev, was.ino)).toBeUndefined(); // the old inode no longer names it
    expect(cp.byInode(r.dev, 4242)?.id).toBe(r.id);
    expect(cp.flush(store)).toBe(1);
    expect(store.all()[0]).toMatchObject({ ino: 4242, path: "/logs/app.log.1", seenAt: 7_000, goneSince: null, born: 123.5, size: 900, mtimeMs: 456.25 });
    store.close();
  });
});

describe("flush", () => {
  test("writes acknowledged offsets, only when something changed", () => {
    const store = newStore();
    const cp = new Checkpoint();
    const r = row();
    cp.register(r);
    expect(cp.flush(store)).toBe(1);
    expect(cp.flush(store)).toBe(0);
    const [a, b] = chunks(r, [10, 10]);
    cp.track(a!);
    cp.track(b!);
    expect(cp.flush(store)).toBe(0); // tracked is not acknowledged
    cp.acked([b!]);
    expect(cp.flush(store)).toBe(0); // an ack behind a gap moves nothing
    cp.acked([a!]);
    expect(cp.flush(store)).toBe(1);
    expect(store.all()).toEqual([{ ...r, offset: 20 }]);
    store.close();
  });

  test("forget + flush deletes the row", () => {
    const store = newStore();
    const cp = new Checkpoint();
    const keep = row();
    const drop = row();
    cp.register(keep);
    cp.register(drop);
    cp.flush(store);
    expect(store.all()).toHaveLength(2);
    cp.forget(drop.id);
    cp.forget("never-known");
    expect(cp.row(drop.id)).toBeUndefined();
    expect(cp.flush(store)).toBe(0);
    expect(store.all().map((r) => r.id)).toEqual([keep.id]);
    store.close();
  });

  test("a failed flush keeps rows dirty and deletions pending; a later flush writes them", () => {
    const path = dir.path(`state-${dbSeq++}.db`);
    const first = openStore(path);
    const cp = new Checkpoint();
    const r = row();
    const gone = row();
    cp.register(r);
    cp.register(gone);
    cp.flush(first);
    const [a] = chunks(r, [64]);
    cp.track(a!);
    cp.acked([a!]);
    cp.forget(gone.id);
    first.close();
    expect(() => cp.flush(first)).toThrow(); // e.g. disk full or a closed database
    expect(cp.offsetOf(r.id)).toBe(64); // memory still holds it
    const second = openStore(path);
    expect(second.all().find((x) => x.id === r.id)!.offset).toBe(0); // nothing half-written
    expect(cp.flush(second)).toBe(1);
    expect(second.all()).toEqual([{ ...r, offset: 64 }]);
    second.close();
  });
});
