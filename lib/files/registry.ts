// The followed files: one Tracked per file being read, and the indexes the agent finds them
// by (id, inode, first line, readiness), plus the identity rows' bookkeeping that goes with
// them (new ids and rows, rows retiring once acknowledged, rows of files no longer followed
// ageing out after state.ttl). Saved rows are read here; they change only through the
// checkpoint's named methods (state/checkpoint.ts), which keep its inode index right.
// In: what identify.ts observed of a file; out: Tracked entries and saved rows looked up by
// inode. Owns no descriptor (descriptors.ts) and decides nothing about copies (copies.ts).
//
// Invariants: every Tracked is in `files` under its id and in `byInode` under its inode
// (unless a newer identity took the inode over), and in `byLine` under its lineKey when it
// has one; unindex() removes all three. A retiring row is no saved row of its inode any more:
// it is forgotten once none of its chunks wait for an ack.

import { statSync, type Stats } from "node:fs";
import { dirname, exactName } from "../names.ts";
import type { Clock } from "../clock.ts";
import { markOf, type Checkpoint } from "../state/checkpoint.ts";
import type { AgentConfig, InputConfig } from "../config.ts";
import { currentFingerprint, firstLineKey, headMatches, inodeKey, sameBirth, type InodeKey, type Observed } from "./identify.ts";
import type { Source, Tail } from "./read.ts";
import type { SavedFile } from "../state/store.ts";

/** How often gone files' state is checked against state.ttl. */
const EXPIRE_EVERY_MS = 3_600_000;

/** One file being followed. Its durable state (id, offset, fingerprint) is its checkpoint row. */
export interface Tracked {
  id: string;
  input: number;
  source: Source;
  dev: number;
  ino: number;
  born: number; // birth time (ms; 0 where the file system does not keep it): tells a reused inode from the file
  tail: Tail | null; // null while closed (inactive, or waiting for a descriptor)
  resumeAt: number; // read position kept while the tail is closed
  size: number; // size at the last look
  mtimeMs: number; // mtime at the last look
  lastGrowth: number; // clock.now() new bytes last appeared
  matched: boolean; // found by the latest scan
  deletedAt: number | null; // clock.now() its last link was removed was noticed
  stopAt: number | null; // --once: read up to this size, then the file is done
  lineKey: number | null; // firstLineKey of its bytes: how a copy of it finds it
  turnBytes: number; // bytes read since it got its descriptor
  partialPending: boolean; // closed with an unfinished last line seen
  formerPath: string | null; // its name before its latest rename (a copy made just before is named after it)
  readMark: ReadMark | null; // the last bytes read: how a copy of it proves it holds them (copies.ts)
  lastRead: number | null; // clock.now() a span of it was last handed out; null before the first
}

/** A checksum of the last bytes read before `end` (up to MARK_BYTES): a copy holding them at the same offsets holds what was read. */
export interface ReadMark {
  end: number;
  length: number;
  crc: number;
}

/** The mark of a span's bytes, when they are the file's bytes [start, end) (not a truncated or skipped long line). */
export function readMarkOf(bytes: Uint8Array, start: number, end: number): ReadMark | null {
  const m = bytes.length === end - start ? markOf(bytes) : null;
  return m && { end, ...m };
}

/** The mark a saved row keeps of the bytes before its acknowledged offset, if any. */
export function savedMark(row: Readonly<SavedFile>): ReadMark | null {
  return row.markLen > 0 ? { end: row.offset, length: row.markLen, crc: row.markCrc } : null;
}

export class FileIndex {
  readonly files = new Map<string, Tracked>();
  readonly byInode = new Map<InodeKey, string>(); // inodeKey → tracked id
  readonly byLine = new LineIndex(); // firstLineKey → tracked ids
  readonly ready = new Set<string>(); // tracked ids that may have bytes to read
  private readonly retiring = new Set<string>(); // ids to forget once their chunks are acked
  private idSeq = 0;
  private lastExpiry: number | null = null; // clock.now() of the last expiry pass

  constructor(
    private readonly checkpoint: Checkpoint,
    private readonly config: () => AgentConfig,
    private readonly once: boolean,
    private readonly clock: Clock,
  ) {}

  /**
   * The followed files and their acknowledged offsets (for /status and diagnostics);
   * `wallAtZero` turns the clock's now() (lastGrowth) into epoch milliseconds.
   */
  status(wallAtZero: number): { path: string; file: string; size: number; offset: number; unread: number; open: boolean; lastGrowth: number; lastRead: number | null }[] {
    const wall = (at: number) => Math.round(wallAtZero + at);
    return [...this.files.values()].map((t) => {
      const offset = this.checkpoint.offsetOf(t.id) ?? 0;
      const lastRead = t.lastRead === null ? null : wall(t.lastRead);
      return { path: t.source.path, file: t.id, size: t.size, offset, unread: Math.max(0, t.size - offset), open: t.tail !== null, lastGrowth: wall(t.lastGrowth), lastRead };
    });
  }

  /** Bytes of the followed files not acknowledged yet: status()'s `unread`, summed without a row per file. */
  unreadBytes(): number {
    let n = 0;
    for (const t of this.files.values()) n += Math.max(0, t.size - (this.checkpoint.offsetOf(t.id) ?? 0));
    return n;
  }

  /** The directories that hold followed files (to watch). */
  dirs(): Set<string> {
    const out = new Set<string>();
    for (const t of this.files.values()) out.add(dirname(t.source.path));
    return out;
  }

  /** The followed file at an inode key, if any. */
  atInode(key: InodeKey): Tracked | undefined {
    return this.files.get(this.byInode.get(key) ?? "");
  }

  newTracked(id: string, input: number, path: string, seen: Observed, resumeAt: number, matched: boolean): Tracked {
    const config = this.config();
    const topic = (config.inputs[input] ?? config.inputs[0]!).topic;
    const t: Tracked = {
      id, input, source: { file: id, path, topic, host: config.host }, dev: seen.dev, ino: seen.ino, born: seen.birthtimeMs, tail: null, resumeAt,
      size: seen.size, mtimeMs: seen.mtimeMs, lastGrowth: this.clock.now(), matched, deletedAt: null, stopAt: this.once ? seen.size : null,
      lineKey: null, turnBytes: 0, partialPending: false, formerPath: null, readMark: null, lastRead: null,
    };
    this.files.set(id, t);
    this.byInode.set(inodeKey(t.dev, t.ino), id);
    this.indexLine(t, firstLineKey(seen.head));
    return t;
  }

  /** Removes t from every index here (the descriptor queue is descriptors.ts's). */
  unindex(t: Tracked): void {
    this.files.delete(t.id);
    this.ready.delete(t.id);
    const key = inodeKey(t.dev, t.ino);
    if (this.byInode.get(key) === t.id) this.byInode.delete(key);
    this.indexLine(t, null);
  }

  indexLine(t: Tracked, lineKey: number | null): void {
    if (t.lineKey === lineKey) return;
    if (t.lineKey !== null) this.byLine.remove(t.lineKey, t.id);
    t.lineKey = lineKey;
    if (lineKey !== null) this.byLine.add(lineKey, t.id);
  }

  newRow(seen: Observed, path: string, offset: number): SavedFile {
    return {
      id: this.newId(seen.dev, seen.ino), dev: seen.dev, ino: seen.ino, ...currentFingerprint(seen), path, offset, seenAt: this.clock.wall(), goneSince: null,
      born: seen.birthtimeMs, size: seen.size, mtimeMs: seen.mtimeMs, markLen: 0, markCrc: 0,
    };
  }

  /**
   * A stable, never reused identity: device, inode, when logship first saw these bytes, and
   * 20 random bits. Time alone does not make it unique: an inode number freed while logship
   * was stopped and reused by a new file in the same millisecond of the wall clock (a clock
   * stepped back by NTP, say) would get the id of the deleted file, and a consumer that
   * drops duplicates by (host, file, offset) would drop the new file's lines. The counter
   * and the check against remembered ids rule it out within a process, the random bits
   * across processes.
   */
  newId(dev: number, ino: number): string {
    const at = `${dev}:${ino}:${Math.floor(this.clock.wall()).toString(36)}`;
    for (;;) {
      const rand = crypto.getRandomValues(new Uint32Array(1))[0]! % 1_679_616; // 36^4
      const id = at + (this.idSeq++ % 1296).toString(36).padStart(2, "0") + rand.toString(36).padStart(4, "0");
      if (this.checkpoint.row(id) === undefined && !this.files.has(id)) return id;
    }
  }

  retire(id: string): void {
    if (this.checkpoint.waiting(id) === 0) this.forgetRow(id);
    else this.retiring.add(id);
  }

  /** Retiring rows none of whose chunks wait for an ack any more are forgotten. */
  forgetRetired(): void {
    for (const id of this.retiring) {
      if (this.checkpoint.waiting(id) > 0) continue;
      this.retiring.delete(id);
      this.forgetRow(id);
    }
  }

  forgetRow(id: string): void {
    this.checkpoint.forget(id);
  }

  /** The saved row of the file now at dev + ino, including rows that moved into a copy. */
  savedRow(dev: number, ino: number): SavedFile | undefined {
    const row = this.checkpoint.byInode(dev, ino); // rows moved into a copy included: the checkpoint indexes them at their new inode
    return row && row.dev === dev && row.ino === ino && !this.retiring.has(row.id) ? row : undefined;
  }

  /**
   * Whether the file is followed, or remembered (not merely an inode number reused), under an
   * identity of its own. A remembered row of an empty file proves nothing: its inode number
   * may have been reused by any file since (a copy of another file, say).
   */
  hasIdentity(st: Stats, head: Buffer): boolean {
    const t = this.atInode(inodeKey(st.dev, st.ino));
    if (t && t.born === st.birthtimeMs) return true;
    const saved = this.savedRow(st.dev, st.ino);
    return saved !== undefined && saved.fpLen > 0 && saved.offset <= st.size && sameBirth(saved.born, st.birthtimeMs) && headMatches(saved, head);
  }

  /** Rows of files no longer followed (no scan matched them) start ageing. */
  markGone(): void {
    const now = this.clock.wall();
    for (const row of this.checkpoint.rows()) {
      if (this.files.has(row.id) || row.goneSince !== null) continue;
      this.checkpoint.goneSince(row.id, now);
    }
  }

  /** Deletes state of files gone longer than state.ttl, unless the file is still on disk. */
  expireState(): void {
    const now = this.clock.wall(); // goneSince is saved: state.ttl spans restarts
    const ttl = this.config().state.ttl;
    const at = this.clock.now();
    if (this.lastExpiry !== null && at - this.lastExpiry < Math.min(EXPIRE_EVERY_MS, ttl)) return;
    this.lastExpiry = at;
    for (const row of [...this.checkpoint.rows()]) {
      if (row.goneSince === null || now - row.goneSince < ttl || this.files.has(row.id)) continue;
      if (existsAs(row.path, row.dev, row.ino)) {
        this.checkpoint.goneSince(row.id, now);
      } else if (this.checkpoint.waiting(row.id) === 0) {
        this.forgetRow(row.id);
      }
    }
  }

  /** t's head was read again (and still matches): its fingerprint is lengthened, its first line indexed once complete. */
  headSeen(t: Tracked, seen: Observed): void {
    const row = this.checkpoint.row(t.id);
    if (row) this.lengthen(row, seen);
    if (t.lineKey === null) this.indexLine(t, firstLineKey(seen.head));
  }

  /** Lengthens a short fingerprint to what the file holds now; `seen.head` must already match it. */
  lengthen(row: Readonly<SavedFile>, seen: Observed): void {
    if (seen.head.length <= row.fpLen) return;
    this.checkpoint.lengthened(row.id, currentFingerprint(seen));
  }
}

/**
 * Tracked ids by the key of their first line. Nearly every key has one file (copies and
 * files with a common banner share one), so a key maps to a bare id and only shared keys to
 * an array: a Set per file cost about 400 bytes, 4 MB for 10,000 files.
 */
export class LineIndex {
  private readonly ids = new Map<number, string | string[]>();

  get(key: number): readonly string[] {
    const v = this.ids.get(key);
    return v === undefined ? [] : typeof v === "string" ? [v] : v;
  }

  add(key: number, id: string): void {
    const v = this.ids.get(key);
    if (v === undefined) this.ids.set(key, id);
    else if (typeof v === "string") {
      if (v !== id) this.ids.set(key, [v, id]);
    } else if (!v.includes(id)) v.push(id);
  }

  remove(key: number, id: string): void {
    const v = this.ids.get(key);
    if (v === id) this.ids.delete(key);
    else if (Array.isArray(v)) {
      const rest = v.filter((x) => x !== id);
      if (rest.length === 1) this.ids.set(key, rest[0]!);
      else this.ids.set(key, rest);
    }
  }
}

/** Whether t's file is read to the end of what it held at the last look, with no unfinished line. */
export function caughtUp(t: Tracked): boolean {
  return t.tail ? t.size === t.tail.offset && t.tail.partialBytes === 0 : t.size === t.resumeAt;
}

/** Whether t's unfinished last line has waited partial_line_timeout (then it ships as it is). */
export function partialDue(t: Tracked, input: InputConfig, now: number): boolean {
  const timeout = input.partial_line_timeout;
  return timeout > 0 && now - t.lastGrowth >= timeout && (t.tail ? t.tail.partialBytes > 0 : t.partialPending);
}

/** A file whose descriptor may be closed and opened again by its path later. */
export function reopenable(t: Tracked): boolean {
  return t.deletedAt === null && t.matched;
}

/** The input t was matched by (the first, once reload removed it). */
export function inputOf(config: AgentConfig, t: Tracked): InputConfig {
  return config.inputs[t.input] ?? config.inputs[0]!;
}

/** Whether `path` names the file dev + ino now. */
export function existsAs(path: string, dev: number, ino: number): boolean {
  try {
    const st = statSync(exactName(path));
    return st.dev === dev && st.ino === ino;
  } catch {
    return false;
  }
}
