// One logship per state file: an exclusive flock(2) on STATE.lock, taken before the database is
// opened and held for the life of the store. The kernel drops a flock when its holder dies in any
// way (kill -9 included), so a crashed agent never blocks the next one, which a pidfile alone
// would. The pid written into the lock file only serves the message of the process refused.
//
// Why a lock file and not SQLite's `PRAGMA locking_mode = EXCLUSIVE`: in WAL mode that makes
// the connection keep the database's lock for good and drop the shared-memory index, so no other
// process can read the file at all, and `logship check` (which reads the offsets beside a
// running agent) would fail with "database is locked"; it also puts SQLite's own locks (POSIX
// fcntl) in charge, whose failure is a busy error after busy_timeout rather than "who holds it".
// A separate file also keeps flock off the database (on NFS flock is emulated with fcntl locks
// and would collide with SQLite's).
//
// Within one process the lock is shared (counted): tests open a second store on a path to read
// it, and `--reset-state` hands the lock it took over to the store opened next.

import { dlopen, read } from "bun:ffi";
import { closeSync, constants, fchmodSync, fstatSync, ftruncateSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { StateError } from "../errors.ts";

export interface StateLock {
  readonly path: string; // the lock file
  /** Takes the lock again when its file vanished or was replaced (e.g. the directory was removed). */
  renew(): void;
  /** Leaves the lock held for the next lockState() of this path in this process (--reset-state). */
  handOver(): void;
  release(): void;
}

interface Held {
  fd: number;
  refs: number;
  spare: number; // refs handed over, waiting for the next lockState()
}

const held = new Map<string, Held>(); // resolved lock path → the lock this process holds

export function lockPathOf(statePath: string): string {
  return `${statePath}.lock`;
}

/** Takes the exclusive lock of a state file; a StateError names the holder when another process has it. */
export function lockState(statePath: string): StateLock {
  const path = lockPathOf(statePath);
  const key = resolve(path);
  let h = held.get(key);
  if (h && h.spare > 0) h.spare--;
  else if (h) h.refs++;
  else held.set(key, (h = { fd: take(statePath, path), refs: 1, spare: 0 }));
  let released = false;
  return {
    path,
    renew() {
      const entry = held.get(key);
      if (!entry || sameFile(entry.fd, path)) return;
      const fd = take(statePath, path);
      closeSync(entry.fd);
      entry.fd = fd;
    },
    handOver() {
      if (released) return;
      released = true;
      const entry = held.get(key);
      if (entry) entry.spare++;
    },
    release() {
      if (released) return;
      released = true;
      const entry = held.get(key);
      if (!entry || --entry.refs > 0) return;
      held.delete(key);
      closeSync(entry.fd); // the last descriptor of the file: the kernel drops the flock
    },
  };
}

/** Opens (creating, 0600) and flocks the lock file; writes our pid into it. */
function take(statePath: string, path: string): number {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  } catch (err) {
    throw new StateError(`cannot create the lock file "${path}" of state file "${statePath}": ${(err as Error).message}`, { cause: err });
  }
  const r = flock(fd);
  if (r !== "ok") {
    closeSync(fd);
    if (r === "busy") {
      const pid = holder(path);
      throw new StateError(
        `state file "${statePath}" is in use by another logship${pid ? ` (pid ${pid})` : ""}; two agents on one state file would both ship everything. ` +
          `Stop the other one, or give this one its own state.path (lock: ${path})`,
      );
    }
    throw new StateError(`cannot lock state file "${statePath}" (flock on "${path}": ${r})`);
  }
  try {
    fchmodSync(fd, 0o600); // whatever the umask was, or whoever created it
  } catch {
    // not ours to change (another user's file): the lock is what matters
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  return fd;
}

function holder(path: string): string {
  try {
    const pid = readFileSync(path, "utf8").trim();
    return /^\d+$/.test(pid) ? pid : "";
  } catch {
    return "";
  }
}

function sameFile(fd: number, path: string): boolean {
  try {
    const a = fstatSync(fd, { bigint: true });
    const b = statSync(path, { bigint: true });
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

// --- flock(2) through libc -------------------------------------------------------------------

const LOCK_EX = 2;
const LOCK_NB = 4;

interface Libc {
  flock(fd: number, op: number): number;
  errno(): number;
  wouldBlock: number;
}

let libc: Libc | undefined;

function loadLibc(): Libc {
  if (libc) return libc;
  const darwin = process.platform === "darwin";
  const names = darwin ? ["libSystem.B.dylib"] : ["libc.so.6", "libc.so"];
  const errnoFn = darwin ? "__error" : "__errno_location";
  let lastErr: unknown;
  for (const name of names) {
    try {
      const { symbols } = dlopen(name, { flock: { args: ["i32", "i32"], returns: "i32" }, [errnoFn]: { args: [], returns: "ptr" } });
      const errnoPtr = symbols[errnoFn] as () => number | null;
      libc = {
        flock: (fd, op) => symbols.flock(fd, op) as number,
        errno: () => {
          const p = errnoPtr();
          return p ? read.i32(p as never, 0) : 0;
        },
        wouldBlock: darwin ? 35 : 11,
      };
      return libc;
    } catch (err) {
      lastErr = err;
    }
  }
  throw new StateError(`cannot load libc to lock the state file: ${(lastErr as Error)?.message ?? "not found"}`);
}

function flock(fd: number): "ok" | "busy" | string {
  const c = loadLibc();
  for (;;) {
    if (c.flock(fd, LOCK_EX | LOCK_NB) === 0) return "ok";
    const e = c.errno();
    if (e === 4) continue; // EINTR
    return e === c.wouldBlock ? "busy" : `errno ${e}`;
  }
}
