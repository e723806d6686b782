// The offsets database (bun:sqlite): schema, migrations, and every SQL statement logship
// runs. One row per file identity; a row is written only by the checkpoint step, after
// Kafka acknowledged the bytes it covers. The schema version lives in PRAGMA user_version.
// Columns are mapped to the domain type SavedFile here and nowhere else.
// The state is private: a directory logship creates is 0700 and the files are 0600, whatever
// the umask. One agent per state file (lock.ts). A database deleted or replaced under a running
// agent is noticed at the next save and created again (reopenIfReplaced). --reset-state deletes
// only a file that is recognisably a logship database (resetStore).
// A file name is stored exactly, also one that is not valid UTF-8 (lib/names.ts): `path` is
// TEXT holding the name's bytes (written as CAST(bytes AS TEXT); SQLite stores TEXT bytes as
// given). bun:sqlite reads such text with U+FFFD, so a row whose path reads with U+FFFD has its
// bytes read again (exactPaths). Why not a BLOB, or a new column: the schema stays 2, and an
// older logship given this database reads such a path as the same lossy string its own readdir
// gives, where a BLOB would stop it at start ("The "path" property must be of type string").

import { Database, type Statement } from "bun:sqlite";
import { closeSync, constants, existsSync, fchmodSync, openSync, statSync, unlinkSync } from "node:fs";
import { StateError } from "../errors.ts";
import { exactName, nameFromBytes } from "../names.ts";
import { lockState, type StateLock } from "./lock.ts";
import { checkStatePath, makeDirectory } from "./place.ts";

/** What logship remembers about one file. */
export interface SavedFile {
  id: string; // stable identity, also the `file` header
  dev: number;
  ino: number;
  fingerprint: string; // hex hash of the first fpLen bytes
  fpLen: number;
  path: string; // last path the file was seen at
  offset: number; // end of the last complete line Kafka acknowledged
  seenAt: number; // ms epoch, last time the file was found on disk
  goneSince: number | null; // ms epoch it was first missed; null while it exists
  born: number; // birth time (ms; 0 where the file system keeps none, or not known yet)
  size: number; // size at the last look: a file never holds less under the same identity
  mtimeMs: number; // mtime at the last look
  markLen: number; // the last markLen bytes before `offset` have CRC-32 markCrc (0: not known)
  markCrc: number;
}

/** A row as SQLite returns it. */
interface Row {
  id: string;
  dev: number;
  ino: number;
  fingerprint: string;
  fp_len: number;
  path: string; // with U+FFFD where the bytes are not UTF-8 (exactPaths reads them)
  offset: number;
  seen_at: number;
  gone_since: number | null;
  born: number;
  size: number;
  mtime: number;
  mark_len: number;
  mark_crc: number;
}

const SELECT_ALL = `SELECT id, dev, ino, fingerprint, fp_len, path, offset, seen_at, gone_since, born, size, mtime, mark_len, mark_crc FROM files`;

function toSaved(r: Row): SavedFile {
  return { id: r.id, dev: r.dev, ino: r.ino, fingerprint: r.fingerprint, fpLen: r.fp_len, path: r.path, offset: r.offset, seenAt: r.seen_at, goneSince: r.gone_since, born: r.born, size: r.size, mtimeMs: r.mtime, markLen: r.mark_len, markCrc: r.mark_crc };
}

/** The rows as SavedFiles, each path exact: one that read with U+FFFD is read again as bytes (rare: such names only). */
function exactPaths(db: Database, rows: Row[]): SavedFile[] {
  let bytesOf: Statement | undefined;
  try {
    for (const r of rows) {
      if (!r.path.includes("\uFFFD")) continue;
      bytesOf ??= db.prepare("SELECT CAST(path AS BLOB) AS bytes FROM files WHERE id = ?");
      const got = bytesOf.get(r.id) as { bytes: Uint8Array } | null;
      if (got) r.path = nameFromBytes(got.bytes);
    }
  } finally {
    bytesOf?.finalize();
  }
  return rows.map(toSaved);
}

// Each entry moves the schema from version i to i+1. Never edit one that has shipped.
const MIGRATIONS: string[] = [
  `CREATE TABLE files (
     id          TEXT PRIMARY KEY,
     dev         INTEGER NOT NULL,
     ino         INTEGER NOT NULL,
     fingerprint TEXT    NOT NULL,
     fp_len      INTEGER NOT NULL,
     path        TEXT    NOT NULL,
     offset      INTEGER NOT NULL,
     seen_at     INTEGER NOT NULL,
     gone_since  INTEGER
   );
   CREATE INDEX files_by_inode ON files (dev, ino);`,
  // What tells a file from a new one at a reused inode number across restarts: its birth
  // time (0 where the file system keeps none) and its size and mtime at the last look.
  // And a checksum of the last bytes before the saved offset: a copy that carries the file on
  // must hold them where they were (files that merely share a header do not).
  `ALTER TABLE files ADD COLUMN born REAL NOT NULL DEFAULT 0;
   ALTER TABLE files ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE files ADD COLUMN mtime REAL NOT NULL DEFAULT 0;
   ALTER TABLE files ADD COLUMN mark_len INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE files ADD COLUMN mark_crc INTEGER NOT NULL DEFAULT 0;`,
];

export class Store {
  private db: Database | null;
  private upsert!: Statement;
  private deleteOne!: Statement;
  private file: FileId; // the database file this connection writes to
  private closed = false;

  private constructor(readonly path: string, private readonly lock: StateLock, opened: Opened) {
    this.db = opened.db;
    this.file = opened.file;
    this.prepare(opened.db);
  }

  /** @internal openStore() is the way in. */
  static open(path: string, lock: StateLock, opened: Opened): Store {
    return new Store(path, lock, opened);
  }

  private prepare(db: Database): void {
    this.upsert = db.prepare(
      `INSERT INTO files (id, dev, ino, fingerprint, fp_len, path, offset, seen_at, gone_since, born, size, mtime, mark_len, mark_crc)
       VALUES ($id, $dev, $ino, $fingerprint, $fp_len, CAST($path AS TEXT), $offset, $seen_at, $gone_since, $born, $size, $mtime, $mark_len, $mark_crc)
       ON CONFLICT (id) DO UPDATE SET dev = $dev, ino = $ino, fingerprint = $fingerprint, fp_len = $fp_len,
         path = CAST($path AS TEXT), offset = $offset, seen_at = $seen_at, gone_since = $gone_since, born = $born, size = $size, mtime = $mtime,
         mark_len = $mark_len, mark_crc = $mark_crc`,
    );
    this.deleteOne = db.prepare(`DELETE FROM files WHERE id = ?`);
  }

  private get open(): Database {
    if (this.closed) throw new Error("the state store is closed");
    if (!this.db) throw new Error(`the state database "${this.path}" is not open (creating it again failed)`);
    return this.db;
  }

  all(): SavedFile[] {
    return exactPaths(this.open, this.open.query(SELECT_ALL).all() as Row[]);
  }

  /** Writes every given row in one transaction: all of them are durable, or none. */
  save(rows: Iterable<SavedFile>): void {
    const tx = this.open.transaction((list: SavedFile[]) => {
      for (const r of list) {
        this.upsert.run({
          $id: r.id, $dev: r.dev, $ino: r.ino, $fingerprint: r.fingerprint, $fp_len: r.fpLen,
          $path: exactName(r.path), $offset: r.offset, $seen_at: r.seenAt, $gone_since: r.goneSince, $born: r.born, $size: r.size, $mtime: r.mtimeMs, $mark_len: r.markLen, $mark_crc: r.markCrc,
        });
      }
    });
    tx([...rows]);
  }

  remove(ids: Iterable<string>): void {
    const tx = this.open.transaction((list: string[]) => {
      for (const id of list) this.deleteOne.run(id);
    });
    tx([...ids]);
  }

  /** Saves a batch's rows, then deletes its removed ids. */
  saveBatch(batch: { rows: SavedFile[]; removed: string[] }): void {
    this.save(batch.rows);
    if (batch.removed.length > 0) this.remove(batch.removed);
  }

  /**
   * What a writer does with a batch: nothing when the database was replaced (true: the caller
   * writes every row again, see reopenIfReplaced), else saveBatch (false).
   */
  write(batch: { rows: SavedFile[]; removed: string[] }): boolean {
    if (this.reopenIfReplaced()) return true;
    this.saveBatch(batch);
    return false;
  }

  /**
   * Call before saving. When the database file was deleted (or another file put at its path)
   * while logship ran, SQLite would go on writing to the unlinked file in WAL mode, nothing
   * would be said, and the next start would read every file again. So: compare the path's
   * device + inode with the file opened; if they differ, close the old connection, create a
   * new database at the path and return true. The caller must then write ALL its rows, not
   * only the changed ones. Throws a StateError when the new one cannot be created (retried on
   * the next call).
   */
  reopenIfReplaced(): boolean {
    if (this.closed) return false;
    if (this.db && sameFile(this.path, this.file)) return false;
    if (this.db) {
      this.release();
      this.db = null;
    }
    if (!existsSync(this.path)) {
      // Closing the last connection removes its -wal and -shm; one left without its database
      // belongs to the old file, and SQLite would replay it into the new one.
      for (const p of [`${this.path}-wal`, `${this.path}-shm`]) removeIfThere(p);
    }
    makeDirectory(this.path);
    this.lock.renew(); // the lock file may have gone with the database (rm -r of the directory)
    const opened = openDatabase(this.path);
    this.db = opened.db;
    this.file = opened.file;
    this.prepare(opened.db);
    return true;
  }

  /**
   * Closes the database but keeps the lock, which is handed back: the agent reads the rows here,
   * then a writer process (writer.ts) opens the database with openUnlocked() and does the writes.
   */
  detach(): StateLock {
    if (!this.closed) {
      this.closed = true;
      if (this.db) this.release();
    }
    return this.lock;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.db) this.release();
    this.lock.release();
  }

  private release(): void {
    // An unfinalized statement keeps SQLite's connection open as a zombie: the file stays
    // open and the WAL is never checkpointed back into it.
    for (const st of [this.upsert, this.deleteOne]) st.finalize();
    this.db?.close();
  }
}

/** The device and inode of a file. */
interface FileId {
  dev: bigint;
  ino: bigint;
}

interface Opened {
  db: Database;
  file: FileId;
}

function fileId(path: string): FileId | null {
  try {
    const st = statSync(path, { bigint: true });
    return { dev: st.dev, ino: st.ino };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw err;
  }
}

function sameFile(path: string, was: FileId): boolean {
  const now = fileId(path);
  return now !== null && now.dev === was.dev && now.ino === was.ino;
}

function removeIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

const ADVICE = (path: string) =>
  `To recover: stop logship, move the file aside (mv "${path}" "${path}.bad") and start again, ` +
  `or run with --reset-state (which deletes it only if it is recognisably a logship database). Either way every file is read again as new (start_at applies), ` +
  `so Kafka may receive duplicates.`;

/** Opens (creating if needed) the state database; a damaged one is refused with advice. */
export function openStore(path: string): Store {
  checkStatePath(path);
  makeDirectory(path);
  const lock = lockState(path);
  try {
    return Store.open(path, lock, openDatabase(path));
  } catch (err) {
    lock.release();
    throw err;
  }
}

const NO_LOCK: StateLock = { path: "", renew() {}, handOver() {}, release() {} };

/** Opens the state database without taking its lock: for the writer process of an agent that holds it (writer.ts). */
export function openUnlocked(path: string): Store {
  checkStatePath(path);
  makeDirectory(path);
  return Store.open(path, NO_LOCK, openDatabase(path));
}

/** Opens the database at `path` (created 0600 when missing), sets the pragmas, checks and migrates it. */
function openDatabase(path: string): Opened {
  let db: Database;
  try {
    // SQLite would create the file 0644 less the umask, and gives -wal and -shm the mode of
    // the database: create it empty (an empty file is a new database to SQLite) and 0600 first.
    try {
      const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        fchmodSync(fd, 0o600);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    db = new Database(path, { create: true, strict: false });
  } catch (err) {
    throw new StateError(`cannot open state file "${path}": ${(err as Error).message}`, { cause: err });
  }
  try {
    // WAL lets the checkpoint commit without rewriting the whole file. synchronous=FULL
    // makes each commit durable before it returns: edge hosts lose power, and an offset
    // that runs ahead of what is on disk is fine, but a lost commit re-sends, and a torn
    // one would lose the file's position altogether.
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA busy_timeout = 5000");
    const check = db.query("PRAGMA quick_check").get() as { quick_check: string } | null;
    if (check?.quick_check !== "ok") throw new Error(`integrity check failed: ${check?.quick_check ?? "no answer"}`);
    migrate(db);
    const file = fileId(path);
    if (!file) throw new Error("the file vanished while it was opened");
    return { db, file };
  } catch (err) {
    db.close();
    if (err instanceof StateError) throw err;
    throw new StateError(`state file "${path}" is damaged or not a logship database (${(err as Error).message}). ${ADVICE(path)}`, { cause: err });
  }
}

function migrate(db: Database): void {
  const row = db.query("PRAGMA user_version").get() as { user_version: number };
  const version = row.user_version;
  if (version > MIGRATIONS.length) {
    throw new StateError(`state file was written by a newer logship (schema ${version}, this one knows ${MIGRATIONS.length}); upgrade logship or use another state.path`);
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.exec(`PRAGMA user_version = ${v + 1}`);
    })();
  }
}

/**
 * The rows of a state file, read without writing anything (for `logship check`, which may run
 * beside a running agent). Throws when the file cannot be read.
 */
export function readSaved(path: string): SavedFile[] {
  checkStatePath(path);
  const db = new Database(path, { readonly: true });
  try {
    // The agent's writer may be mid-write (or, after a kill -9, finishing its last batch):
    // wait for it as the agent's own connection does, instead of failing with SQLITE_BUSY.
    db.exec("PRAGMA busy_timeout = 5000");
    return exactPaths(db, db.query(SELECT_ALL).all() as Row[]);
  } finally {
    db.close();
  }
}

export { resetStore } from "./reset.ts";
