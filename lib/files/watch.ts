// Watching: inotify watches (fs.watch) on the directories that hold followed files and on
// the fixed directories of the globs, so growth is noticed within milliseconds and new or
// renamed files soon after, without polling fast. Events only say "look now": they are
// coalesced into at most one call per `settleMs` (the written files' paths with it), and the
// agent's slow poll and scan stay the fallback for whatever a watch misses (network
// filesystems, overflowing queues, directories that cannot be watched).
//
// Invariant: `complete` is true only while every directory of the last set() is watched on a
// local file system and no event was lost since takeMissed() (more written names than
// MAX_NAMES between two calls): then every name that appeared, moved or went away was
// reported by renamed(), and every file written by changed(). The agent skips its periodic
// scan only then (agent.ts).

import { statfsSync, watch, type FSWatcher } from "node:fs";
import { exactName, join, nameFromBytes } from "../names.ts";
import { systemClock, type Cancel, type Clock } from "../clock.ts";

export interface WatchHandlers {
  /** Files in watched directories were written: their paths (empty when more than MAX_NAMES were: then takeMissed() says so). */
  changed(paths: readonly string[]): void;
  renamed(): void; // a name in a watched directory appeared, moved or went away
}

/** Written paths kept between two changed() calls at most; beyond, the batch is dropped and counted as missed. */
export const MAX_NAMES = 4096;

/**
 * statfs f_type of file systems whose inotify sees only this host's writes, or none: NFS, SMB
 * and CIFS, FUSE (sshfs, s3fs…), 9p, Ceph, AFS, GlusterFS (over FUSE). A directory on one counts as unwatched.
 */
const REMOTE_FS = new Set([0x6969, 0x517b, 0xff534d42, 0xfe534d42, 0x65735546, 0x01021997, 0x00c36400, 0x5346414f, 0x47504653]);

export class DirWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  /** Watched directories on a network file system (judged once, when watched): their watches may miss changes. */
  private readonly remote = new Set<string>();
  private changeTimer: Cancel | null = null;
  private renameTimer: Cancel | null = null;
  private closed = false;
  private written = new Set<string>();
  private unwatched = 0; // directories of the last set() not watched, or on a remote file system
  private missed = false;

  constructor(
    private readonly handlers: WatchHandlers,
    private readonly settleMs = 20,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Watches exactly these directories from now on. */
  set(dirs: Iterable<string>): void {
    if (this.closed) return;
    const want = new Set(dirs);
    for (const [dir, w] of this.watchers) {
      if (want.has(dir)) continue;
      w.close();
      this.watchers.delete(dir);
      this.remote.delete(dir);
    }
    let unwatched = 0;
    for (const dir of want) {
      if (!this.watchers.has(dir)) {
        try {
          const w = watch(exactName(dir), { persistent: false, encoding: "buffer" }, (event, name) => this.onEvent(dir, event, name));
          w.on("error", () => this.drop(dir)); // the directory went away: the scan notices
          this.watchers.set(dir, w);
          if (onRemoteFs(dir)) this.remote.add(dir);
        } catch {
          // missing or unwatchable directory: polling covers it
        }
      }
      if (!this.watchers.has(dir) || this.remote.has(dir)) unwatched++;
    }
    this.unwatched = unwatched;
  }

  /** Directories watched now. */
  get size(): number {
    return this.watchers.size;
  }

  /** Whether every directory asked for is watched, on a local file system, and nothing was missed since takeMissed(). */
  get complete(): boolean {
    return !this.closed && this.unwatched === 0 && !this.missed;
  }

  /** Whether events were lost since the last call (the caller then scans in full); clears it. */
  takeMissed(): boolean {
    const was = this.missed;
    this.missed = false;
    return was;
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    this.changeTimer?.();
    this.renameTimer?.();
  }

  private drop(dir: string): void {
    this.watchers.get(dir)?.close();
    this.watchers.delete(dir);
    this.remote.delete(dir);
    this.unwatched++;
  }

  private onEvent(dir: string, event: string, name: string | Buffer | null): void {
    if (this.closed) return;
    if (event === "rename") {
      this.renameTimer ??= this.clock.after(this.settleMs * 5, () => {
        this.renameTimer = null;
        if (!this.closed) this.handlers.renamed();
      });
    } else if (name === null || name === undefined) {
      this.missed = true; // a write without a name: which file is not known
    } else if (this.written.size < MAX_NAMES) {
      this.written.add(join(dir, typeof name === "string" ? name : nameFromBytes(name))); // exact: names may not be UTF-8
    } else {
      this.missed = true;
    }
    this.changeTimer ??= this.clock.after(this.settleMs, () => {
      this.changeTimer = null;
      const paths = this.missed ? [] : [...this.written];
      this.written = new Set();
      if (!this.closed) this.handlers.changed(paths);
    });
  }
}

function onRemoteFs(dir: string): boolean {
  try {
    return REMOTE_FS.has(statfsSync(exactName(dir)).type);
  } catch {
    return true; // cannot tell: treated as not watched
  }
}
