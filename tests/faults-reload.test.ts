// Faults: SIGHUP config reloads while the files grow. Adding an input starts following its
// files; removing one stops reading them but keeps their saved offsets, so adding it back
// resumes where it stopped; a broken config is rejected with a located message and the
// running one is kept.

import { beforeAll, expect, test } from "bun:test";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { consumeAll } from "./helpers/consume.ts";
import { eventually } from "./helpers/eventually.ts";
import { AgentProcess } from "./helpers/agentProcess.ts";
import { appendLines, fields, mkdir, savedOffsets, shortfall, useCluster, verifyDelivery, writeConfig } from "./helpers/faults.ts";

const mock = useCluster();
let dir: string;

beforeAll(() => {
  dir = mock.scratch("reload");
});

test(
  "SIGHUP under load: an added input starts, a removed one stops but keeps its offsets, a broken config is rejected and the old one kept",
  async () => {
    const dirA = mkdir(join(dir, "a"));
    const dirB = mkdir(join(dir, "b"));
    const state = join(dir, "state.db");
    const file = join(dir, "logship.yaml");
    mock.cluster.createTopic("reload", 2);
    const configure = (inputs: string[]) => writeConfig(file, { inputs: inputs.map((d) => ({ paths: [join(d, "*.log")] })), brokers: mock.cluster.bootstraps, topic: "reload", state });
    const a = join(dirA, "a.log");
    const b = join(dirB, "b.log");
    const written = { a: appendLines(a, "a", 0, 200), b: appendLines(b, "b", 0, 200) };
    const writer = setInterval(() => {
      written.a = appendLines(a, "a", written.a, 50);
      written.b = appendLines(b, "b", written.b, 50);
    }, 10);
    const offset = (p: string) => savedOffsets(state).get(p) ?? 0;
    /** Resolves once `p` has been acknowledged past its current size: it is being followed. */
    const catchesUp = (p: string) => {
      const size = statSync(p).size;
      return eventually(() => offset(p) >= size, { timeoutMs: 10_000, message: `${p} acknowledged past ${size}` });
    };

    configure([dirA]);
    const run = AgentProcess.run(file);
    try {
      await catchesUp(a);
      expect(run.count(/ file added .*b\.log/)).toBe(0);

      // Add input B.
      let from = run.lines.length;
      configure([dirA, dirB]);
      run.signal("SIGHUP");
      await run.waitForLine(/ config reloaded /, { after: from });
      expect(fields(await run.waitForLine(/ file added .*b\.log/, { after: from }))).toMatchObject({ path: b, offset: "0", reason: "new" });
      await catchesUp(b);
      await catchesUp(a);

      // Remove input A: its reading stops, its offset stays saved.
      from = run.lines.length;
      configure([dirB]);
      run.signal("SIGHUP");
      await run.waitForLine(/ config reloaded /, { after: from });
      await catchesUp(b); // whatever of A was queued is acknowledged by now
      const stopped = offset(a);
      await eventually(() => statSync(a).size > stopped, { message: "A grows on (the writer goes on)" });
      await catchesUp(b); // B's lines written after A grew are acknowledged: logship is reading
      await catchesUp(b);
      expect(offset(a)).toBe(stopped); // A grew, unread
      expect(savedOffsets(state).has(a)).toBe(true);

      // A broken config: rejected, located, and the running config goes on.
      from = run.lines.length;
      writeFileSync(file, `inputs:\n  - paths: [${JSON.stringify(join(dirB, "*.log"))}]\nkafka:\n  brokers: [oops\n`);
      run.signal("SIGHUP");
      const rejected = fields(await run.waitForLine(/ERROR new config rejected; keeping the old one/, { after: from }));
      expect(rejected.reason).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+: `));
      await catchesUp(b);
      expect(offset(a)).toBe(stopped);
      expect(run.running).toBe(true);

      // Add A back: it resumes from its saved offset.
      from = run.lines.length;
      configure([dirA, dirB]);
      run.signal("SIGHUP");
      await run.waitForLine(/ config reloaded /, { after: from });
      expect(fields(await run.waitForLine(/ file added .*a\.log/, { after: from }))).toMatchObject({ path: a, offset: String(stopped), reason: "resumed" });

      clearInterval(writer);
      await catchesUp(a);
      await catchesUp(b);
      run.signal("SIGTERM");
      expect(await run.waitForExit()).toBe(0);
    } finally {
      clearInterval(writer);
      await run.kill();
    }
    const d = verifyDelivery(await consumeAll(mock.cluster.bootstraps, "reload"));
    expect(d.errors).toEqual([]);
    expect(shortfall(d, written)).toEqual([]);
    expect(d.duplicates).toBe(0);
    console.log(`[faults] reload under load: ${written.a + written.b} lines, ${d.duplicates} duplicates`);
  },
  60_000,
);
