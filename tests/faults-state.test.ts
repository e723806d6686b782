// Faults: the state database. On a full disk the saved offsets stop advancing, the agent says
// why, and they catch up once space returns, with nothing lost. A state file that is not a
// logship database, or whose pages are damaged, makes the agent refuse to start (exit 1)
// with a message naming --reset-state, instead of silently reading every file again.
//
// The full disk is a 256 KiB tmpfs mounted under the workspace (needs root). Without the
// right to mount, the binary runs under a soft file-size limit instead (SIGXFSZ ignored, so
// SQLite's writes fail) that prlimit lifts again; the test says which one it used.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { consumeAll, listTopics } from "./helpers/consume.ts";
import { eventually } from "./helpers/eventually.ts";
import { AgentProcess } from "./helpers/agentProcess.ts";
import { appendLines, fields, mkdir, removeWorkspace, savedOffsets, shortfall, verifyDelivery, workspace, writeConfig } from "./helpers/faults.ts";
import { startMockCluster, type MockCluster } from "./helpers/mockCluster.ts";

let cluster: MockCluster;
const dirs: string[] = [];
const mounts: string[] = [];

beforeAll(() => {
  cluster = startMockCluster({ brokers: 1 });
});
afterAll(() => {
  cluster.close();
  for (const m of mounts) Bun.spawnSync(["umount", m]);
  for (const d of dirs) removeWorkspace(d);
});

function scratch(name: string): string {
  const d = workspace(name);
  dirs.push(d);
  return d;
}

/** A place for the state file whose disk can be filled and freed while the agent runs. */
interface SmallDisk {
  how: string;
  dir: string;
  start(config: string): AgentProcess;
  fill(run: AgentProcess): void;
  free(run: AgentProcess): void;
}

function smallDisk(dir: string): SmallDisk {
  const tmpfs = mkdir(join(dir, "state"));
  const mounted = !process.env.FAULTS_NO_MOUNT && Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", tmpfs]).exitCode === 0;
  if (mounted) {
    mounts.push(tmpfs);
    const filler = join(tmpfs, "filler");
    return {
      how: "256 KiB tmpfs",
      dir: tmpfs,
      start: (config) => AgentProcess.run(config),
      fill() {
        const fd = openSync(filler, "w");
        const block = Buffer.alloc(4096, 0x61);
        try {
          for (;;) writeSync(fd, block);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
        } finally {
          closeSync(fd);
        }
      },
      free: () => unlinkSync(filler),
    };
  }
  // No mount allowed: the state file may not grow past 64 KiB until prlimit lifts the limit.
  return {
    how: "file-size limit (ulimit -S -f 64, SIGXFSZ ignored; tmpfs mount not permitted or FAULTS_NO_MOUNT set)",
    dir: tmpfs,
    start: (config) => AgentProcess.start(["run", "--config", config], { wrap: ["bash", "-c", 'trap "" XFSZ; ulimit -S -f 64; exec "$0" "$@"'] }),
    fill() {},
    free(run) {
      const r = Bun.spawnSync(["prlimit", "--pid", String(run.pid), "--fsize=unlimited:"]);
      if (r.exitCode !== 0) throw new Error(`prlimit failed: ${r.stderr.toString()}`);
    },
  };
}

describe("state database on a full disk", () => {
  test(
    "saved offsets stop advancing, the agent says why, and they catch up when space returns; nothing is lost",
    async () => {
      const dir = scratch("fulldisk");
      const logs = mkdir(join(dir, "logs"));
      const disk = smallDisk(dir);
      const state = join(disk.dir, "state.db");
      const config = writeConfig(join(dir, "logship.yaml"), { inputs: [{ paths: [join(logs, "*.log")] }], brokers: cluster.bootstraps, topic: "fulldisk", state });
      const path = join(logs, "a.log");
      const written = { a: appendLines(path, "a", 0, 100) };
      const run = disk.start(config);
      try {
        await eventually(() => savedOffsets(state).get(path) === statSync(path).size, { timeoutMs: 15_000 });
        disk.fill(run);
        const before = savedOffsets(state).get(path);
        const from = run.lines.length;
        // Enough acknowledged offsets to need new space (the limit mode needs the WAL to grow).
        for (let i = 0; i < 8 && run.count(/ERROR cannot save offsets/, from) === 0; i++) {
          written.a = appendLines(path, "a", written.a, 3000);
          await eventually(() => run.count(/ INFO stats /, from) > i, { timeoutMs: 5_000 });
        }
        const why = fields(await run.waitForLine(/ERROR cannot save offsets/, { after: from, timeoutMs: 10_000 }));
        expect(why.reason).toMatch(/full|disk I\/O error/);
        const stuck = savedOffsets(state).get(path);
        expect(stuck).toBeLessThan(statSync(path).size);
        if (disk.how.includes("tmpfs")) expect(stuck).toBe(before);
        written.a = appendLines(path, "a", written.a, 100);
        await eventually(() => run.count(/ INFO stats /, from) >= 3, { timeoutMs: 5_000 }); // flushes keep failing
        expect(savedOffsets(state).get(path)).toBe(stuck);
        console.log(`[faults] full disk (${disk.how}): ${run.count(/ERROR cannot save offsets/, from)} "cannot save offsets" lines while full`);

        disk.free(run);
        await eventually(() => savedOffsets(state).get(path) === statSync(path).size, { timeoutMs: 10_000, message: "offsets catch up once space returns" });
        run.signal("SIGTERM");
        expect(await run.waitForExit()).toBe(0);
      } finally {
        await run.kill();
      }
      const d = verifyDelivery(await consumeAll(cluster.bootstraps, "fulldisk"));
      expect(d.errors).toEqual([]);
      expect(shortfall(d, written)).toEqual([]);
    },
    60_000,
  );
});

describe("a corrupt state file", () => {
  function setup(name: string) {
    const dir = scratch(name);
    const logs = mkdir(join(dir, "logs"));
    const state = join(dir, "state.db");
    const config = writeConfig(join(dir, "logship.yaml"), { inputs: [{ paths: [join(logs, "*.log")] }], brokers: cluster.bootstraps, topic: name, state });
    const written = { c: appendLines(join(logs, "c.log"), "c", 0, 500) };
    return { dir, logs, state, config, written };
  }

  /** Exit 1, one line naming the file and --reset-state, no stack trace. */
  async function refusesToStart(config: string, state: string): Promise<string> {
    const run = AgentProcess.run(config);
    expect(await run.waitForExit()).toBe(1);
    const text = run.lines.join("\n");
    expect(text).toContain(state);
    expect(text).toContain("--reset-state");
    expect(text).not.toMatch(/^\s+at /m);
    expect(run.count(/ file added /)).toBe(0);
    return text;
  }

  test(
    "a file that is not a database: refuses to start with exit 1 and names --reset-state",
    async () => {
      const s = setup("notadb");
      writeFileSync(s.state, "this is not an SQLite database\n".repeat(200));
      const text = await refusesToStart(s.config, s.state);
      console.log(`[faults] not a database: ${text.split("\n").at(-1)}`);
      expect(await listTopics(cluster.bootstraps)).not.toContain("notadb"); // nothing was shipped
    },
    30_000,
  );

  test(
    "damaged pages: refuses to start (never re-reads silently); --reset-state then ships everything again",
    async () => {
      const s = setup("badpages");
      const first = AgentProcess.run(s.config, "--once");
      expect(await first.waitForExit()).toBe(0);
      const shipped = (await consumeAll(cluster.bootstraps, "badpages")).length;
      expect(shipped).toBeGreaterThan(0);

      // Overwrite every page after the header page: the schema survives, the table does not.
      const bytes = readFileSync(s.state);
      expect(bytes.length).toBeGreaterThan(4096);
      for (let i = 4096; i < bytes.length; i++) bytes[i] = (i * 131) & 0xff;
      writeFileSync(s.state, bytes);
      await refusesToStart(s.config, s.state);
      expect((await consumeAll(cluster.bootstraps, "badpages")).length).toBe(shipped);

      const reset = AgentProcess.run(s.config, "--once", "--reset-state");
      expect(await reset.waitForExit()).toBe(0);
      const d = verifyDelivery(await consumeAll(cluster.bootstraps, "badpages"));
      expect(d.errors).toEqual([]);
      expect(shortfall(d, s.written)).toEqual([]);
      expect(d.duplicates).toBe(s.written.c); // read again from 0, as the message warned
    },
    30_000,
  );
});

// --- hardening (issue 11): permissions, one agent per state file, a safe reset, a deleted database

describe("state hardening (compiled binary)", () => {
  function setup(name: string, state?: string) {
    const dir = scratch(name);
    const logs = mkdir(join(dir, "logs"));
    const statePath = state ?? join(dir, "state", "sub", "state.db"); // directories logship creates
    const config = writeConfig(join(dir, "logship.yaml"), { inputs: [{ paths: [join(logs, "*.log")] }], brokers: cluster.bootstraps, topic: name, state: statePath });
    const path = join(logs, "a.log");
    const written = { a: appendLines(path, "a", 0, 200) };
    return { dir, logs, state: statePath, config, path, written };
  }
  const mode = (p: string) => `${p} ${(statSync(p).mode & 0o777).toString(8)}`;

  test(
    "under umask 000 the state directory is 0700 and the database, -wal, -shm and lock 0600",
    async () => {
      const s = setup("umask");
      const run = AgentProcess.start(["run", "--config", s.config], { wrap: ["sh", "-c", 'umask 000; exec "$0" "$@"'] });
      try {
        await eventually(() => savedOffsets(s.state).get(s.path) === statSync(s.path).size, { timeoutMs: 15_000 });
        for (const p of [s.state, `${s.state}-wal`, `${s.state}-shm`, `${s.state}.lock`]) expect(mode(p)).toBe(`${p} 600`);
        for (const d of [join(s.dir, "state"), join(s.dir, "state", "sub")]) expect(mode(d)).toBe(`${d} 700`);
        run.signal("SIGTERM");
        expect(await run.waitForExit()).toBe(0);
      } finally {
        await run.kill();
      }
    },
    30_000,
  );

  test(
    "a second logship on the same state file exits 1 naming the file and the first one's pid; after kill -9 of the first a new one starts",
    async () => {
      const s = setup("twice");
      const first = AgentProcess.run(s.config);
      let third: AgentProcess | undefined;
      try {
        await first.waitForLine(/ INFO logship started /, { timeoutMs: 15_000 });
        const second = AgentProcess.run(s.config);
        expect(await second.waitForExit()).toBe(1);
        const last = second.lines.at(-1) ?? "";
        expect(last).toStartWith("logship: state: ");
        expect(last).toContain(`state file "${s.state}" is in use by another logship (pid ${first.pid})`);
        expect(second.stderr).not.toMatch(/^\s+at /m);
        expect(second.count(/ file added /)).toBe(0);
        console.log(`[faults] second agent: ${last}`);

        first.signal("SIGKILL");
        expect(await first.waitForExit()).toBe(137);
        third = AgentProcess.run(s.config);
        await third.waitForLine(/ INFO logship started /, { timeoutMs: 15_000 });
        await eventually(() => savedOffsets(s.state).get(s.path) === statSync(s.path).size, { timeoutMs: 15_000 });
        third.signal("SIGTERM");
        expect(await third.waitForExit()).toBe(0);
      } finally {
        await first.kill();
        await third?.kill();
      }
      const d = verifyDelivery(await consumeAll(cluster.bootstraps, "twice"));
      expect(d.errors).toEqual([]);
      expect(shortfall(d, s.written)).toEqual([]);
    },
    45_000,
  );

  test(
    "--reset-state with state.path pointing at a log file: exit 1, the log is kept, nothing shipped",
    async () => {
      const dir = scratch("resetlog");
      const logs = mkdir(join(dir, "logs"));
      const log = join(logs, "app.log");
      appendLines(log, "x", 0, 50);
      const before = readFileSync(log);
      const config = writeConfig(join(dir, "logship.yaml"), { inputs: [{ paths: [join(logs, "*.txt")] }], brokers: cluster.bootstraps, topic: "resetlog", state: log });
      const run = AgentProcess.run(config, "--once", "--reset-state");
      expect(await run.waitForExit()).toBe(1);
      const last = run.lines.at(-1) ?? "";
      expect(last).toStartWith(`logship: state: --reset-state refused: "${log}" (state.path) does not look like a logship state database: it is a text file of ${before.length} bytes`);
      expect(last).toContain("Nothing was deleted");
      expect(run.stderr).not.toMatch(/^\s+at /m);
      expect(readFileSync(log).equals(before)).toBe(true);
      expect(await listTopics(cluster.bootstraps)).not.toContain("resetlog");
    },
    30_000,
  );

  test(
    "the database deleted while logship runs: an ERROR, a new database with every offset, and no duplicates after a restart",
    async () => {
      const s = setup("deleted");
      const other = join(s.logs, "b.log"); // unchanged after the deletion: only a full rewrite saves it
      const written = { ...s.written, b: appendLines(other, "b", 0, 100) };
      const run = AgentProcess.run(s.config);
      try {
        await eventually(() => savedOffsets(s.state).get(s.path) === statSync(s.path).size && savedOffsets(s.state).get(other) === statSync(other).size, { timeoutMs: 15_000 });
        const from = run.lines.length;
        unlinkSync(s.state);
        written.a = appendLines(s.path, "a", written.a, 100);
        const line = await run.waitForLine(/ERROR state file was deleted or replaced/, { after: from, timeoutMs: 10_000 });
        expect(fields(line)).toMatchObject({ path: s.state, files: "2" });
        await eventually(() => savedOffsets(s.state).get(s.path) === statSync(s.path).size, { timeoutMs: 10_000 });
        expect(savedOffsets(s.state).get(other)).toBe(statSync(other).size);
        expect(mode(s.state)).toBe(`${s.state} 600`);
        run.signal("SIGTERM");
        expect(await run.waitForExit()).toBe(0);
      } finally {
        await run.kill();
      }
      const again = AgentProcess.run(s.config, "--once");
      expect(await again.waitForExit()).toBe(0);
      const d = verifyDelivery(await consumeAll(cluster.bootstraps, "deleted"));
      expect(d.errors).toEqual([]);
      expect(shortfall(d, written)).toEqual([]);
      expect(d.duplicates).toBe(0);
    },
    45_000,
  );
});
