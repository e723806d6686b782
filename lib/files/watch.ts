// Watching: inotify watches (fs.watch) on the directories that hold followed files and on
// the fixed directories of the globs, so growth is noticed within milliseconds and new or
// renamed files soon after, without polling fast. Events only say "look now": they are
// coalesced into at most one call per `settleMs`, and the agent's slow poll and scan stay
// the fallback for whatever a watch misses (network filesystems, overflowing queues,
// directories that cannot be watched).

import { watch, type FSWatcher } from "node:fs";
import { exactName } from "../names.ts";
import { systemClock, type Cancel, type Clock } from "../clock.ts";

export interface WatchHandlers {
  changed(): void; // some file in a watched directory was written
  renamed(): void; // a name in a watched directory appeared, moved or went away
}

export class DirWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  private changeTimer: Cancel | null = null;
  private renameTimer: Cancel | null = null;
  private closed = false;

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
    }
    for (const dir of want) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(exactName(dir), { persistent: false }, (event) => this.onEvent(event));
        w.on("error", () => this.drop(dir)); // the directory went away: the scan notices
        this.watchers.set(dir, w);
      } catch {
        // missing or unwatchable directory: polling covers it
      }
    }
  }

  /** Directories watched now. */
  get size(): number {
    return this.watchers.size;
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
  }

  private onEvent(event: string): void {
    if (this.closed) return;
    if (event === "rename") {
      this.renameTimer ??= this.clock.after(this.settleMs * 5, () => {
        this.renameTimer = null;
        if (!this.closed) this.handlers.renamed();
      });
    }
    this.changeTimer ??= this.clock.after(this.settleMs, () => {
      this.changeTimer = null;
      if (!this.closed) this.handlers.changed();
    });
  }
}
