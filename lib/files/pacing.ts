// Scan pacing: when the agent's periodic scan runs, and the directory watches that let it
// skip one. Owns the DirWatcher (watch.ts): which directories are watched (those of the
// followed files and the fixed directory of every glob) and what its events call.
// A scan stats every matched path: with 100,000 files that was 0.4 s of CPU per scan, 4 % of a
// core at the default scan_interval of 10 s. While the watches see every change a scan would
// find (watch.ts' `complete`: every directory watched, on a local file system, no event lost;
// scan.ts' `watchable`: flat globs, no symlinks, no copy held back), a name that appears, moves
// or goes away scans at once (renamed), a written file is judged alone (changed), and the
// periodic scan is skipped.
//
// Invariant: whatever the watches say, two scans are never more than FULL_SCAN_EVERY
// scan_intervals apart (a scan interval late at most): what a watch missed is found then.

import { dirname } from "../names.ts";
import type { Clock } from "../clock.ts";
import type { InputConfig } from "../config.ts";
import { splitGlob } from "./discover.ts";
import { DirWatcher, type WatchHandlers } from "./watch.ts";

/** Scans run at least once per this many scan_intervals, even while the watches stand in for them. */
export const FULL_SCAN_EVERY = 6;

export class ScanPacer {
  /** Periodic scans run and skipped (the watches stood in for them): for tests and diagnostics. */
  readonly counts = { run: 0, skipped: 0 };
  private last = Number.NEGATIVE_INFINITY;
  private readonly watcher: DirWatcher | null;

  /** `handlers` null: no watches (--once; in-process tests on a manual clock): every periodic scan runs. */
  constructor(handlers: WatchHandlers | null, private readonly clock: Clock) {
    this.watcher = handlers ? new DirWatcher(handlers, 20, clock) : null;
  }

  /** A scan starts: whatever the watches missed so far, it finds. */
  started(): void {
    this.last = this.clock.now();
    this.counts.run++;
    this.watcher?.takeMissed();
  }

  /** At the scan timer: whether to scan now (false: the watches stand in for this one; counted). */
  due(watchable: boolean, scanIntervalMs: number): boolean {
    const w = this.watcher;
    if (w && w.complete && watchable && this.clock.now() - this.last < FULL_SCAN_EVERY * scanIntervalMs) {
      this.counts.skipped++;
      return false;
    }
    return true;
  }

  /** After a scan: watches the directories that hold followed files (`dirs`) and the fixed part of every glob. */
  watch(dirs: Set<string>, inputs: readonly InputConfig[]): void {
    if (!this.watcher) return;
    for (const input of inputs) {
      for (const pattern of input.paths) {
        const { root, rest } = splitGlob(pattern);
        dirs.add(rest === "" ? dirname(root) : root);
      }
    }
    this.watcher.set(dirs);
  }

  close(): void {
    this.watcher?.close();
  }
}
