// The arm64 build: Bun cross-compiles dist/logship-linux-arm64 (its arm64 runtime comes from
// the npm registry, then Bun's cache), and the binary runs under qemu user emulation
// (Debian qemu-user-static, with the arm64 C library of libc6-arm64-cross, both installed by
// scripts/setup.sh): --version, and a `run --once` that ships a small file to the mock cluster
// on loopback, read back and checked line by line.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { checkDelivery, defaultHost, ROOT, runLogship, writeConfig } from "./helpers/agentProcess.ts";
import { consumeAll } from "./helpers/consume.ts";
import { startMockCluster, type MockCluster } from "./helpers/mockCluster.ts";

const ARM64 = join(ROOT, "dist/logship-linux-arm64");
const QEMU = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"];
let cluster: MockCluster;
let dir: string;

/** Builds the arm64 binary when it is missing or older than dist/logship's sources. */
function ensureArm64(): void {
  const newest = Math.max(...[join(ROOT, "main.ts"), join(ROOT, "package.json")].map((p) => statSync(p).mtimeMs), ...libMtimes());
  let built = -1;
  try {
    built = statSync(ARM64).mtimeMs;
  } catch {}
  if (built >= newest) return;
  const r = Bun.spawnSync([process.execPath, "scripts/build.ts", "dist/logship-linux-arm64", "bun-linux-arm64"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`arm64 build failed:\n${r.stdout}\n${r.stderr}`);
}

function libMtimes(): number[] {
  const glob = new Bun.Glob("lib/**/*.ts");
  return [...glob.scanSync({ cwd: ROOT })].map((f) => statSync(join(ROOT, f)).mtimeMs);
}

beforeAll(() => {
  ensureArm64();
  cluster = startMockCluster({ brokers: 1 });
  dir = mkdtempSync(join(tmpdir(), "logship-arm64-"));
}, 180_000);

afterAll(() => {
  cluster?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the cross-compiled binary is an arm64 executable and answers --version under qemu", async () => {
  const head = readFileSync(ARM64).subarray(0, 20);
  expect([...head.subarray(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]); // ELF
  expect(head.readUInt16LE(18)).toBe(183); // e_machine: EM_AARCH64
  const r = await runLogship(["--version"], { binary: ARM64, wrap: QEMU, timeoutMs: 60_000 });
  expect({ code: r.code, out: r.stdout.trim() }).toEqual({ code: 0, out: `logship ${pkg.version}` });
}, 90_000);

test("under qemu, run --once ships a small file to the mock cluster, every line once", async () => {
  const logs = join(dir, "logs");
  mkdirSync(logs);
  const topic = `arm64-${Date.now().toString(36)}`;
  cluster.createTopic(topic, 2);
  const path = join(logs, "app.log");
  let text = "";
  for (let i = 0; i < 2_000; i++) text += `arm64 line ${String(i).padStart(5, "0")} ${"z".repeat(20)}\n`;
  writeFileSync(path, text);
  const cfg = writeConfig(dir, `inputs:\n  - paths: ["${logs}/*.log"]\nkafka:\n  brokers: ["${cluster.bootstraps}"]\n  topic: ${topic}\nstate:\n  path: ${dir}/state.db\nstats_interval: 0\n`);
  const r = await runLogship(["run", "--config", cfg, "--once"], { binary: ARM64, wrap: QEMU, timeoutMs: 120_000 });
  expect({ code: r.code, log: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, log: "" });
  const records = await consumeAll(cluster.bootstraps, topic, { timeoutMs: 30_000 });
  const report = checkDelivery(records, new Map([[path, Buffer.from(text)]]), { host: defaultHost(), duplicates: "forbid" });
  expect(report.lines).toBe(2_000);
  expect(report.bytes).toBe(Buffer.byteLength(text));
}, 150_000);
