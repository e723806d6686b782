// Scratch space for tests that run the agent: directories, the config file, and the state
// file read back the way an operator would (read-only, safe beside a running agent). The test
// kit's one workspace builder, one config writer and one state reader live here.
//
//   const dir = workspace("crash")              // a fresh directory (on /dev/shm when it exists)
//   const ws = topicWorkspace(cluster, "once")   // one under tmpdir() + dir/logs + a fresh topic of 8 partitions
//   removeWorkspace(dir)
//   writeConfig(dir, "inputs: ...")             // YAML as written → DIR/logship.yaml; returns its path
//   writeConfig(path, { inputs, brokers, topic, state })  // the test defaults (fast scans, short backoff) → PATH
//   savedRows(statePath)                        // the state file's rows ([] while there is none)
//   savedOffsets(statePath).get(path)           // saved offset by last known path
//   savedOffsetOf(statePath, path)              // saved offset of the file now at path (by inode)

import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSaved, type SavedFile } from "../../lib/state/store.ts";

// --- directories ---------------------------------------------------------------------------

/**
 * A scratch directory `logship-NAME-XXXXXX` under `base`: by default /dev/shm when it exists
 * (fast, and no disk wear), else /tmp. Pass tmpdir() for a test that executes files from it
 * (/dev/shm is often mounted noexec).
 */
export function workspace(name: string, base = existsSync("/dev/shm") ? "/dev/shm" : "/tmp"): string {
  return mkdtempSync(join(base, `logship-${name}-`));
}

export function removeWorkspace(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Creates `dir` (and parents). */
export function mkdir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface TopicWorkspace {
  dir: string;
  logs: string; // DIR/logs, created empty
  topic: string; // created on the cluster
}

/**
 * workspace(`e2e-NAME`) under tmpdir() (an e2e test may run a binary copied there) with an
 * empty logs/, and a fresh topic `e2e-NAME-<time>` of `partitions` partitions.
 */
export function topicWorkspace(cluster: { createTopic(name: string, partitions?: number): void }, name: string, partitions = 8): TopicWorkspace {
  const dir = workspace(`e2e-${name}`, tmpdir());
  const logs = mkdir(join(dir, "logs"));
  const topic = `e2e-${name}-${Date.now().toString(36)}`;
  cluster.createTopic(topic, partitions);
  return { dir, logs, topic };
}

// --- the config file -----------------------------------------------------------------------

export interface ConfigOptions {
  inputs: { paths: string[]; topic?: string; extra?: Record<string, string | number> }[];
  brokers: string;
  topic?: string;
  state: string;
  kafka?: Record<string, string | number>; // overrides of the test defaults below
  stateExtra?: Record<string, string | number>;
  top?: Record<string, string | number>;
}

/** A config tuned for tests: fast scans and polls, short backoff and shutdown. */
export function configYaml(o: ConfigOptions): string {
  const block = (entries: Record<string, string | number | undefined>, indent: string) =>
    Object.entries(entries)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${indent}${k}: ${typeof v === "number" ? v : JSON.stringify(v)}`)
      .join("\n");
  const inputs = o.inputs
    .map((i) => [`  - paths: [${i.paths.map((p) => JSON.stringify(p)).join(", ")}]`, block({ topic: i.topic, ...i.extra }, "    ")].filter(Boolean).join("\n"))
    .join("\n");
  const kafka = { topic: o.topic, retry_backoff: "20ms", retry_backoff_max: "500ms", request_timeout: "5s", ...o.kafka };
  const state = { path: o.state, flush_interval: "100ms", ...o.stateExtra };
  const top = { scan_interval: "200ms", poll_interval: "50ms", shutdown_timeout: "2s", stats_interval: "500ms", ...o.top };
  return [
    "inputs:",
    inputs,
    "kafka:",
    `  brokers: [${o.brokers.split(",").map((b) => JSON.stringify(b)).join(", ")}]`,
    block(kafka, "  "),
    "state:",
    block(state, "  "),
    block(top, ""),
    "",
  ].join("\n");
}

/** Writes `yaml` to DIR/NAME (default logship.yaml) and returns the path. */
export function writeConfig(dir: string, yaml: string, name?: string): string;
/** Writes configYaml(options) to PATH and returns it. */
export function writeConfig(path: string, options: ConfigOptions): string;
export function writeConfig(where: string, config: string | ConfigOptions, name = "logship.yaml"): string {
  const path = typeof config === "string" ? join(where, name) : where;
  writeFileSync(path, typeof config === "string" ? config : configYaml(config));
  return path;
}

// --- the state file ------------------------------------------------------------------------

/** The saved rows, read-only ([] while the file does not exist). */
export function savedRows(statePath: string): SavedFile[] {
  return existsSync(statePath) ? readSaved(statePath) : [];
}

/** Saved offsets by last known path. */
export function savedOffsets(statePath: string): Map<string, number> {
  return new Map(savedRows(statePath).map((r) => [r.path, r.offset]));
}

/** The saved offset of the file now at `path` (matched by inode), or undefined. */
export function savedOffsetOf(statePath: string, path: string): number | undefined {
  const ino = statSync(path).ino;
  return savedRows(statePath).find((r) => r.ino === ino)?.offset;
}
