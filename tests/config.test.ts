// config.ts: every kind of problem is reported as FILE:LINE: field.path: what (got VALUE),
// all at once, with the line of the offending key or value; defaults come from DEFAULTS (the
// spec tables of options.ts) and conf.example.yaml mirrors the tables, key for key.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { DEFAULTS, loadConfig, parseConfig, parseDuration, parseSize, type AgentConfig } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { HTTP, INPUT, KAFKA, KAFKA_SECTIONS, LOG, SASL, SECTIONS, STATE, TLS, TOP, type Row } from "../lib/options.ts";
import { makeLogDir } from "./helpers/logDir.ts";

const FILE = "/etc/logship/logship.yaml";
const ENV = { HOSTNAME: "edge-7" };

function parse(text: string, env: Record<string, string | undefined> = ENV): AgentConfig {
  return parseConfig(text, FILE, env);
}

/** The error lines of an invalid config, exactly as the operator sees them. */
function problems(text: string, env: Record<string, string | undefined> = ENV): string[] {
  try {
    parse(text, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const lines = (err as ConfigError).message.split("\n");
    for (const line of lines) expect(line).toMatch(/^\/etc\/logship\/logship\.yaml:\d+: \S+: .+/);
    expect(lines).toHaveLength((err as ConfigError).problems.length);
    return lines;
  }
  throw new Error("expected a ConfigError, the config was accepted");
}

/** One problem, asserted to be the only one. */
function problem(text: string, env: Record<string, string | undefined> = ENV): string {
  const all = problems(text, env);
  expect(all).toHaveLength(1);
  return all[0]!;
}

const MINIMAL = `inputs:
  - paths: ["/var/log/app/*.log"]
kafka:
  brokers: ["127.0.0.1:9092"]
  topic: logs
`;

describe("a valid config", () => {
  test("the minimal config gets every default from DEFAULTS", () => {
    const c = parse(MINIMAL);
    expect(c.file).toBe(FILE);
    expect(c.host).toBe("edge-7"); // $HOSTNAME
    expect(c.inputs).toHaveLength(1);
    const { paths, topic, ...input } = c.inputs[0]!;
    expect(paths).toEqual(["/var/log/app/*.log"]);
    expect(topic).toBe("logs");
    expect(input).toEqual(DEFAULTS.input);
    const { brokers, topic: kafkaTopic, ...kafka } = c.kafka;
    expect(brokers).toEqual(["127.0.0.1:9092"]);
    expect(kafkaTopic).toBe("logs");
    expect(kafka).toEqual(DEFAULTS.kafka);
    expect(c.state).toEqual({ ...DEFAULTS.state, path: "/etc/logship/logship-state.db" });
    expect(c.scan_interval).toBe(DEFAULTS.scan_interval);
    expect(c.poll_interval).toBe(DEFAULTS.poll_interval);
    expect(c.shutdown_timeout).toBe(DEFAULTS.shutdown_timeout);
    expect(c.max_open_files).toBe(DEFAULTS.max_open_files);
    expect(c.max_inflight_bytes).toBe(DEFAULTS.max_inflight_bytes);
    expect(c.stats_interval).toBe(DEFAULTS.stats_interval);
  });

  test("every key can be set, with units on sizes and durations", () => {
    const c = parse(`inputs:
  - paths: /data/**/*.log
    exclude: ["*.gz", "**/old/**"]
    start_at: end
    topic: app
    max_line_bytes: 64KiB
    long_lines: truncate
    partial_line_timeout: 1m30s
    close_inactive: 0
    close_removed: 2h
    follow_symlinks: false
kafka:
  brokers: ["k1:9092", "[::1]:9093"]
  topic: logs
  client_id: shipper
  acks: all
  idempotent: false
  compression: gzip
  max_message_bytes: 2MB
  target_message_bytes: 512KiB
  request_timeout: 5s
  retry_backoff: 250ms
  retry_backoff_max: 1m
state:
  path: /var/lib/logship/state.db
  ttl: 1d
  flush_interval: 500ms
host: web-1
scan_interval: 1s
poll_interval: 250ms
shutdown_timeout: 0
max_open_files: 10
max_inflight_bytes: 8MiB
stats_interval: 0
`);
    expect(c.inputs[0]).toEqual({
      paths: ["/data/**/*.log"], // a single string is a one-entry list
      exclude: ["*.gz", "**/old/**"],
      start_at: "end",
      topic: "app",
      max_line_bytes: 64 * 1024,
      long_lines: "truncate",
      partial_line_timeout: 90_000,
      close_inactive: 0,
      close_removed: 7_200_000,
      follow_symlinks: false,
      // the event options (issue 14) at their defaults; tested in format.test.ts
      format: "packed", fields: {}, include_lines: [], exclude_lines: [], redact: [], key: "path",
    });
    expect(c.kafka).toEqual({
      brokers: ["k1:9092", "[::1]:9093"],
      topic: "logs",
      client_id: "shipper",
      acks: "all",
      idempotent: false,
      compression: "gzip",
      max_message_bytes: 2_000_000,
      target_message_bytes: 512 * 1024,
      request_timeout: 5_000,
      retry_backoff: 250,
      retry_backoff_max: 60_000,
    });
    expect(c.state).toEqual({ path: "/var/lib/logship/state.db", ttl: 86_400_000, flush_interval: 500 });
    expect(c.host).toBe("web-1");
    expect([c.scan_interval, c.poll_interval, c.shutdown_timeout, c.max_open_files, c.max_inflight_bytes, c.stats_interval]).toEqual([1_000, 250, 0, 10, 8 * 1024 * 1024, 0]);
  });

  test("relative paths resolve against the config file's directory", () => {
    const c = parse(`inputs:
  - paths: ["logs/*.log", "/abs/*.log", "../other/x.log"]
kafka: { brokers: ["127.0.0.1:9092"], topic: t }
state: { path: state/offsets.db }
`);
    expect(c.inputs[0]!.paths).toEqual(["/etc/logship/logs/*.log", "/abs/*.log", "/etc/other/x.log"]);
    expect(c.state.path).toBe("/etc/logship/state/offsets.db");
  });

  test("an input's topic overrides kafka.topic, and kafka.topic is optional when every input has one", () => {
    const c = parse(`inputs:
  - paths: [/a/*.log]
    topic: audit
  - paths: [/b/*.log]
kafka: { brokers: ["127.0.0.1:9092"], topic: logs }
`);
    expect(c.inputs.map((i) => i.topic)).toEqual(["audit", "logs"]);
    const own = parse(`inputs:
  - { paths: [/a/*.log], topic: a }
  - { paths: [/b/*.log], topic: b }
kafka: { brokers: ["127.0.0.1:9092"] }
`);
    expect(own.inputs.map((i) => i.topic)).toEqual(["a", "b"]);
    expect(own.kafka.topic).toBeUndefined();
  });

  test("target_message_bytes defaults to max_message_bytes when that is smaller", () => {
    const c = parse(MINIMAL.replace("topic: logs", "topic: logs\n  max_message_bytes: 100000"));
    expect(c.kafka.max_message_bytes).toBe(100_000);
    expect(c.kafka.target_message_bytes).toBe(100_000);
  });

  test("${VAR} and ${VAR:-default} expand from the environment in any value", () => {
    const c = parse(
      `inputs:
  - paths: ["\${LOG_DIR}/*.log"]
kafka:
  brokers: ["\${KAFKA_HOST:-127.0.0.1}:\${KAFKA_PORT}"]
  topic: logs-\${HOSTNAME}
  client_id: \${CLIENT:-logship}-\${HOSTNAME}
  max_message_bytes: \${MAX_BYTES:-500KB}
host: \${HOSTNAME}
`,
      { HOSTNAME: "edge-7", LOG_DIR: "/srv/logs", KAFKA_PORT: "9094", CLIENT: "" },
    );
    expect(c.inputs[0]!.paths).toEqual(["/srv/logs/*.log"]);
    expect(c.kafka.brokers).toEqual(["127.0.0.1:9094"]);
    expect(c.kafka.topic).toBe("logs-edge-7");
    expect(c.kafka.client_id).toBe("logship-edge-7"); // empty counts as unset for :-
    expect(c.kafka.max_message_bytes).toBe(500_000);
    expect(c.host).toBe("edge-7");
  });

  test("without host and $HOSTNAME the machine's hostname is used", () => {
    const c = parse(MINIMAL, {});
    expect(c.host).toBe(hostname());
  });

  test("loadConfig reads a file and names it in problems", () => {
    const dir = makeLogDir("config");
    try {
      dir.write("ok.yaml", MINIMAL);
      expect(loadConfig(dir.path("ok.yaml"), ENV).state.path).toBe(dir.path("logship-state.db"));
      dir.write("bad.yaml", MINIMAL.replace("topic: logs", "topic: logs\n  acks: maybe"));
      expect(() => loadConfig(dir.path("bad.yaml"), ENV)).toThrow(`${dir.path("bad.yaml")}:6: kafka.acks: must be one of all | leader | none (got "maybe")`);
      expect(() => loadConfig(dir.path("missing.yaml"), ENV)).toThrow(/missing\.yaml:0: \(file\): cannot read config: file not found/);
    } finally {
      dir.cleanup();
    }
  });
});

describe("problems, each located FILE:LINE: field: what (got VALUE)", () => {
  test("missing inputs", () => {
    expect(problem(`kafka:\n  brokers: ["127.0.0.1:9092"]\n  topic: t\n`)).toBe(
      `${FILE}:1: inputs: missing: add \`inputs:\` with at least one entry that has \`paths\``,
    );
  });

  test("inputs that are empty, not a list, or entries without paths", () => {
    const k = `kafka: { brokers: ["127.0.0.1:9092"], topic: t }\n`;
    expect(problem(`${k}inputs: []\n`)).toBe(`${FILE}:2: inputs: must be a list with at least one entry`);
    expect(problem(`${k}inputs: /var/log\n`)).toBe(`${FILE}:2: inputs: must be a list with at least one entry (got "/var/log")`);
    expect(problem(`${k}inputs:\n  - /var/log/*.log\n`)).toBe(`${FILE}:3: inputs[0]: must be a mapping with \`paths\` (got "/var/log/*.log")`);
    expect(problem(`${k}inputs:\n  - paths: [/a]\n  - exclude: [x]\n`)).toBe(`${FILE}:4: inputs[1].paths: missing: this key is required`);
    expect(problem(`${k}inputs:\n  - paths: []\n`)).toBe(`${FILE}:3: inputs[0].paths: must list at least one entry`);
    expect(problem(`${k}inputs:\n  - paths:\n`)).toBe(`${FILE}:3: inputs[0].paths: has no value: give one or remove the key`);
  });

  test("missing kafka, brokers and topic", () => {
    expect(problem(`inputs:\n  - paths: [/a]\n`)).toBe(`${FILE}:1: kafka: missing: add a \`kafka:\` section with at least \`brokers\``);
    // The line of the `kafka:` key, not of whatever key follows it.
    expect(problem(`inputs:\n  - paths: [/a]\nkafka:\n  topic: t\n`)).toBe(`${FILE}:3: kafka.brokers: missing: this key is required`);
    expect(problem(`inputs:\n  - paths: [/a]\nkafka:\n  brokers: ["127.0.0.1:9092"]\n`)).toBe(
      `${FILE}:2: inputs[0].topic: missing: set \`topic\` here or \`kafka.topic\` for all inputs`,
    );
    expect(problem(`inputs:\n  - paths: [/a]\nkafka:\n  brokers: []\n  topic: t\n`)).toBe(`${FILE}:4: kafka.brokers: must list at least one entry`);
    expect(problem(`inputs:\n  - paths: [/a]\nkafka:\n  brokers: ["127.0.0.1:9092", "nohost"]\n  topic: t\n`)).toBe(
      `${FILE}:4: kafka.brokers[1]: must be HOST:PORT (got "nohost")`,
    );
  });

  test("an unknown key is an error naming it, with a suggestion for a typo", () => {
    const lines = problems(`inputs:\n  - paths: [/a]\nkafak:\n  brokers: ["127.0.0.1:9092"]\n  topic: t\n`);
    expect(lines).toEqual([
      `${FILE}:1: kafka: missing: add a \`kafka:\` section with at least \`brokers\``,
      expect.stringContaining(`${FILE}:3: kafak: unknown key (did you mean "kafka"?); known keys: inputs, kafka, state,`),
    ]);
    expect(problem(MINIMAL + `  comprssion: gzip\n`)).toStartWith(`${FILE}:6: kafka.comprssion: unknown key (did you mean "compression"?)`);
    expect(problem(MINIMAL.replace(`  - paths:`, `  - pahts: [/b]\n    paths:`))).toStartWith(`${FILE}:2: inputs[0].pahts: unknown key (did you mean "paths"?)`);
    const far = problem(MINIMAL + `frobnicate: 1\n`);
    expect(far).toStartWith(`${FILE}:6: frobnicate: unknown key; known keys:`);
    expect(far).not.toContain("did you mean");
  });

  test("values of the wrong type", () => {
    expect(problem(`inputs:\n  - paths: [/a]\nkafka: ["127.0.0.1:9092"]\n`)).toBe(`${FILE}:3: kafka: must be a mapping with at least \`brokers\` (got "a list")`);
    expect(problem(MINIMAL + `state: 3\n`)).toBe(`${FILE}:6: state: must be a mapping (e.g. \`path: ./logship-state.db\`) (got 3)`);
    expect(problem(MINIMAL.replace(`brokers: ["127.0.0.1:9092"]`, `brokers: {a: 1}`))).toBe(`${FILE}:4: kafka.brokers: must be a list of strings (got "a mapping")`);
    expect(problem(MINIMAL.replace(`paths: ["/var/log/app/*.log"]`, `paths: 5`))).toBe(`${FILE}:2: inputs[0].paths: must be a list of strings (got 5)`);
    expect(problem(MINIMAL.replace(`paths: ["/var/log/app/*.log"]`, `paths: [[/a]]`))).toBe(`${FILE}:2: inputs[0].paths[0]: must be a single value (got "a list")`);
    expect(problem(MINIMAL + `max_open_files: many\n`)).toBe(`${FILE}:6: max_open_files: must be a whole number (got "many")`);
    expect(problem(MINIMAL + `max_open_files: 0\n`)).toBe(`${FILE}:6: max_open_files: must be at least 1 (got "0")`);
    expect(problem(MINIMAL + `host: ""\n`)).toBe(`${FILE}:6: host: must not be empty (got "")`);
    expect(problem(MINIMAL.replace("topic: logs", "topic: 'my logs'"))).toBe(`${FILE}:5: kafka.topic: must be a Kafka topic name: letters, digits, '.', '_', '-' (got "my logs")`);
  });

  test("a value outside its set", () => {
    expect(problem(MINIMAL + `  acks: maybe\n`)).toBe(`${FILE}:6: kafka.acks: must be one of all | leader | none (got "maybe")`);
    expect(problem(MINIMAL + `  compression: brotli\n`)).toBe(`${FILE}:6: kafka.compression: must be one of none | gzip | snappy | lz4 | zstd (got "brotli")`);
    expect(problem(MINIMAL + `  acks: true\n`)).toBe(`${FILE}:6: kafka.acks: must be one of all | leader | none (got "true")`);
    expect(problem(MINIMAL.replace(`  - paths:`, `  - start_at: middle\n    paths:`))).toBe(`${FILE}:2: inputs[0].start_at: must be one of beginning | end (got "middle")`);
    expect(problem(MINIMAL.replace(`  - paths:`, `  - long_lines: wrap\n    paths:`))).toBe(`${FILE}:2: inputs[0].long_lines: must be one of split | truncate | drop (got "wrap")`);
  });

  test("bad durations and sizes", () => {
    expect(problem(MINIMAL + `scan_interval: 10\n`)).toBe(`${FILE}:6: scan_interval: must be a duration with a unit, e.g. 500ms, 10s, 5m, 1h, 7d (got "10")`);
    expect(problem(MINIMAL + `shutdown_timeout: soon\n`)).toBe(`${FILE}:6: shutdown_timeout: must be a duration with a unit, e.g. 500ms, 10s, 5m, 1h, 7d (got "soon")`);
    expect(problem(MINIMAL + `scan_interval: 10ms\n`)).toBe(`${FILE}:6: scan_interval: must be at least 100 ms (got "10ms")`);
    expect(problem(MINIMAL + `  max_message_bytes: 10zb\n`)).toBe(`${FILE}:6: kafka.max_message_bytes: must be a size in bytes, e.g. 1000000, 512KiB, 1MiB, 1MB (got "10zb")`);
    expect(problem(MINIMAL + `  max_message_bytes: -5\n`)).toBe(`${FILE}:6: kafka.max_message_bytes: must be a size in bytes, e.g. 1000000, 512KiB, 1MiB, 1MB (got "-5")`);
    expect(problem(MINIMAL + `  max_message_bytes: 100\n`)).toBe(`${FILE}:6: kafka.max_message_bytes: must be at least 1024 bytes (got "100")`);
  });

  test("target_message_bytes above max_message_bytes is rejected", () => {
    expect(problem(MINIMAL + `  max_message_bytes: 1MB\n  target_message_bytes: 2MB\n`)).toBe(
      `${FILE}:7: kafka.target_message_bytes: must not exceed kafka.max_message_bytes (1000000) (got 2000000)`,
    );
  });

  test("kafka.idempotent: on by default with acks: all, off by default with other acks; true needs acks: all, located at idempotent", () => {
    expect(parse(MINIMAL).kafka.idempotent).toBe(true);
    expect(parse(MINIMAL + `  acks: leader\n`).kafka.idempotent).toBe(false);
    expect(parse(MINIMAL + `  acks: none\n  idempotent: false\n`).kafka.idempotent).toBe(false);
    expect(parse(MINIMAL + `  idempotent: true\n  acks: all\n`).kafka.idempotent).toBe(true);
    expect(problem(MINIMAL + `  idempotent: true\n  acks: leader\n`)).toBe(`${FILE}:6: kafka.idempotent: needs kafka.acks: all (got acks: leader); set acks: all, or idempotent: false (got true)`);
  });

  test("the other cross-field rules", () => {
    expect(problem(MINIMAL + `  retry_backoff: 10s\n  retry_backoff_max: 1s\n`)).toBe(`${FILE}:7: kafka.retry_backoff_max: must be at least kafka.retry_backoff (10000 ms) (got 1000)`);
    expect(problem(MINIMAL + `max_inflight_bytes: 512KiB\n`)).toBe(`${FILE}:6: max_inflight_bytes: must be at least kafka.max_message_bytes (1000000) (got 524288)`);
  });

  test("an unset environment variable is an error, unless it has a default", () => {
    expect(problem(MINIMAL.replace("topic: logs", "topic: ${TOPIC}"), {})).toBe(
      `${FILE}:5: kafka.topic: environment variable TOPIC is not set (set it, or write \${TOPIC:-default}) (got "\${TOPIC}")`,
    );
    expect(parse(MINIMAL.replace("topic: logs", "topic: ${TOPIC:-fallback}"), {}).kafka.topic).toBe("fallback");
    expect(parse(MINIMAL.replace("topic: logs", "topic: ${TOPIC:-fallback}"), { TOPIC: "set" }).kafka.topic).toBe("set");
  });

  test("a value from the environment is shown as the ${VAR} reference written in the file, never expanded", () => {
    // issue 11, 3a: a secret passed through the environment must not end up in logs or terminals.
    const SECRET = "s3cr3t token!";
    const env = { ...ENV, TOKEN: SECRET, BIG: "2MB", SLOW: "10s" };
    const shows = (text: string, want: string) => {
      const line = problem(text, env);
      expect(line).toBe(want);
      expect(line).not.toContain("s3cr3t");
    };
    shows(MINIMAL.replace("topic: logs", "topic: ${TOKEN}"), `${FILE}:5: kafka.topic: must be a Kafka topic name: letters, digits, '.', '_', '-' (got "\${TOKEN}")`);
    shows(MINIMAL.replace("topic: logs", "topic: logs-${TOKEN}"), `${FILE}:5: kafka.topic: must be a Kafka topic name: letters, digits, '.', '_', '-' (got "logs-\${TOKEN}")`);
    shows(MINIMAL + "  acks: ${TOKEN}\n", `${FILE}:6: kafka.acks: must be one of all | leader | none (got "\${TOKEN}")`);
    shows(MINIMAL + "  max_message_bytes: ${TOKEN}\n", `${FILE}:6: kafka.max_message_bytes: must be a size in bytes, e.g. 1000000, 512KiB, 1MiB, 1MB (got "\${TOKEN}")`);
    shows(MINIMAL + "scan_interval: ${TOKEN:-5s}\n", `${FILE}:6: scan_interval: must be a duration with a unit, e.g. 500ms, 10s, 5m, 1h, 7d (got "\${TOKEN:-5s}")`);
    shows(MINIMAL + "max_open_files: ${TOKEN}\n", `${FILE}:6: max_open_files: must be a whole number (got "\${TOKEN}")`);
    shows(MINIMAL.replace(`brokers: ["127.0.0.1:9092"]`, `brokers: ["127.0.0.1:9092", "\${TOKEN}"]`), `${FILE}:4: kafka.brokers[1]: must be HOST:PORT (got "\${TOKEN}")`);
    shows(MINIMAL.replace(`paths: ["/var/log/app/*.log"]`, `paths: [" \${NOPE:-} "]`), `${FILE}:2: inputs[0].paths[0]: must not be empty (got " \${NOPE:-} ")`);
    // The cross-field rules too, for the value checked and for the one it is checked against.
    shows(MINIMAL + "  target_message_bytes: ${BIG}\n", `${FILE}:6: kafka.target_message_bytes: must not exceed kafka.max_message_bytes (1000000) (got "\${BIG}")`);
    shows(MINIMAL + "  max_message_bytes: ${BIG}\nmax_inflight_bytes: 1MiB\n", `${FILE}:7: max_inflight_bytes: must be at least kafka.max_message_bytes (\${BIG}) (got 1048576)`);
    shows(MINIMAL + "  retry_backoff: ${SLOW}\n  retry_backoff_max: 1s\n", `${FILE}:7: kafka.retry_backoff_max: must be at least kafka.retry_backoff (\${SLOW}) (got 1000)`);
    // Values written in the file are still shown as they are.
    expect(problem(MINIMAL + "  acks: maybe\n", env)).toBe(`${FILE}:6: kafka.acks: must be one of all | leader | none (got "maybe")`);
  });

  test("a YAML syntax error names its line", () => {
    // yaml notices an unclosed "[" where the next key starts.
    expect(problem(`inputs:\n  - paths: [/a]\nkafka:\n  brokers: ["127.0.0.1:9092"\n  topic: t\n`)).toBe(
      `${FILE}:5: (yaml): Flow sequence in block collection must be sufficiently indented and end with a ]`,
    );
    expect(problem(`inputs:\n  - paths: [/a]\nkafka:\n  brokers: ["127.0.0.1:9092"]\n  topic: t\n  topic: u\n`)).toBe(`${FILE}:6: (yaml): Map keys must be unique`);
    expect(problem(`inputs:\n  - paths: [/a]\nkafka:\n\tbrokers: ["127.0.0.1:9092"]\n`)).toBe(`${FILE}:4: (yaml): Tabs are not allowed as indentation`);
  });

  test("a file that is not a mapping", () => {
    expect(problem(``)).toBe(`${FILE}:0: (root): the config must be a mapping with at least \`inputs\` and \`kafka\``);
    expect(problem(`- a\n- b\n`)).toBe(`${FILE}:1: (root): the config must be a mapping with at least \`inputs\` and \`kafka\``);
  });

  test("a key without a value", () => {
    expect(problem(MINIMAL + `scan_interval:\n`)).toBe(`${FILE}:6: scan_interval: has no value: give one or remove the key`);
  });

  test("several problems are reported at once, in file order", () => {
    const lines = problems(`inputs:
  - paths: [/a]
    start_at: middle
    topic: "bad topic"
kafka:
  brokers: ["127.0.0.1"]
  acks: maybe
  max_message_bytes: huge
statee: {}
scan_interval: 5
`);
    expect(lines).toEqual([
      `${FILE}:3: inputs[0].start_at: must be one of beginning | end (got "middle")`,
      `${FILE}:4: inputs[0].topic: must be a Kafka topic name: letters, digits, '.', '_', '-' (got "bad topic")`,
      `${FILE}:6: kafka.brokers[0]: must be HOST:PORT (got "127.0.0.1")`,
      `${FILE}:7: kafka.acks: must be one of all | leader | none (got "maybe")`,
      `${FILE}:8: kafka.max_message_bytes: must be a size in bytes, e.g. 1000000, 512KiB, 1MiB, 1MB (got "huge")`,
      expect.stringMatching(new RegExp(`^${FILE}:9: statee: unknown key \\(did you mean "state"\\?\\)`)),
      `${FILE}:10: scan_interval: must be a duration with a unit, e.g. 500ms, 10s, 5m, 1h, 7d (got "5")`,
    ]);
  });

  test("ConfigError carries the problems as data", () => {
    try {
      parse(MINIMAL + `  acks: maybe\n`);
      throw new Error("accepted");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual([{ file: FILE, line: 6, field: "kafka.acks", message: `must be one of all | leader | none (got "maybe")` }]);
    }
  });
});

describe("http and log", () => {
  test("http is off unless listen is set; a port alone listens on loopback", () => {
    expect(parse(MINIMAL).http).toEqual({ listen: undefined });
    expect(parse(MINIMAL + "http:\n").http).toEqual({ listen: undefined });
    expect(parse(MINIMAL + "http:\n  listen: 9570\n").http.listen).toBe("127.0.0.1:9570");
    expect(parse(MINIMAL + "http:\n  listen: 0.0.0.0:9570\n").http.listen).toBe("0.0.0.0:9570");
    expect(parse(MINIMAL + "http:\n  listen: localhost:0\n").http.listen).toBe("localhost:0");
    expect(parse(MINIMAL + 'http:\n  listen: "[::1]:9570"\n').http.listen).toBe("[::1]:9570");
  });

  test("a bad listen address is a located problem", () => {
    const want = (got: string, what: string) => `${FILE}:7: http.listen: ${what} (got "${got}")`;
    const port = "must be HOST:PORT, [IPV6]:PORT or PORT, with PORT from 0 to 65535 (0: any free port)";
    expect(problem(MINIMAL + "http:\n  listen: 127.0.0.1:99999\n")).toBe(want("127.0.0.1:99999", port));
    expect(problem(MINIMAL + "http:\n  listen: localhost\n")).toBe(want("localhost", port));
    expect(problem(MINIMAL + "http:\n  listen: '127.0.0.1:'\n")).toBe(want("127.0.0.1:", port));
    expect(problem(MINIMAL + "http:\n  listen: 300.1.1.1:80\n")).toBe(want("300.1.1.1:80", "must be HOST:PORT with HOST an IP address or a host name (an IPv4 octet is at most 255)"));
    expect(problem(MINIMAL + "http:\n  listen: 'my host:80'\n")).toBe(want("my host:80", "must be HOST:PORT with HOST an IP address or a host name"));
    expect(problem(MINIMAL + "http:\n  listen: '::1:80'\n")).toBe(want("::1:80", "must be HOST:PORT, [IPV6]:PORT or PORT (an IPv6 address goes in brackets)"));
    expect(problem(MINIMAL + "http: 9570\n")).toBe(`${FILE}:6: http: must be a mapping (e.g. \`listen: 127.0.0.1:9570\`) (got 9570)`);
    expect(problem(MINIMAL + "http:\n  listn: 9570\n")).toBe(`${FILE}:7: http.listn: unknown key (did you mean "listen"?); known keys: listen`);
  });

  test("log.format and log.level", () => {
    expect(parse(MINIMAL).log).toEqual({ format: "text", level: "info" });
    expect(parse(MINIMAL + "log:\n  format: json\n  level: warn\n").log).toEqual({ format: "json", level: "warn" });
    expect(problem(MINIMAL + "log:\n  format: xml\n")).toBe(`${FILE}:7: log.format: must be one of text | json (got "xml")`);
    expect(problem(MINIMAL + "log:\n  level: trace\n")).toBe(`${FILE}:7: log.level: must be one of debug | info | warn | error (got "trace")`);
  });
});

describe("units", () => {
  test("parseDuration", () => {
    expect(parseDuration("0")).toBe(0);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("10s")).toBe(10_000);
    expect(parseDuration("1.5s")).toBe(1_500);
    expect(parseDuration("1m30s")).toBe(90_000);
    expect(parseDuration("2h")).toBe(7_200_000);
    expect(parseDuration("7d")).toBe(604_800_000);
    for (const bad of ["", "10", "s", "-1s", "1 s", "1w", "1s2"]) expect(parseDuration(bad)).toBeUndefined();
  });

  test("parseSize", () => {
    expect(parseSize("1000000")).toBe(1_000_000);
    expect(parseSize("512KiB")).toBe(524_288);
    expect(parseSize("1MiB")).toBe(1_048_576);
    expect(parseSize("1MB")).toBe(1_000_000);
    expect(parseSize("1.5kb")).toBe(1_500);
    expect(parseSize("2 GiB")).toBe(2 * 1024 ** 3);
    for (const bad of ["", "-1", "1TB", "lots", "1e6x"]) expect(parseSize(bad)).toBeUndefined();
  });
});

describe("conf.example.yaml", () => {
  const example = resolve(import.meta.dir, "..", "conf.example.yaml");

  test("exists at the repository root", () => {
    expect(existsSync(example)).toBe(true);
  });

  test("parses, and every key it sets has exactly the default", () => {
    const text = readFileSync(example, "utf8");
    const c = parseConfig(text, example, { HOSTNAME: "example-host" });
    const doc = parseYaml(text) as Record<string, any>;
    const required = new Set(["inputs.paths", "inputs.topic", "kafka.brokers", "kafka.topic"]);
    const checked: string[] = [];
    const compare = (section: string, yamlKeys: string[], actual: Record<string, unknown>, defaults: Record<string, unknown>) => {
      for (const key of yamlKeys) {
        const name = section ? `${section}.${key}` : key;
        if (required.has(name)) continue;
        expect(Object.keys(defaults)).toContain(key); // a documented key must have a default
        const want = key === "path" && section === "state" ? resolve(join(example, ".."), DEFAULTS.state.path) : defaults[key];
        expect({ key: name, value: actual[key] }).toEqual({ key: name, value: want });
        checked.push(name);
      }
    };
    compare("inputs", Object.keys(doc.inputs[0]), c.inputs[0] as unknown as Record<string, unknown>, DEFAULTS.input);
    compare("kafka", Object.keys(doc.kafka), c.kafka as unknown as Record<string, unknown>, DEFAULTS.kafka);
    compare("state", Object.keys(doc.state), c.state as unknown as Record<string, unknown>, DEFAULTS.state);
    compare("log", Object.keys(doc.log), c.log as unknown as Record<string, unknown>, DEFAULTS.log);
    expect(doc.http).toBeNull(); // its one key, listen, is shown commented out: the endpoint is off by default
    expect(c.http.listen).toBeUndefined();
    const topLevel = Object.keys(doc).filter((k) => !(SECTIONS as readonly string[]).includes(k));
    compare("", topLevel, c as unknown as Record<string, unknown>, DEFAULTS as unknown as Record<string, unknown>);
    expect(checked.length).toBeGreaterThan(20);
  });

  test("holds every option of the spec tables, each with its default, and no key they lack", () => {
    const text = readFileSync(example, "utf8");
    // An option without a default may be shown commented out, as in "# topic: app".
    const documented = parseYaml(text.replace(/^(\s*)# ([a-z_]+: )/gm, "$1$2")) as Record<string, any>;
    const set = parseYaml(text) as Record<string, any>;
    const c = parseConfig(text, example, { HOSTNAME: "example-host" }) as unknown as Record<string, any>;
    const sections: [string, Record<string, Row<unknown>>, string[], Record<string, any>, Record<string, any>, Record<string, any>][] = [
      ["", TOP, [...SECTIONS], documented, set, c],
      ["inputs[0]", INPUT, [], documented.inputs[0], set.inputs[0], c.inputs[0]],
      ["kafka", KAFKA, [...KAFKA_SECTIONS], documented.kafka, set.kafka, c.kafka],
      ["state", STATE, [], documented.state, set.state, c.state],
      ["http", HTTP, [], documented.http, set.http ?? {}, c.http],
      ["log", LOG, [], documented.log, set.log, c.log],
    ];
    let withDefault = 0;
    for (const [at, spec, sectionKeys, docKeys, setKeys, parsed] of sections) {
      const known = [...sectionKeys, ...Object.keys(spec)];
      const inExample = Object.keys(docKeys);
      // Named by section, so a failure says which key to add to which file.
      expect({ at, missingFromExample: known.filter((k) => !inExample.includes(k)), notInSpec: inExample.filter((k) => !known.includes(k)) }).toEqual({ at, missingFromExample: [], notInSpec: [] });
      for (const [key, row] of Object.entries(spec)) {
        expect({ at, key, oneLineDoc: /^[^\n]+$/.test(row.doc) }).toEqual({ at, key, oneLineDoc: true });
        if (row.default === undefined) continue;
        withDefault++;
        const want = at === "state" && key === "path" ? resolve(join(example, ".."), row.default as string) : row.default;
        expect({ at, key, set: key in setKeys, value: parsed[key] }).toEqual({ at, key, set: true, value: want });
      }
    }
    expect(withDefault).toBe(Object.keys(DEFAULTS.input).length + Object.keys(DEFAULTS.kafka).length + Object.keys(DEFAULTS.state).length + Object.keys(DEFAULTS.log).length + 6);
  });

  test("documents every key that has a default (set, or shown commented out)", () => {
    const text = readFileSync(example, "utf8");
    const keyed = (key: string) => new RegExp(`^[\\s#-]*${key}:`, "m").test(text);
    const all = [...Object.keys(DEFAULTS.input), ...Object.keys(DEFAULTS.kafka), ...Object.keys(DEFAULTS.state), ...Object.keys(DEFAULTS).filter((k) => typeof (DEFAULTS as Record<string, unknown>)[k] !== "object")];
    for (const key of [...all, ...Object.keys(DEFAULTS.log), "paths", "topic", "brokers", "host", "listen", ...KAFKA_SECTIONS, ...Object.keys(TLS), ...Object.keys(SASL)]) expect({ key, documented: keyed(key) }).toEqual({ key, documented: true });
  });
});


describe("limits (issue 11, item 20)", () => {
  test("max_line_bytes is at most 16MiB, said in the problem", () => {
    const base = `inputs:\n  - paths: [/var/log/*.log]\n    max_line_bytes: SIZE\nkafka:\n  brokers: [127.0.0.1:9092]\n  topic: logs\n`;
    expect(parse(base.replace("SIZE", "16MiB")).inputs[0]!.max_line_bytes).toBe(16 * 1024 * 1024);
    expect(problem(base.replace("SIZE", "512MiB"))).toBe(`${FILE}:3: inputs[0].max_line_bytes: must be at most 16777216 bytes (16MiB) (got "512MiB")`);
    expect(problem(base.replace("SIZE", "16777217"))).toContain("must be at most 16777216 bytes");
  });

  test("a config file over 1 MiB, or a device that never ends, is refused at once without reading it all", () => {
    const dir = makeLogDir("bigconfig");
    try {
      const big = dir.path("big.yaml");
      dir.write("big.yaml", `# ${"x".repeat(1024 * 1024)}\ninputs: []\n`);
      for (const path of [big, "/dev/zero"]) {
        const started = performance.now();
        let err: unknown;
        try {
          loadConfig(path);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).message).toBe(`${path}:0: (file): config file is larger than 1 MiB; is --config the right file?`);
        expect(performance.now() - started).toBeLessThan(2_000);
      }
      // just under the cap is read (and judged on its content)
      dir.write("ok.yaml", `# ${"x".repeat(1024 * 1024 - 200)}\ninputs:\n  - paths: [/var/log/*.log]\nkafka:\n  brokers: [127.0.0.1:9092]\n  topic: logs\n`);
      expect(loadConfig(dir.path("ok.yaml")).inputs).toHaveLength(1);
    } finally {
      dir.cleanup();
    }
  });
});

describe("YAML anchors, aliases and merge keys; --config edge cases (issue 11, item 22)", () => {
  test("aliases and merge keys are applied; a key set beside the merge wins; top-level x- keys hold anchors", () => {
    const c = parse(`x-input: &common
  close_inactive: 1m
  max_line_bytes: 64KiB
  exclude: &ex ["*.gz"]
inputs:
  - <<: *common
    paths: [/var/log/a/*.log]
  - <<: [*common]
    paths: [/var/log/b/*.log]
    close_inactive: 2m
    exclude: *ex
kafka:
  brokers: &brokers [127.0.0.1:9092]
  topic: &topic logs
  client_id: *topic
`);
    expect(c.inputs.map((i) => [i.paths, i.close_inactive, i.max_line_bytes, i.exclude])).toEqual([
      [["/var/log/a/*.log"], 60_000, 65_536, ["*.gz"]],
      [["/var/log/b/*.log"], 120_000, 65_536, ["*.gz"]],
    ]);
    expect(c.kafka.client_id).toBe("logs");
  });

  test("a problem inside an aliased value is located at the anchor; unknown keys elsewhere stay errors", () => {
    const lines = problems(`x-input: &common
  close_inactive: soon
inputs:
  - <<: *common
    paths: [/var/log/a/*.log]
kafka:
  brokers: [127.0.0.1:9092]
  topic: logs
defaults: 1
`);
    expect(lines).toEqual([
      `${FILE}:2: inputs[0].close_inactive: must be a duration with a unit, e.g. 500ms, 10s, 5m, 1h, 7d (got "soon")`,
      expect.stringContaining(`${FILE}:9: defaults: unknown key`),
    ]);
    expect(problem(`inputs:\n  - <<: 3\n    paths: [/a/*.log]\nkafka:\n  brokers: [127.0.0.1:9092]\n  topic: logs\n`)).toContain("<<: a merge key takes a mapping");
  });

  test("an alias bomb costs nothing: shared nodes are walked once", () => {
    let yaml = "x-a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (let i = 1; i < 30; i++) yaml += `x-a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]\n`;
    yaml += `inputs:\n  - paths: [/var/log/*.log]\nkafka:\n  brokers: [127.0.0.1:9092]\n  topic: logs\n`;
    const started = performance.now();
    expect(parse(yaml).inputs).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  test("an empty --config path and a directory are named as such", () => {
    expect(() => loadConfig("")).toThrow("--config was given an empty path");
    expect(() => loadConfig("/tmp")).toThrow("it is a directory, not a YAML file");
  });
});
