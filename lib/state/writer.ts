// Who writes the offsets (issue 11, item 14). A stuck state file system (fsfreeze, a hung NFS
// server) blocks the thread that writes in uninterruptible sleep, and a process does not end
// while any of its threads is in one: not on a signal, not on exit(). So the agent's writes go
// to a child process (ChildWriter) that owns the database connection; the agent posts a batch
// and is answered ok, replaced or an error, and never waits on the disk itself. If the disk
// does not answer, the agent still handles signals, logs, and exits on time; the child is
// killed and ends when the disk comes back (a SIGKILL pending in the kernel: it writes nothing
// more). The rows are read at start in the agent's own process (Store.all), under the lock the
// agent keeps; the child opens the database without it.
// The child is this same program: the compiled binary, or bun on writer-child.ts, started with
// LOGSHIP_STATE_WRITER=<state path> in its environment (main.ts hands over at once).
// InlineWriter writes in the calling thread: for tests that hand the agent a Store.

import { fileURLToPath } from "node:url";
import type { Subprocess } from "bun";
import { errorText, StateError } from "../errors.ts";
import type { SaveBatch } from "./checkpoint.ts";
import type { StateLock } from "./lock.ts";
import { openStore, type SavedFile, type Store } from "./store.ts";

export const WRITER_ENV = "LOGSHIP_STATE_WRITER";

export interface WriteResult {
  /** The database had been deleted or replaced; it was created again and nothing was written: write every row. */
  replaced: boolean;
}

export interface StateWriter {
  readonly path: string;
  /** Writes the batch in one transaction. Rejects with the reason when it could not be written. */
  write(batch: SaveBatch): Promise<WriteResult>;
  /** Closes the database, waiting at most `waitMs` for it; then lets go of it whatever happens. */
  close(waitMs: number): Promise<void>;
}

/** Writes in the calling thread (tests pass a Store; the agent then blocks on its disk as before). */
export class InlineWriter implements StateWriter {
  constructor(private readonly store: Store) {}

  get path(): string {
    return this.store.path;
  }

  async write(batch: SaveBatch): Promise<WriteResult> {
    return { replaced: this.store.write(batch) };
  }

  async close(): Promise<void> {
    this.store.close();
  }
}

/**
 * The saved rows and the writer of the state at `path`. The rows are read here, at start; the
 * writes go to a child process that opens the database (the lock stays with this one). Tests
 * pass a `store` (read and written in this thread) and may pass their own `writer`.
 */
export async function openState(path: string, given: { store?: Store; writer?: StateWriter } = {}): Promise<{ saved: SavedFile[]; writer: StateWriter; warning?: string }> {
  if (given.store) return { saved: given.store.all(), writer: given.writer ?? new InlineWriter(given.store) };
  const store = openStore(path);
  let lock: StateLock;
  let saved: SavedFile[];
  try {
    saved = store.all();
  } finally {
    lock = store.detach();
  }
  try {
    return { saved, writer: await ChildWriter.start(path, lock) };
  } catch (err) {
    lock.release();
    // No writer process here (a platform that cannot start this binary again, e.g. under
    // qemu user emulation without binfmt): write in this thread, as before, and say so.
    const inline = new InlineWriter(openStore(path));
    return { saved, writer: inline, warning: `the state writer process could not start (${(err as Error).message}); offsets are written by the agent itself, so a stuck state disk would block it` };
  }
}

type Answer = { type: "ready" } | { type: "failed"; message: string } | { type: "done"; id: number; replaced: boolean } | { type: "error"; id: number; message: string };

/** The writes go to a child process (see the top of this file). One that ended (killed, crashed) is started again at the next write. */
export class ChildWriter implements StateWriter {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: WriteResult) => void; reject: (err: Error) => void }>();
  private ended: string | null = null;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly lock: StateLock,
    private child: Subprocess,
  ) {}

  /** Starts the child and waits until it has opened the database. `lock` (held by the caller) is released by close(). */
  static async start(path: string, lock: StateLock): Promise<ChildWriter> {
    let writer: ChildWriter | null = null;
    const child = await spawnWriter(path, (a) => writer?.answer(a), (proc, why) => writer?.gone(proc, why));
    writer = new ChildWriter(path, lock, child);
    return writer;
  }

  async write(batch: SaveBatch): Promise<WriteResult> {
    if (this.closed) throw new Error("the state store is closed");
    if (this.ended !== null) {
      // Started again; if that fails, the write fails (and is retried at the next flush).
      this.child = await spawnWriter(this.path, (a) => this.answer(a), (proc, why) => this.gone(proc, why));
      this.ended = null;
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ type: "write", id, rows: batch.rows, removed: batch.removed });
    });
  }

  private answer(a: Answer): void {
    if (a.type !== "done" && a.type !== "error") return;
    const w = this.waiting.get(a.id);
    if (!w) return;
    this.waiting.delete(a.id);
    if (a.type === "error") return w.reject(new StateError(a.message));
    if (a.replaced) {
      try {
        this.lock.renew(); // the lock file may have gone with the database (rm -r of the directory)
      } catch (err) {
        return w.reject(new StateError(errorText(err)));
      }
    }
    w.resolve({ replaced: a.replaced });
  }

  private gone(proc: Subprocess, why: string): void {
    if (proc !== this.child) return; // an earlier one
    this.ended = why;
    for (const w of this.waiting.values()) w.reject(new StateError(why));
    this.waiting.clear();
  }

  async close(waitMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ended === null) {
      try {
        this.child.send({ type: "close" });
      } catch {
        // already gone
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([this.child.exited, new Promise((r) => (timer = setTimeout(r, Math.max(0, waitMs))))]);
      clearTimeout(timer);
      // Not answering (its disk is stuck): killed; the kernel ends it when the disk returns.
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
      this.child.unref();
    }
    this.lock.release();
  }
}

/** Starts a writer process on `path` and waits until it has opened the database (rejects with why it could not). */
async function spawnWriter(path: string, answer: (a: Answer) => void, gone: (proc: Subprocess, why: string) => void): Promise<Subprocess> {
  let ready!: () => void;
  let failed!: (err: Error) => void;
  const opened = new Promise<void>((res, rej) => ((ready = res), (failed = rej)));
  const child: Subprocess = Bun.spawn(writerCommand(), {
    env: { ...process.env, [WRITER_ENV]: path },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore", // a stuck child would hold the agent's stderr open after the agent exited; it answers over IPC
    serialization: "json",
    ipc(message: Answer) {
      if (message.type === "ready") ready();
      else if (message.type === "failed") failed(new StateError(message.message));
      else answer(message);
    },
    onExit(proc, code, signal) {
      const why = `the state writer process ended (${signal ?? `exit ${code}`})`;
      failed(new StateError(why));
      gone(proc, why);
    },
  });
  try {
    await opened;
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return child;
}

/** How to start this program as the writer: the compiled binary itself, or bun on writer-child.ts. */
function writerCommand(): string[] {
  if (import.meta.path.startsWith("/$bunfs/") || import.meta.path.startsWith("B:\\~BUN")) return [process.execPath];
  return [process.execPath, fileURLToPath(new URL("./writer-child.ts", import.meta.url))];
}
