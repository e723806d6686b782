// Checkpointing: the one writer of offsets. Each file's saved offset is the end of the last
// complete line that Kafka acknowledged, with every byte before it acknowledged too: chunks
// are tracked in read order when they are handed to the sender, and the offset moves only
// over the contiguous acknowledged prefix, whatever order acks arrive in. A chunk that is
// never acknowledged holds its file's offset back for ever, so a restart re-sends it
// (at-least-once). flush() writes changed rows to the store in one transaction.

import { inodeKey, type InodeKey } from "../inode.ts";
import type { SavedFile, Store } from "./store.ts";

/** A byte range of one file identity handed to Kafka (a chunk, as far as the checkpoint cares). */
export interface ShippedRange {
  source: { file: string; path: string };
  start: number;
  end: number;
  value?: Uint8Array; // the bytes, when they are the file's [start, end): the saved offset then keeps a mark of them
  raw?: Uint8Array; // the file's bytes, when value is not them (a JSON or redacted record): marked instead of value
}

interface Range {
  start: number;
  end: number;
  acked: boolean;
  mark?: { length: number; crc: number }; // of the bytes just before `end`, once acknowledged
  bytes?: Uint8Array; // its bytes, between its acknowledgement and advance() in the same acked() call
}

/** Bytes a read mark covers at most: the end of the last line (or lines) before an offset. */
export const MARK_BYTES = 256;

/** A mark of the file bytes `bytes` = [end - bytes.length, end): CRC-32 of its last MARK_BYTES. Null when empty. */
export function markOf(bytes: Uint8Array): { length: number; crc: number } | null {
  if (bytes.length === 0) return null;
  const tail = bytes.subarray(Math.max(0, bytes.length - MARK_BYTES));
  return { length: tail.length, crc: Bun.hash.crc32(tail) };
}

/** What one write of the state holds: rows to upsert and ids to delete, in one transaction. */
export interface SaveBatch {
  rows: SavedFile[];
  removed: string[];
}

interface Progress {
  row: SavedFile;
  ranges: Range[]; // in read order; ranges[head..] are still waiting; NO_RANGES while none is
  head: number;
  found: number; // index of the range findRange found last (a search hint)
}

/**
 * The ranges of a file none of whose chunks wait: shared, never written (track() gives the file
 * an array of its own). With 100,000 files read to their end, an array, a range and a mark kept
 * per file were 40 MB.
 */
const NO_RANGES: Range[] = Object.freeze([]) as unknown as Range[];

export class Checkpoint {
  private readonly files = new Map<string, Progress>();
  private readonly inodes = new Map<InodeKey, string>(); // inodeKey → id of the newest row
  private readonly dirty = new Set<string>();
  private readonly removed = new Set<string>();

  /**
   * Takes the rows saved by an earlier run, unchanged. Rows may share an inode number (a file
   * deleted, its number reused by a copy that carries another identity on): the inode is the
   * row's that took it last (seenAt), whatever order the rows come in.
   */
  load(rows: SavedFile[]): void {
    for (const row of rows) {
      this.files.set(row.id, { row, ranges: NO_RANGES, head: 0, found: 0 });
      const key = inodeKey(row.dev, row.ino);
      const other = this.byInode(row.dev, row.ino);
      if (!other || other.seenAt <= row.seenAt) this.inodes.set(key, row.id);
    }
  }

  /** Starts tracking a new file identity whose durable state is `row`. */
  register(row: SavedFile): void {
    this.files.set(row.id, { row, ranges: NO_RANGES, head: 0, found: 0 });
    this.inodes.set(inodeKey(row.dev, row.ino), row.id);
    this.removed.delete(row.id);
    this.dirty.add(row.id);
  }


  /** The newest row saved for a device + inode, if any. */
  byInode(dev: number, ino: number): Readonly<SavedFile> | undefined {
    const id = this.inodes.get(inodeKey(dev, ino));
    return id === undefined ? undefined : this.files.get(id)?.row;
  }

  get size(): number {
    return this.files.size;
  }

  row(id: string): Readonly<SavedFile> | undefined {
    return this.files.get(id)?.row;
  }

  /** Every row, walked live (no copy of 100,000 rows per scan): the caller must not forget or register rows meanwhile. */
  *rows(): IterableIterator<Readonly<SavedFile>> {
    for (const p of this.files.values()) yield p.row;
  }

  /** The acknowledged offset of a file. */
  offsetOf(id: string): number | undefined {
    return this.files.get(id)?.row.offset;
  }

  /** Chunks of the file handed out but not yet acknowledged. */
  waiting(id: string): number {
    const p = this.files.get(id);
    return p ? p.ranges.length - p.head : 0;
  }

  // --- Identity fields: changed only here, through these named methods, which keep the inode
  // index right and mark the row for the next flush. Rows handed out are read-only.

  /** The file was found again at `path` (resumed at start, or seen by a scan): it is not gone. */
  seenAt(id: string, path: string, wall: number): void {
    this.change(id, (row) => Object.assign(row, { path, goneSince: null, seenAt: wall }));
  }

  /** What the file was at its latest look (birth time, size, mtime): how a restart tells it from a new file at its inode. */
  looked(id: string, born: number, size: number, mtimeMs: number): void {
    const p = this.files.get(id);
    if (!p || (p.row.born === born && p.row.size === size && p.row.mtimeMs === mtimeMs)) return;
    p.row.born = born;
    p.row.size = size;
    p.row.mtimeMs = mtimeMs;
    this.dirty.add(id);
  }

  /** The file is now known under another name (renamed; or, let go, where its descriptor says it is). */
  renamed(id: string, path: string): void {
    this.change(id, (row) => (row.path = path));
  }

  /** The file's fingerprint covers more of it now (it grew while shorter than the fingerprint size). */
  lengthened(id: string, fp: { fingerprint: string; fpLen: number }): void {
    this.change(id, (row) => Object.assign(row, fp));
  }

  /**
   * The identity carries on in another inode (a copy of its bytes, at `path`): the inode index
   * then names this row for the copy's inode, as it would after a restart (load() by seenAt).
   */
  movedTo(id: string, to: { dev: number; ino: number; path: string; born: number; size: number; mtimeMs: number }, wall: number): void {
    const p = this.files.get(id);
    if (!p) return;
    const was = inodeKey(p.row.dev, p.row.ino);
    if (this.inodes.get(was) === id) this.inodes.delete(was);
    Object.assign(p.row, { ...to, goneSince: null, seenAt: wall });
    this.inodes.set(inodeKey(to.dev, to.ino), id);
    this.dirty.add(id);
  }

  /** No scan matched the file since `wall` (a gone row starts ageing towards state.ttl). */
  goneSince(id: string, wall: number): void {
    this.change(id, (row) => (row.goneSince = wall));
  }

  private change(id: string, edit: (row: SavedFile) => void): void {
    const p = this.files.get(id);
    if (!p) return;
    edit(p.row);
    this.dirty.add(id);
  }

  /** Marks every row changed: the next flush writes them all (to a state file created anew). */
  dirtyAll(): void {
    for (const id of this.files.keys()) this.dirty.add(id);
  }

  /** Records a chunk as sent and waiting, in read order. */
  track(chunk: ShippedRange): void {
    const p = this.files.get(chunk.source.file);
    if (!p) throw new Error(`track: file ${chunk.source.file} is not registered`);
    const last = p.ranges[p.ranges.length - 1];
    const expected = last ? last.end : p.row.offset;
    if (chunk.start < expected) throw new Error(`track: chunk at ${chunk.start} overlaps what was tracked up to ${expected} for ${chunk.source.path}`);
    if (p.ranges === NO_RANGES) p.ranges = [];
    p.ranges.push({ start: chunk.start, end: chunk.end, acked: false, mark: undefined, bytes: undefined });
  }

  /** Removes a waiting range that was never handed to Kafka (a multiline event's placeholder, while the event was open). */
  untrack(range: ShippedRange): void {
    const p = this.files.get(range.source.file);
    if (!p) return;
    const i = p.ranges.findIndex((r, idx) => idx >= p.head && r.start === range.start && r.end === range.end && !r.acked);
    if (i >= 0) p.ranges.splice(i, 1);
  }

  /**
   * Kafka acknowledged these chunks: move each file's offset over its acknowledged prefix.
   * Only the range an offset ends at needs its mark, so marks are taken once per file and
   * call (and for ranges left waiting behind an unacknowledged one), not per chunk: with a
   * record per line that was most of the acknowledgement's cost. The bytes are read before
   * this returns, while the caller still holds them.
   */
  acked(chunks: Iterable<ShippedRange>): void {
    const touched: Progress[] = [];
    const marked: Range[] = [];
    let last: Progress | undefined;
    for (const c of chunks) {
      const p = last !== undefined && c.source.file === last.row.id ? last : this.files.get(c.source.file);
      if (!p) continue; // forgotten meanwhile (e.g. expired): nothing to move
      const r = findRange(p, c, p.found);
      if (!r) continue;
      r.acked = true;
      const bytes = c.raw ?? c.value;
      if (bytes && bytes.length === c.end - c.start && bytes.length > 0) {
        r.bytes = bytes;
        marked.push(r);
      }
      if (p !== last) {
        if (!touched.includes(p)) touched.push(p);
        last = p;
      }
    }
    for (const p of touched) this.advance(p);
    // Ranges still waiting behind an unacknowledged one keep a mark of their own bytes.
    for (const r of marked) {
      if (r.bytes === undefined) continue;
      r.mark = markOf(r.bytes) ?? undefined;
      r.bytes = undefined;
    }
  }

  /** Replaces a waiting chunk's range by the ranges of the pieces it was cut into. */
  split(whole: ShippedRange, pieces: ShippedRange[]): void {
    const p = this.files.get(whole.source.file);
    if (!p) return;
    const i = p.ranges.findIndex((r, idx) => idx >= p.head && r.start === whole.start && r.end === whole.end && !r.acked);
    if (i < 0) return;
    p.ranges.splice(i, 1, ...pieces.map((c) => ({ start: c.start, end: c.end, acked: false, mark: undefined, bytes: undefined })));
  }

  /** Stops tracking a file; its row is deleted from the store at the next flush. */
  forget(id: string): void {
    const p = this.files.get(id);
    if (!p) return;
    this.files.delete(id);
    const key = inodeKey(p.row.dev, p.row.ino);
    if (this.inodes.get(key) === id) this.inodes.delete(key);
    this.dirty.delete(id);
    this.removed.add(id);
  }

  /** Whether a row changed (or was forgotten) since the last take(). */
  get changed(): boolean {
    return this.dirty.size > 0 || this.removed.size > 0;
  }

  /**
   * The changed rows (copies, as they are now; `maxRows` of them at most, the rest stay
   * marked) and the forgotten ids, no longer marked: the caller writes them, and on failure
   * hands them back to unwritten(). Null when nothing changed.
   */
  take(maxRows = Number.POSITIVE_INFINITY): SaveBatch | null {
    if (!this.changed) return null;
    const rows: SavedFile[] = [];
    for (const id of this.dirty) {
      if (rows.length >= maxRows) break;
      this.dirty.delete(id); // deleting the entry visited is safe while walking a Set
      const row = this.files.get(id)?.row;
      if (row) rows.push({ ...row });
    }
    const removed = [...this.removed];
    this.removed.clear();
    return { rows, removed };
  }

  /** A write of `batch` failed (or its answer never came): its rows are changed again, unless forgotten since; its deletions pending again, unless registered again since. */
  unwritten(batch: SaveBatch): void {
    for (const r of batch.rows) if (this.files.has(r.id)) this.dirty.add(r.id);
    for (const id of batch.removed) if (!this.files.has(id)) this.removed.add(id);
  }

  /** Writes every changed row in one transaction. Throws the store's error (e.g. disk full); the rows stay dirty. */
  flush(store: Store): number {
    const batch = this.take();
    if (!batch) return 0;
    try {
      store.saveBatch(batch);
    } catch (err) {
      this.unwritten(batch);
      throw err;
    }
    return batch.rows.length;
  }

  private advance(p: Progress): void {
    let moved: Range | null = null;
    while (p.head < p.ranges.length && p.ranges[p.head]!.acked) {
      const r = p.ranges[p.head]!;
      if (moved?.bytes) moved.bytes = undefined; // passed over: its mark is never read
      moved = r;
      p.head++;
    }
    if (moved) {
      if (moved.bytes) {
        moved.mark = markOf(moved.bytes) ?? undefined;
        moved.bytes = undefined;
      }
      p.row.offset = moved.end;
      p.row.markLen = moved.mark?.length ?? 0; // no mark: skipped bytes (a dropped line), unknown
      p.row.markCrc = moved.mark?.crc ?? 0;
      this.dirty.add(p.row.id);
    }
    if (p.head === p.ranges.length) {
      p.ranges = NO_RANGES; // nothing waits: the array and its ranges go
      p.head = 0;
    } else if (p.head > 64 && p.head * 2 > p.ranges.length) {
      p.ranges = p.ranges.slice(p.head);
      p.head = 0;
    }
  }
}

function findRange(p: Progress, c: ShippedRange, from = p.head): Range | undefined {
  // From `from` (where the previous chunk of this file was: acks come in read order), then from the head.
  for (let i = Math.max(from, p.head); i < p.ranges.length; i++) {
    const r = p.ranges[i]!;
    if (r.start === c.start && r.end === c.end && !r.acked) {
      p.found = i;
      return r;
    }
  }
  for (let i = p.head; i < from && i < p.ranges.length; i++) {
    const r = p.ranges[i]!;
    if (r.start === c.start && r.end === c.end && !r.acked) {
      p.found = i;
      return r;
    }
  }
  return undefined;
}
