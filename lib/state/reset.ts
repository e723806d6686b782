// --reset-state: deletes the state database, and only when it is recognisably logship's (a
// state.path pointing at a log file by mistake must never delete the log). Holds the state's
// lock while it deletes, so never under a running agent.

import { Database } from "bun:sqlite";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { StateError } from "../errors.ts";
import { lockState } from "./lock.ts";
import { checkStatePath } from "./place.ts";

const LOGSHIP_COLUMNS = ["id", "dev", "ino", "fingerprint", "fp_len", "path", "offset", "seen_at", "gone_since"];
const SQLITE_MAGIC = Buffer.from("SQLite format 3\0", "latin1");

/**
 * Removes the state file and its WAL companions (for --reset-state), holding the state's lock,
 * which it leaves to the next openStore() of this path in this process. Deletes only what is
 * recognisably logship's: a missing or empty file, or an SQLite database whose schema has the
 * `files` table with logship's columns (its pages may be damaged: that is what reset is for).
 * Anything else (a log file that state.path points at by mistake) is a StateError that says
 * what the file looks like, and nothing is deleted.
 */
export async function resetStore(path: string): Promise<void> {
  if (!existsSync(dirname(path))) return; // nothing there, and no agent can be using it
  checkStatePath(path);
  const lock = lockState(path); // never under a running agent
  try {
    const problem = notLogshipState(path);
    if (problem) {
      throw new StateError(
        `--reset-state refused: "${path}" (state.path) does not look like a logship state database: ${problem}. ` +
          `Nothing was deleted. Check state.path in the config; if this really is logship's state file, move it aside yourself (mv "${path}" "${path}.bad").`,
      );
    }
    for (const p of [path, `${path}-wal`, `${path}-shm`]) {
      if (existsSync(p)) await Bun.file(p).delete();
    }
  } catch (err) {
    lock.release();
    throw err;
  }
  lock.handOver();
}

/** Why the file at `path` (or one of its companions) is not logship's state; "" when it is, or is absent. */
function notLogshipState(path: string): string {
  let head: Buffer;
  let size: number;
  try {
    ({ head, size } = readHead(path, 100));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return companionProblems(path);
    return `it cannot be read (${(err as Error).message})`;
  }
  if (size === 0) return companionProblems(path);
  if (head.length < SQLITE_MAGIC.length || !head.subarray(0, SQLITE_MAGIC.length).equals(SQLITE_MAGIC)) return describe(head, size);
  let db: Database | undefined;
  try {
    db = new Database(path, { readonly: true });
    const tables = (db.query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map((t) => t.name);
    if (!tables.includes("files")) return `it is an SQLite database of ${size} bytes without logship's "files" table (tables: ${tables.join(", ") || "none"})`;
    const columns = (db.query(`PRAGMA table_info(files)`).all() as { name: string }[]).map((c) => c.name);
    if (LOGSHIP_COLUMNS.some((c) => !columns.includes(c))) return `it is an SQLite database whose "files" table is not logship's (columns: ${columns.join(", ")})`;
  } catch (err) {
    // Page 1 (the schema) unreadable: nothing shows it is logship's.
    return `it is an SQLite file of ${size} bytes whose schema cannot be read (${(err as Error).message})`;
  } finally {
    db?.close();
  }
  return companionProblems(path);
}

/** A -wal or -shm that is not SQLite's is not deleted either. */
function companionProblems(path: string): string {
  for (const [suffix, ok] of [["-wal", isWal], ["-shm", isShm]] as const) {
    const p = `${path}${suffix}`;
    try {
      const { head, size } = readHead(p, 32);
      if (size > 0 && !ok(head)) return `"${p}" is not an SQLite ${suffix.slice(1)} file: ${describe(head, size)}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") return `"${p}" cannot be read (${(err as Error).message})`;
    }
  }
  return "";
}

const isWal = (h: Buffer) => h.length >= 4 && (h.readUInt32BE(0) & 0xfffffffe) === 0x377f0682;
const isShm = (h: Buffer) => h.length >= 4 && (h.readUInt32LE(0) === 3007000 || h.readUInt32BE(0) === 3007000);

function readHead(path: string, n: number): { head: Buffer; size: number } {
  const fd = openSync(path, "r");
  try {
    const size = statSync(path).size;
    const buf = Buffer.alloc(Math.min(n, 4096));
    const got = readSync(fd, buf, 0, buf.length, 0);
    return { head: buf.subarray(0, got), size };
  } finally {
    closeSync(fd);
  }
}

/** What a file that is not an SQLite database looks like, for the refusal. */
function describe(head: Buffer, size: number): string {
  const text = head.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b !== 0x7f));
  if (text) {
    const line = head.toString("utf8").split("\n")[0]!.slice(0, 60);
    return `it is a text file of ${size} bytes, not an SQLite database (it begins ${JSON.stringify(line)}), perhaps a log`;
  }
  return `it is a binary file of ${size} bytes that is not an SQLite database (it begins with bytes ${head.subarray(0, 8).toString("hex")})`;
}
