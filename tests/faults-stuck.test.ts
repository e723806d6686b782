// A stuck state disk (issue 11, item 14): the state file on a loop-mounted ext4 image that is
// frozen (fsfreeze) while the agent runs. The agent must go on answering signals: it says the
// disk is not answering, pauses reading, and a SIGTERM ends it within shutdown_timeout (the
// offsets acknowledged since the last save are re-sent by the next start). Needs root (mount -o
// loop, fsfreeze); skipped otherwise, saying so. The image is always thawed and unmounted.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { consumeAll } from "./helpers/consume.ts";
import { eventually } from "./helpers/eventually.ts";
import { AgentProcess } from "./helpers/agentProcess.ts";
import { appendLines, mkdir, removeWorkspace, savedOffsets, shortfall, verifyDelivery, workspace, writeConfig } from "./helpers/faults.ts";
import { startMockCluster, type MockCluster } from "./helpers/mockCluster.ts";

let cluster: MockCluster;
const dirs: string[] = [];
let mounted: string | null = null;
let frozen = false;

beforeAll(() => {
  cluster = startMockCluster({ brokers: 1 });
});
afterAll(() => {
  if (mounted && frozen) Bun.spawnSync(["fsfreeze", "-u", mounted]);
  if (mounted) Bun.spawnSync(["umount", mounted]);
  cluster.close();
  for (const d of dirs) removeWorkspace(d);
});

/** A small ext4 image mounted at DIR/state; null (with the reason logged) when that is not permitted. */
function loopDisk(dir: string): string | null {
  const image = join(dir, "state.img");
  const mnt = mkdir(join(dir, "state"));
  const steps = [
    ["dd", "if=/dev/zero", `of=${image}`, "bs=1M", "count=16", "status=none"],
    ["mkfs.ext4", "-q", image],
    ["mount", "-o", "loop", image, mnt],
  ];
  for (const cmd of steps) {
    const r = Bun.spawnSync(cmd, { stderr: "pipe" });
    if (r.exitCode !== 0) {
      console.log(`[faults] stuck disk: skipped, "${cmd.join(" ")}" failed: ${r.stderr.toString().trim()}`);
      return null;
    }
  }
  mounted = mnt;
  return mnt;
}

function freeze(on: boolean): void {
  const r = Bun.spawnSync(["fsfreeze", on ? "-f" : "-u", mounted!], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`fsfreeze ${on ? "-f" : "-u"}: ${r.stderr.toString()}`);
  frozen = on;
}

test(
  "a frozen state disk: the agent says so, pauses reading, and SIGTERM ends it within shutdown_timeout; after thawing nothing is lost",
  async () => {
    const dir = workspace("stuck");
    dirs.push(dir);
    const disk = process.getuid?.() === 0 ? loopDisk(dir) : null;
    if (!disk) {
      if (process.getuid?.() !== 0) console.log("[faults] stuck disk: skipped (needs root for mount -o loop and fsfreeze)");
      return;
    }
    const logs = mkdir(join(dir, "logs"));
    const state = join(disk, "state.db");
    const config = writeConfig(join(dir, "logship.yaml"), { inputs: [{ paths: [join(logs, "*.log")] }], brokers: cluster.bootstraps, topic: "stuck", state, top: { shutdown_timeout: "2s" } });
    const path = join(logs, "a.log");
    let written = appendLines(path, "a", 0, 100);
    const run = AgentProcess.run(config);
    try {
      await eventually(() => savedOffsets(state).get(path) === statSync(path).size, { timeoutMs: 15_000 });
      const saved = statSync(path).size;
      freeze(true);
      const from = run.lines.length;
      written = appendLines(path, "a", written, 100);
      const why = await run.waitForLine(/ERROR cannot save offsets/, { after: from, timeoutMs: 15_000 });
      expect(why).toContain("state disk not answering");
      // Reading paused: more lines are not read while the disk is stuck.
      const stalled = run.count(/ INFO stats /, from);
      written = appendLines(path, "a", written, 100);
      await eventually(() => run.count(/ INFO stats /, from) >= stalled + 3, { timeoutMs: 10_000 });
      const t0 = Date.now();
      run.signal("SIGTERM");
      const code = await run.waitForExit(2_000 + 3_000);
      const took = Date.now() - t0;
      console.log(`[faults] stuck disk: exited ${code} ${took} ms after SIGTERM (shutdown_timeout 2 s)`);
      expect(code).toBe(0);
      expect(took).toBeLessThan(2_000 + 3_000);
      expect(run.count(/ logship stopped/, from)).toBe(1);
      freeze(false);
      expect(savedOffsets(state).get(path)).toBe(saved); // nothing was written while frozen
      // The next start sends the rest (at least once) and saves the end.
      const again = AgentProcess.run(config);
      try {
        await eventually(() => savedOffsets(state).get(path) === statSync(path).size, { timeoutMs: 15_000, message: "the next start catches up" });
        again.signal("SIGTERM");
        expect(await again.waitForExit()).toBe(0);
      } finally {
        await again.kill();
      }
    } finally {
      if (frozen) freeze(false);
      await run.kill();
    }
    const d = verifyDelivery(await consumeAll(cluster.bootstraps, "stuck"));
    expect(d.errors).toEqual([]);
    expect(shortfall(d, { a: written })).toEqual([]);
  },
  90_000,
);
