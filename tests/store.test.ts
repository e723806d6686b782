// store.ts: the offsets database — versioned schema, WAL with synchronous=FULL, all-or-none
// writes, expiry of gone files, and a damaged file refused with advice on recovering.
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { StateError } from "../lib/errors.ts";
import { openStore, resetStore, type SavedFile } from "../lib/state/store.ts";
import { makeLogDir } from "./helpers/logDir.ts";

const dir = makeLogDir("store");
afterAll(() => dir.cleanup());

let seq = 0;
const freshPath = () => dir.path(`s${seq++}/state.db`);

function row(id: string, over: Partial<SavedFile> = {}): SavedFile {
  return { id, dev: 2049, ino: 5_000_000_000, fingerprint: "0123456789abcdef0123456789abcdef", fpLen: 1024, path: `/var/log/${id}.log`, offset: 2 ** 40, seenAt: 1_700_000_000_123, goneSince: null, ...over };
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
    expect(db.query("PRAGMA user_version").get()).toEqual({ user_version: 1 });
    expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" }); // persistent in the file
    const columns = (db.query("PRAGMA table_info(files)").all() as { name: string }[]).map((c) => c.name);
    expect(columns).toEqual(["id", "dev", "ino", "fingerprint", "fp_len", "path", "offset", "seen_at", "gone_since"]);
    db.close();
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
    expect(err.message).toContain("newer logship (schema 99, this one knows 1)");
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
    dir.write(path.slice(dir.root.length + 1), randomBytes(4096)); // damaged meanwhile
    await resetStore(path);
    for (const suffix of ["", "-wal", "-shm"]) expect(dir.exists(path.slice(dir.root.length + 1) + suffix)).toBe(false);
    const again = openStore(path);
    expect(again.all()).toEqual([]);
    again.close();
  });
});
