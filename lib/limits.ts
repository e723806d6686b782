// The open-file limit (RLIMIT_NOFILE). At start the soft limit is raised to the hard one
// (through libc's getrlimit/setrlimit with bun:ffi, which the compiled binary carries), and
// max_open_files is kept FD_RESERVE descriptors below it: the log files must never take the
// descriptors that Kafka's sockets, the state database (with -wal, -shm and the lock), inotify
// and the runtime need, or the Kafka connection fails with a misleading error and nothing ships.

import { dlopen, FFIType, ptr } from "bun:ffi";
import { readFileSync } from "node:fs";

/** Descriptors kept for everything but log files: Kafka sockets, the state files, inotify, the runtime's own. */
export const FD_RESERVE = 64;

const RLIMIT_NOFILE = 7; // Linux, x86-64 and arm64
const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;
const LIBCS = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

export interface FileLimit {
  soft: number; // the soft limit now (after raising it)
  hard: number;
  raisedFrom: number | null; // the soft limit before, when it was raised
  problem: string | null; // why it could not be read or raised
}

/** Raises the soft RLIMIT_NOFILE to the hard limit (capped by fs.nr_open) and reports both. */
export function raiseFileLimit(): FileLimit {
  if (process.platform !== "linux") return { ...fromProc(), raisedFrom: null, problem: `not raised on ${process.platform}` };
  const fn = { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 } as const;
  let libc: ReturnType<typeof dlopen<{ getrlimit: typeof fn; setrlimit: typeof fn }>> | null = null;
  for (const name of LIBCS) {
    try {
      libc = dlopen(name, { getrlimit: fn, setrlimit: fn });
      break;
    } catch {
      // try the next name
    }
  }
  if (!libc) return { ...fromProc(), raisedFrom: null, problem: "libc not found" };
  try {
    const lim = new BigUint64Array(2); // struct rlimit { rlim_cur, rlim_max }
    if (libc.symbols.getrlimit(RLIMIT_NOFILE, ptr(lim)) !== 0) return { ...fromProc(), raisedFrom: null, problem: "getrlimit failed" };
    const soft = lim[0]!;
    const hard = lim[1]!;
    const target = hard === RLIM_INFINITY ? BigInt(nrOpen()) : hard;
    if (soft >= target) return { soft: toNumber(soft), hard: toNumber(hard), raisedFrom: null, problem: null };
    lim[0] = target;
    if (libc.symbols.setrlimit(RLIMIT_NOFILE, ptr(lim)) !== 0) return { soft: toNumber(soft), hard: toNumber(hard), raisedFrom: null, problem: "setrlimit failed" };
    return { soft: toNumber(target), hard: toNumber(hard), raisedFrom: toNumber(soft), problem: null };
  } finally {
    libc.close();
  }
}

/** max_open_files as it can be used under a soft limit of `soft`: FD_RESERVE below it (half of it when tiny). */
export function usableOpenFiles(configured: number, soft: number): number {
  const room = soft - FD_RESERVE;
  return Math.max(1, Math.min(configured, room >= 16 ? room : Math.floor(soft / 2)));
}

function toNumber(v: bigint): number {
  return v >= BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

function nrOpen(): number {
  try {
    return Number(readFileSync("/proc/sys/fs/nr_open", "utf8").trim()) || 1_048_576;
  } catch {
    return 1_048_576;
  }
}

/** The limits as /proc/self/limits shows them (where libc cannot be called). */
function fromProc(): { soft: number; hard: number } {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    const n = (s: string | undefined) => (s === undefined || s === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(s));
    if (m) return { soft: n(m[1]), hard: n(m[2]) };
  } catch {
    // not Linux, or no procfs
  }
  return { soft: Number.MAX_SAFE_INTEGER, hard: Number.MAX_SAFE_INTEGER };
}
