// Where the state file may live (issue 11, items 2 and 15): a regular file, or absent (then
// created, in a directory made 0700 whatever the umask). A FIFO would make SQLite, `check`'s
// read-only look and --reset-state wait for ever; a device or a directory is never logship's
// state. store.ts, check.ts and reset.ts ask here before they open anything.

import { chmodSync, mkdirSync, statSync, type Stats } from "node:fs";
import { dirname } from "node:path";
import { StateError } from "../errors.ts";

/**
 * Refuses a state path, or one of its companions (-wal, -shm, .lock), that exists but is not a
 * regular file: SQLite (and check's read-only look, and --reset-state's) would wait for ever on
 * a FIFO, and a device or directory is never logship's state. Absent is fine (it is created).
 */
export function checkStatePath(path: string): void {
  for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}.lock`]) {
    let st: Stats;
    try {
      st = statSync(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") continue; // created later (or its directory is)
      throw new StateError(`cannot look at state file "${p}": ${(err as Error).message}`, { cause: err });
    }
    if (!st.isFile()) {
      throw new StateError(`state.path "${path}": "${p}" is ${kindOf(st)}, not a regular file; logship keeps its state only in a regular file (created when absent). Check state.path in the config.`);
    }
  }
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isDirectory()) return "a directory";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  return "not a regular file";
}

/** Creates the state file's directory when missing: 0700, whatever the umask. */
export function makeDirectory(path: string): void {
  const dir = dirname(path);
  let first: string | undefined;
  try {
    first = mkdirSync(dir, { recursive: true, mode: 0o700 });
    // mkdir applies the umask; set the mode of every directory created here exactly.
    if (first !== undefined) {
      for (let d = dir; ; d = dirname(d)) {
        chmodSync(d, 0o700);
        if (d === first || dirname(d) === d) break;
      }
    }
  } catch (err) {
    throw new StateError(`cannot create the directory of state.path "${path}": ${(err as Error).message}`, { cause: err });
  }
}
