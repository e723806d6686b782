// The offsets database (bun:sqlite): schema, migrations, and every SQL statement logship
// runs. One row per file identity; a row is written only by the checkpoint step, after
// Kafka acknowledged the bytes it covers. The schema version lives in PRAGMA user_version.
// Columns are mapped to the domain type SavedFile here and nowhere else.

import { Database, type Statement } from "bun:sqlite";
import { mkdirSync, existsSync } from "node:fs";
import { dirname } from "node:path";
import { StateError } from "../errors.ts";

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
}

/** A row as SQLite returns it. */
interface Row {
  id: string;
  dev: number;
  ino: number;
  fingerprint: string;
  fp_len: number;
  path: string;
  offset: number;
  seen_at: number;
  gone_since: number | null;
}

const SELECT_ALL = `SELECT id, dev, ino, fingerprint, fp_len, path, offset, seen_at, gone_since FROM files`;

function toSaved(r: Row): SavedFile {
  return { id: r.id, dev: r.dev, ino: r.ino, fingerprint: r.fingerprint, fpLen: r.fp_len, path: r.path, offset: r.offset, seenAt: r.seen_at, goneSince: r.gone_since };
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
];

export class Store {
  private readonly upsert: Statement;
  private readonly deleteOne: Statement;
  private closed = false;

  constructor(private readonly db: Database, readonly path: string) {
    this.upsert = db.prepare(
      `INSERT INTO files (id, dev, ino, fingerprint, fp_len, path, offset, seen_at, gone_since)
       VALUES ($id, $dev, $ino, $fingerprint, $fp_len, $path, $offset, $seen_at, $gone_since)
       ON CONFLICT (id) DO UPDATE SET dev = $dev, ino = $ino, fingerprint = $fingerprint, fp_len = $fp_len,
         path = $path, offset = $offset, seen_at = $seen_at, gone_since = $gone_since`,
    );
    this.deleteOne = db.prepare(`DELETE FROM files WHERE id = ?`);
  }

  all(): SavedFile[] {
    return (this.db.query(SELECT_ALL).all() as Row[]).map(toSaved);
  }

  /** Writes every given row in one transaction: all of them are durable, or none. */
  save(rows: Iterable<SavedFile>): void {
    const tx = this.db.transaction((list: SavedFile[]) => {
      for (const r of list) {
        this.upsert.run({
          $id: r.id, $dev: r.dev, $ino: r.ino, $fingerprint: r.fingerprint, $fp_len: r.fpLen,
          $path: r.path, $offset: r.offset, $seen_at: r.seenAt, $gone_since: r.goneSince,
        });
      }
    });
    tx([...rows]);
  }

  remove(ids: Iterable<string>): void {
    const tx = this.db.transaction((list: string[]) => {
      for (const id of list) this.deleteOne.run(id);
    });
    tx([...ids]);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // An unfinalized statement keeps SQLite's connection open as a zombie: the file stays
    // open and the WAL is never checkpointed back into it.
    for (const st of [this.upsert, this.deleteOne]) st.finalize();
    this.db.close();
  }
}

/** Opens (creating if needed) the state database; a damaged one is refused with advice. */
export function openStore(path: string): Store {
  const advice =
    `To recover: stop logship, move the file aside (mv "${path}" "${path}.bad") and start again, ` +
    `or run with --reset-state. Either way every file is read again as new (start_at applies), ` +
    `so Kafka may receive duplicates.`;
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (err) {
    throw new StateError(`cannot create the directory of state.path "${path}": ${(err as Error).message}`, { cause: err });
  }
  let db: Database;
  try {
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
  } catch (err) {
    db.close();
    if (err instanceof StateError) throw err;
    throw new StateError(`state file "${path}" is damaged or not a logship database (${(err as Error).message}). ${advice}`, { cause: err });
  }
  return new Store(db, path);
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
  const db = new Database(path, { readonly: true });
  try {
    return (db.query(SELECT_ALL).all() as Row[]).map(toSaved);
  } finally {
    db.close();
  }
}

/** Removes the state file and its WAL companions (for --reset-state). */
export async function resetStore(path: string): Promise<void> {
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(p)) await Bun.file(p).delete();
  }
}
