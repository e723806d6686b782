// A temporary log directory for tests, with the file verbs a log writer and a rotator use:
// append, write, rename, truncate, remove. Names are relative to the directory (sub-dirs
// are created as needed); path(name) gives the absolute path to put in a config or a glob.
// Everything is synchronous, so a test's file operations happen exactly where it says.
//
//   const dir = makeLogDir();            // or makeLogDir("rotation")
//   dir.append("app.log", "one\n");      // creates the file (and sub-dirs) if missing
//   dir.rename("app.log", "app.log.1");  // keeps the inode, like logrotate without copytruncate
//   dir.truncate("app.log");             // copytruncate: same inode, size 0
//   afterEach(() => dir.cleanup());

import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync, type Stats } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export class LogDir {
  constructor(readonly root: string) {}

  /** Absolute path of `name` inside the directory. */
  path(name = ""): string {
    return join(this.root, name);
  }

  /** Appends bytes (a string is written as UTF-8); creates the file and its directory if missing. */
  append(name: string, data: string | Uint8Array): void {
    this.ensureParent(name);
    appendFileSync(this.path(name), data);
  }

  /** Replaces the file's content in place (same inode when it exists). */
  write(name: string, data: string | Uint8Array): void {
    this.ensureParent(name);
    writeFileSync(this.path(name), data);
  }

  /** Renames within the directory (the inode moves with it). */
  rename(from: string, to: string): void {
    this.ensureParent(to);
    renameSync(this.path(from), this.path(to));
  }

  /** Cuts the file to `size` bytes (default 0), keeping its inode. */
  truncate(name: string, size = 0): void {
    truncateSync(this.path(name), size);
  }

  /** Deletes a file or a sub-directory; missing is fine. */
  remove(name: string): void {
    rmSync(this.path(name), { force: true, recursive: true });
  }

  /** Creates a sub-directory (and its parents). */
  mkdir(name: string): string {
    mkdirSync(this.path(name), { recursive: true });
    return this.path(name);
  }

  /** Current size in bytes. */
  size(name: string): number {
    return statSync(this.path(name)).size;
  }

  read(name: string): Buffer {
    return readFileSync(this.path(name));
  }

  stat(name: string): Stats {
    return statSync(this.path(name));
  }

  exists(name: string): boolean {
    try {
      statSync(this.path(name));
      return true;
    } catch {
      return false;
    }
  }

  /** Removes the whole directory. */
  cleanup(): void {
    rmSync(this.root, { force: true, recursive: true });
  }

  private ensureParent(name: string): void {
    mkdirSync(dirname(this.path(name)), { recursive: true });
  }
}

/** Makes a fresh, empty directory under the system temp dir. */
export function makeLogDir(prefix = "logdir"): LogDir {
  return new LogDir(mkdtempSync(join(tmpdir(), `logship-${prefix}-`)));
}
