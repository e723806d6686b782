// store.ts: the offsets database — versioned schema, WAL with synchronous=FULL, all-or-none
// writes, expiry of gone files, and a damaged file refused with advice on recovering.
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { StateError } from "../lib/errors.ts";
import { Checkpoint } from "../lib/state/checkpoint.ts";
import { openStore, resetStore, type SavedFile } from "../lib/state/store.ts";
import { makeLogDir } from "./helpers/logDir.ts";

const dir = makeLogDir("store");
afterAll(() => dir.cleanup());

let seq = 0;
const freshPath = () => dir.path(`s${seq++}/state.db`);

function row(id: string, over: Partial<SavedFile> = {}): SavedFile {
  return { id, dev: 2049, ino: 5_000_000_000, fingerprint: "0123456789abcdef0123456789abcdef", fpLen: 1024, path: `/var/log/${id}.log`, offset: 2 ** 40, seenAt: 1_700_000_000_123, goneSince: null, born: 1_700_000_000_001.5, size: 2 ** 41, mtimeMs: 1_700_000_000_100.25, markLen: 200, markCrc: 4_000_000_000, ...over };
}

function stateErrorOf(fn: () => unknown): StateError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StateError);
    return err as StateError;
  }
  throw new Error("expected a StateError");
}

describe("schema and pragmas", () => {
  test("a new database gets the current schema version, the files table and WAL", () => {
    const path = freshPath(); // its directory does not exist yet
    const store = openStore(path);
    store.close();
    const db = new Database(path);
    expect(db.query("PRAGMA user_version").get()).toEqual({ user_version: 2 });
    expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" }); // persistent in the file
    const columns = (db.query("PRAGMA table_info(files)").all() as { name: string }[]).map((c) => c.name);
    expect(columns).toEqual(["id", "dev", "ino", "fingerprint", "fp_len", "path", "offset", "seen_at", "gone_since", "born", "size", "mtime", "mark_len", "mark_crc"]);
    db.close();
  });

  test("a version-1 database (before born/size/mtime) is migrated, its rows kept with those unknown (0)", () => {
    const path = freshPath();
    mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path, { create: true });
    db.exec(`CREATE TABLE files (id TEXT PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL, fingerprint TEXT NOT NULL, fp_len INTEGER NOT NULL,
      path TEXT NOT NULL, offset INTEGER NOT NULL, seen_at INTEGER NOT NULL, gone_since INTEGER); CREATE INDEX files_by_inode ON files (dev, ino);
      PRAGMA user_version = 1;`);
    db.run(`INSERT INTO files VALUES ('old', 1, 2, 'ff', 8, '/var/log/old.log', 77, 1000, NULL)`);
    db.close();
    const store = openStore(path);
    expect(store.all()).toEqual([{ id: "old", dev: 1, ino: 2, fingerprint: "ff", fpLen: 8, path: "/var/log/old.log", offset: 77, seenAt: 1000, goneSince: null, born: 0, size: 0, mtimeMs: 0, markLen: 0, markCrc: 0 }]);
    store.close();
  });

  test("the open connection runs with synchronous=FULL (2)", () => {
    const store = openStore(freshPath());
    // synchronous is per connection: read it through the store's own handle.
    const db = (store as unknown as { db: Database }).db;
    expect(db.query("PRAGMA synchronous").get()).toEqual({ synchronous: 2 });
    expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    store.close();
  });

  test("reopening keeps the rows and does not migrate again", () => {
    const path = freshPath();
    const a = openStore(path);
    a.save([row("x")]);
    a.close();
    const b = openStore(path);
    expect(b.all()).toEqual([row("x")]);
    b.close();
  });

  test("a database from a newer logship is refused", () => {
    const path = freshPath();
    openStore(path).close();
    const db = new Database(path);
    db.exec("PRAGMA user_version = 99");
    db.close();
    const err = stateErrorOf(() => openStore(path));
    expect(err.message).toContain("newer logship (schema 99, this one knows 2)");
  });
});

describe("rows", () => {
  test("save() upserts every given row, values round-trip exactly", () => {
    const store = openStore(freshPath());
    store.save([row("a"), row("b", { goneSince: 1_700_000_100_000, offset: 0 })]);
    store.save([row("a", { offset: 99, path: "/var/log/a.log.1" })]);
    const all = store.all().sort((x, y) => x.id.localeCompare(y.id));
    expect(all).toEqual([row("a", { offset: 99, path: "/var/log/a.log.1" }), row("b", { goneSince: 1_700_000_100_000, offset: 0 })]);
    store.close();
  });

  test("save() is all or none", () => {
    const store = openStore(freshPath());
    store.save([row("a", { offset: 1 })]);
    const bad = { ...row("b"), path: null } as unknown as SavedFile; // violates NOT NULL
    expect(() => store.save([row("a", { offset: 2 }), bad])).toThrow();
    expect(store.all()).toEqual([row("a", { offset: 1 })]);
    store.close();
  });

  test("remove() deletes by id; unknown ids are fine", () => {
    const store = openStore(freshPath());
    store.save([row("a"), row("b"), row("c")]);
    store.remove(["a", "c", "zzz"]);
    expect(store.all().map((r) => r.id)).toEqual(["b"]);
    store.close();
  });

  test("close() releases the connection: the WAL is folded back into the file and removed", () => {
    const path = freshPath();
    const name = path.slice(dir.root.length + 1);
    const store = openStore(path);
    store.save([row("a")]);
    store.remove(["zzz"]);
    expect(dir.exists(`${name}-wal`)).toBe(true);
    store.close();
    expect(dir.exists(`${name}-wal`)).toBe(false);
    const db = new Database(path, { readonly: true });
    expect(db.query("SELECT id FROM files").all()).toEqual([{ id: "a" }]);
    db.close();
  });

  test("close() twice is harmless; a closed store throws on use", () => {
    const store = openStore(freshPath());
    store.close();
    store.close();
    expect(() => store.save([row("a")])).toThrow();
  });
});

describe("damage and recovery", () => {
  test("a file of random bytes is refused with a StateError that says how to recover", () => {
    const path = freshPath();
    dir.write(path.slice(dir.root.length + 1), randomBytes(64 * 1024));
    const err = stateErrorOf(() => openStore(path));
    expect(err.message).toContain(`state file "${path}" is damaged or not a logship database`);
    expect(err.message).toContain(`mv "${path}" "${path}.bad"`);
    expect(err.message).toContain("--reset-state");
    expect(err.message).toContain("duplicates");
  });

  test("a database with damaged pages (a torn write) is refused with the same advice", () => {
    const path = freshPath();
    const store = openStore(path);
    store.save(Array.from({ length: 500 }, (_, i) => row(`file-${i}`, { path: `/var/log/${"d".repeat(100)}/${i}.log` })));
    store.close(); // the last connection checkpoints the WAL into the main file
    const name = path.slice(dir.root.length + 1);
    const bytes = dir.read(name);
    expect(bytes.length).toBeGreaterThan(8 * 4096);
    randomBytes(4096).copy(bytes, 2 * 4096); // garble a whole b-tree page
    dir.write(name, bytes);
    const err = stateErrorOf(() => openStore(path));
    expect(err.message).toContain("is damaged or not a logship database");
    expect(err.message).toContain("To recover:");
  });

  test("a text file in place of the database is refused the same way", () => {
    const path = freshPath();
    dir.write(path.slice(dir.root.length + 1), "offsets: 12\n");
    expect(stateErrorOf(() => openStore(path)).message).toContain("To recover:");
  });

  test("a state path whose directory cannot be created is a StateError", () => {
    dir.write("plainfile", "x");
    const err = stateErrorOf(() => openStore(dir.path("plainfile/sub/state.db")));
    expect(err.message).toContain("cannot create the directory of state.path");
  });

  test("resetStore removes the database and its WAL files, then a fresh one opens", async () => {
    const path = freshPath();
    const store = openStore(path);
    store.save([row("a")]);
    expect(dir.exists(path.slice(dir.root.length + 1) + "-wal")).toBe(true);
    store.close();
    // Damaged meanwhile: every page after the first (the schema) garbled, so it is still
    // recognisably logship's (reset refuses a file that is not: see "--reset-state" below).
    const bytes = dir.read(path.slice(dir.root.length + 1));
    expect(bytes.length).toBeGreaterThan(4096);
    randomBytes(bytes.length - 4096).copy(bytes, 4096);
    dir.write(path.slice(dir.root.length + 1), bytes);
    expect(() => openStore(path)).toThrow(StateError);
    await resetStore(path);
    for (const suffix of ["", "-wal", "-shm"]) expect(dir.exists(path.slice(dir.root.length + 1) + suffix)).toBe(false);
    const again = openStore(path);
    expect(again.all()).toEqual([]);
    again.close();
  });
});

// --- hardening (issue 11) --------------------------------------------------------------------

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

describe("state files are private whatever the umask", () => {
  test("under umask 000 a created directory is 0700 and the database, -wal, -shm and lock are 0600", () => {
    const path = dir.path(`perm${seq++}/deeper/state.db`); // two directories to create
    const old = process.umask(0);
    try {
      const store = openStore(path);
      store.save([row("a")]);
      for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}.lock`]) expect(`${p}: ${mode(p)}`).toBe(`${p}: 600`);
      for (const d of [dirname(path), dirname(dirname(path))]) expect(`${d}: ${mode(d)}`).toBe(`${d}: 700`);
      store.close();
    } finally {
      process.umask(old);
    }
  });

  test("an existing directory keeps its mode", () => {
    const path = freshPath();
    dir.mkdir(path.slice(dir.root.length + 1, -"/state.db".length));
    const before = mode(dirname(path));
    openStore(path).close();
    expect(mode(dirname(path))).toBe(before);
  });
});

/** A child process holding the store of `path` open until killed; resolves once it has the lock. */
async function holder(path: string) {
  const store = resolve(import.meta.dir, "../lib/state/store.ts");
  const proc = Bun.spawn([process.execPath, "-e", `import { openStore } from ${JSON.stringify(store)}; openStore(${JSON.stringify(path)}); console.log("locked"); setInterval(() => {}, 1000);`], { stdout: "pipe", stderr: "pipe" });
  const reader = proc.stdout.getReader();
  const { value } = await reader.read();
  expect(new TextDecoder().decode(value)).toContain("locked");
  return proc;
}

describe("one logship per state file", () => {
  test("a second process is refused with the state file and the holder's pid; after kill -9 of the holder it opens", async () => {
    const path = freshPath();
    const child = await holder(path);
    try {
      const err = stateErrorOf(() => openStore(path));
      expect(err.message).toContain(`state file "${path}" is in use by another logship (pid ${child.pid})`);
      // --reset-state is refused too: it would delete the database under the running agent
      expect(await resetStore(path).then(() => "deleted", (e: Error) => e.message)).toContain(`in use by another logship (pid ${child.pid})`);
      expect(existsSync(path)).toBe(true);
    } finally {
      child.kill("SIGKILL");
      await child.exited;
    }
    const store = openStore(path); // the kernel dropped the dead holder's lock
    expect(readFileSync(`${path}.lock`, "utf8").trim()).toBe(String(process.pid));
    store.close();
  });

  test("within one process the lock is shared, and released when the last store closes", async () => {
    const path = freshPath();
    const a = openStore(path);
    const b = openStore(path); // e.g. a test reading the rows beside a running agent
    b.close();
    a.save([row("x")]); // a still works
    const child = Bun.spawn([process.execPath, "-e", `import { openStore } from ${JSON.stringify(resolve(import.meta.dir, "../lib/state/store.ts"))}; openStore(${JSON.stringify(path)});`], { stderr: "pipe" });
    expect(await child.exited).not.toBe(0); // a still holds the lock
    expect(await new Response(child.stderr).text()).toContain("in use by another logship");
    a.close();
    const c = await holder(path); // now free
    c.kill("SIGKILL");
    await c.exited;
  });
});

describe("--reset-state deletes only logship's state", () => {
  test("a log file at state.path is refused, said to be text, and left alone", async () => {
    const path = freshPath();
    const log = "2024-05-01T10:00:00Z GET /index.html 200\\n".repeat(50);
    dir.write(path.slice(dir.root.length + 1), log);
    const err = await resetStore(path).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    const msg = (err as Error).message;
    expect(msg).toContain(`"${path}" (state.path) does not look like a logship state database`);
    expect(msg).toContain("text file of");
    expect(msg).toContain("2024-05-01T10:00:00Z GET");
    expect(msg).toContain("Nothing was deleted");
    expect(readFileSync(path, "utf8")).toBe(log);
  });

  test("a binary file of random bytes, or another program's SQLite database, is refused and kept", async () => {
    const bin = freshPath();
    dir.write(bin.slice(dir.root.length + 1), randomBytes(8192));
    expect(await resetStore(bin).then(() => "deleted", (e: Error) => e.message)).toContain("binary file of 8192 bytes that is not an SQLite database");
    expect(existsSync(bin)).toBe(true);

    const other = freshPath();
    dir.mkdir(other.slice(dir.root.length + 1, -"/state.db".length));
    const db = new Database(other, { create: true });
    db.exec("CREATE TABLE users (id INTEGER, name TEXT)");
    db.close();
    expect(await resetStore(other).then(() => "deleted", (e: Error) => e.message)).toContain(`SQLite database of 8192 bytes without logship's "files" table (tables: users)`);
    const lookalike = freshPath();
    dir.mkdir(lookalike.slice(dir.root.length + 1, -"/state.db".length));
    const db2 = new Database(lookalike, { create: true });
    db2.exec("CREATE TABLE files (name TEXT, size INTEGER)");
    db2.close();
    expect(await resetStore(lookalike).then(() => "deleted", (e: Error) => e.message)).toContain(`"files" table is not logship's (columns: name, size)`);
    expect(existsSync(other) && existsSync(lookalike)).toBe(true);
  });

  test("an empty file, a missing one and a logship database (with its WAL) are reset", async () => {
    const empty = freshPath();
    dir.write(empty.slice(dir.root.length + 1), "");
    await resetStore(empty);
    expect(existsSync(empty)).toBe(false);
    await resetStore(freshPath()); // nothing there: nothing to do

    const path = freshPath();
    const store = openStore(path);
    store.save([row("a")]);
    store.remove(["zzz"]);
    // what a kill -9 leaves: the database with its -wal and -shm
    for (const s of ["", "-wal", "-shm"]) writeFileSync(`${path}.copy${s}`, readFileSync(`${path}${s}`));
    store.close();
    for (const s of ["", "-wal", "-shm"]) renameSync(`${path}.copy${s}`, `${path}${s}`);
    await resetStore(path);
    for (const s of ["", "-wal", "-shm"]) expect(existsSync(`${path}${s}`)).toBe(false);
    const again = openStore(path); // takes over the lock reset held
    expect(again.all()).toEqual([]);
    again.close();
  });
});

describe("the database deleted while logship runs", () => {
  for (const how of ["the database alone", "the database, -wal and -shm", "the whole directory"]) {
    test(`deleting ${how}: noticed at the next save, created again (0600), and all rows written`, () => {
      const path = freshPath();
      const store = openStore(path);
      const cp = new Checkpoint();
      for (const id of ["a", "b", "c"]) cp.register(row(id, { offset: 0 }));
      cp.flush(store);
      expect(store.reopenIfReplaced()).toBe(false);
      if (how === "the whole directory") dir.remove(dirname(path).slice(dir.root.length + 1));
      else for (const s of how === "the database alone" ? [""] : ["", "-wal", "-shm"]) unlinkSync(`${path}${s}`);
      const old = process.umask(0);
      try {
        expect(store.reopenIfReplaced()).toBe(true);
      } finally {
        process.umask(old);
      }
      cp.dirtyAll(); // what the agent does when the store was created again
      expect(cp.flush(store)).toBe(3);
      expect(store.reopenIfReplaced()).toBe(false);
      expect(mode(path)).toBe("600");
      const db = new Database(path, { readonly: true });
      expect((db.query("SELECT id FROM files ORDER BY id").all() as { id: string }[]).map((r) => r.id)).toEqual(["a", "b", "c"]);
      db.close();
      expect(existsSync(`${path}.lock`)).toBe(true); // the lock was taken again
      store.close();
    });
  }

  test("a file moved over the database is noticed too, and written to if it is a logship database", () => {
    const path = freshPath();
    const store = openStore(path);
    store.save([row("a", { offset: 5 })]);
    const backup = dir.path(`backup${seq++}.db`);
    const b = new Database(backup, { create: true });
    b.close();
    renameSync(backup, path); // an empty file: a new database to SQLite
    expect(store.reopenIfReplaced()).toBe(true);
    store.save([row("a", { offset: 9 })]);
    expect(store.all()).toEqual([row("a", { offset: 9 })]);
    store.close();
  });

  test("a closed store is not reopened", () => {
    const path = freshPath();
    const store = openStore(path);
    store.close();
    unlinkSync(path);
    expect(store.reopenIfReplaced()).toBe(false);
    expect(existsSync(path)).toBe(false);
  });
});

describe("a state path that is not a regular file (issue 11, item 15)", () => {
  test("openStore, readSaved and resetStore refuse a FIFO, a directory and a FIFO companion with a StateError, without opening them", async () => {
    const { readSaved } = await import("../lib/state/store.ts");
    const { checkStatePath } = await import("../lib/state/place.ts");
    const dir = makeLogDir("statekind");
    try {
      const fifo = dir.path("fifo.db");
      expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
      const asDir = dir.mkdir("dir.db");
      const withWal = dir.path("wal.db");
      expect(Bun.spawnSync(["mkfifo", `${withWal}-wal`]).exitCode).toBe(0);
      for (const [p, what] of [[fifo, "a FIFO"], [asDir, "a directory"], [withWal, "a FIFO"]] as const) {
        expect(() => checkStatePath(p)).toThrow(what);
        expect(() => openStore(p)).toThrow(StateError);
        expect(() => readSaved(p)).toThrow(StateError);
        await expect(resetStore(p)).rejects.toThrow(StateError);
      }
      expect(() => checkStatePath(dir.path("absent.db"))).not.toThrow();
      expect(() => checkStatePath(dir.path("no/such/dir/state.db"))).not.toThrow();
    } finally {
      dir.cleanup();
    }
  });
});
