// Faults: bad input. A few thousand randomly corrupted variants of a valid config are parsed
// in process: each one is either valid or rejected with a ConfigError whose every problem
// reads FILE:LINE: field: what is wrong; nothing else is ever thrown. A handful go through
// the binary too: exit 2, located messages, no stack trace.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../lib/config.ts";
import { ConfigError, formatProblem } from "../lib/errors.ts";
import { AgentProcess } from "./helpers/agentProcess.ts";
import { mkdir, removeWorkspace, workspace } from "./helpers/faults.ts";
import { mulberry32 } from "./helpers/prng.ts";

const VARIANTS = 3000;
const PROBLEM = /^\S+:\d+: \S+: .+/;

let dir: string;
beforeAll(() => {
  dir = workspace("fuzz");
});
afterAll(() => removeWorkspace(dir));

function baseConfig(root: string): string {
  return `# logship test config
inputs:
  - paths: ["${root}/logs/*.log", "${root}/more/**/*.txt"]
    exclude: ["**/*.gz"]
    start_at: beginning
    topic: app
    max_line_bytes: 1MiB
    long_lines: split
    partial_line_timeout: 5s
    close_inactive: 5m
    close_removed: 5m
  - paths:
      - ${root}/other/*.log
    start_at: end
kafka:
  brokers: ["127.0.0.1:9092", "127.0.0.1:9093"]
  topic: logs
  client_id: logship-\${HOSTNAME}
  acks: all
  compression: gzip
  max_message_bytes: 1000000
  target_message_bytes: 256KiB
  request_timeout: 30s
  retry_backoff: 100ms
  retry_backoff_max: 30s
state:
  path: ./state.db
  ttl: 7d
  flush_interval: 1s
host: \${HOSTNAME:-edge}
scan_interval: 10s
poll_interval: 1s
shutdown_timeout: 30s
max_open_files: 1024
max_inflight_bytes: 16MiB
stats_interval: 60s
`;
}


const CHARS = ":-[]{},#&*!|>'\"%@`\n\t ${}0aZ.\\?<=~\u0000\u00e9";
const VALUES = ["", "-1", "0", "1e999", "99999999999999999999", "~", "null", "[]", "{}", "yes", "!!binary aGk=", "*nope", "&a x", "${NOPE}", "${HOME}", "10 parsecs", '"\\u0000"', "x".repeat(5000), "[1, [2, {a: b}]]", "0x10", "1.5KiB", "-5s", "!!int 3", "'unterminated"];
const LINES = ["kafak: {}", "? complex key", "<<: *a", "---", "...", "%YAML 1.2", "!!map", "- orphan", "inputs: []", "kafka:", "  - 1", "a: &a [*a]", "\t tab: indented", "state: ~", "x: !!set {a, b}"];

function mutate(text: string, rand: () => number): string {
  const pick = <T>(xs: readonly T[] | string): T => xs[Math.floor(rand() * xs.length)] as T;
  const at = () => Math.floor(rand() * (text.length + 1));
  let lines = text.split("\n");
  switch (Math.floor(rand() * 10)) {
    case 0: {
      const i = at();
      return text.slice(0, i) + text.slice(i + 1);
    }
    case 1: {
      const i = at();
      return text.slice(0, i) + pick(CHARS) + text.slice(i);
    }
    case 2: {
      const i = at();
      return text.slice(0, i) + pick(CHARS) + text.slice(i + 1);
    }
    case 3: {
      const i = Math.floor(rand() * lines.length);
      lines.splice(i, 0, lines[i]!);
      break;
    }
    case 4:
      lines.splice(Math.floor(rand() * lines.length), 1);
      break;
    case 5: {
      const i = Math.floor(rand() * lines.length);
      const j = Math.floor(rand() * lines.length);
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      break;
    }
    case 6: {
      const i = Math.floor(rand() * lines.length);
      lines[i] = rand() < 0.5 ? ` ${lines[i]}` : lines[i]!.replace(/^ {1,2}/, "");
      break;
    }
    case 7: {
      const i = Math.floor(rand() * lines.length);
      lines[i] = lines[i]!.replace(/: .*$/, `: ${pick(VALUES)}`);
      break;
    }
    case 8:
      return text.slice(0, at());
    default:
      lines.splice(Math.floor(rand() * lines.length), 0, pick(LINES));
  }
  return lines.join("\n");
}

test(`${VARIANTS} corrupted configs: valid, or a ConfigError whose every problem is FILE:LINE: field: message`, () => {
  const seed = Number(process.env.FAULTS_SEED ?? 4242);
  const rand = mulberry32(seed);
  const file = join(dir, "logship.yaml");
  const base = baseConfig(dir);
  const env = { HOSTNAME: "fuzzhost", HOME: "/root" };
  expect(() => parseConfig(base, file, env)).not.toThrow();

  const crashes: string[] = [];
  const badMessages: string[] = [];
  let valid = 0;
  let invalid = 0;
  for (let n = 0; n < VARIANTS; n++) {
    let text = base;
    const rounds = 1 + Math.floor(rand() * 3);
    for (let r = 0; r < rounds; r++) text = mutate(text, rand);
    try {
      parseConfig(text, file, env);
      valid++;
    } catch (err) {
      if (!(err instanceof ConfigError)) {
        crashes.push(`${(err as Error)?.stack ?? String(err)}\n--- variant ${n}:\n${text.slice(0, 400)}`);
        continue;
      }
      invalid++;
      if (err.problems.length === 0) badMessages.push(`variant ${n}: ConfigError without problems`);
      for (const p of err.problems) {
        const line = formatProblem(p);
        if (!PROBLEM.test(line) || line.includes("\n") || !line.startsWith(`${file}:`)) badMessages.push(`variant ${n}: ${JSON.stringify(line.slice(0, 200))}`);
      }
      for (const line of err.message.split("\n")) if (!PROBLEM.test(line)) badMessages.push(`variant ${n} (message): ${JSON.stringify(line.slice(0, 200))}`);
    }
  }
  console.log(`[faults] config fuzz (seed ${seed}): ${valid} valid, ${invalid} rejected, ${crashes.length} crashes, ${badMessages.length} malformed messages`);
  expect(crashes.slice(0, 3)).toEqual([]);
  if (process.env.FUZZ_DUMP) console.log(badMessages.filter((m) => !m.includes("(message)")).join("\n"));
  expect(badMessages.slice(0, 10)).toEqual([]);
  expect(invalid).toBeGreaterThan(VARIANTS / 2);
});

test("corrupted configs through the binary: exit 2, every problem located, no stack trace", async () => {
  const rand = mulberry32(7);
  const base = baseConfig(dir);
  mkdir(join(dir, "cli"));
  let tried = 0;
  for (let n = 0; tried < 8 && n < 500; n++) {
    const text = mutate(mutate(base, rand), rand);
    const file = join(dir, "cli", `v${n}.yaml`);
    try {
      parseConfig(text, file, { ...process.env });
      continue; // valid: not what this test is about
    } catch {
      tried++;
    }
    writeFileSync(file, text);
    const run = AgentProcess.start(["check", "--config", file]);
    expect(await run.waitForExit()).toBe(2);
    const problems = run.lines.filter((l) => l.startsWith(`${file}:`));
    expect(problems.length).toBeGreaterThan(0);
    for (const l of problems) expect(l).toMatch(PROBLEM);
    expect(run.lines.join("\n")).not.toMatch(/^\s+at |Error:|panic/m);
    expect(run.lines.at(-1)).toMatch(/^logship: invalid config \(\d+ problems?\); nothing was started$/);
  }
  expect(tried).toBe(8);
}, 30_000);

test("through the binary, a value from the environment is shown as its ${VAR} reference, never expanded", async () => {
  // issue 11, 3a: a secret in the environment must not reach the terminal or a log collector.
  const SECRET = "s3cr3t token!";
  const file = join(dir, "secret.yaml");
  writeFileSync(file, baseConfig(dir).replace("  topic: logs\n", "  topic: logs-${LOGSHIP_TEST_TOKEN}\n").replace("  acks: all\n", "  acks: ${LOGSHIP_TEST_TOKEN}\n"));
  const run = AgentProcess.start(["check", "--config", file], { env: { LOGSHIP_TEST_TOKEN: SECRET, HOSTNAME: "fuzzhost" } });
  expect(await run.waitForExit()).toBe(2);
  expect(run.lines).toEqual([
    `${file}:17: kafka.topic: must be a Kafka topic name: letters, digits, '.', '_', '-' (got "logs-\${LOGSHIP_TEST_TOKEN}")`,
    `${file}:19: kafka.acks: must be one of all | leader | none (got "\${LOGSHIP_TEST_TOKEN}")`,
    "logship: invalid config (2 problems); nothing was started",
  ]);
  expect(run.stdout + run.stderr).not.toContain("s3cr3t");
}, 30_000);
