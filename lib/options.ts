// The configuration's options: the typed shape of a parsed config, and every option of every
// section declared once, as one row of a spec table (key, kind, default, a one-line doc).
// config.ts reads a file against these tables; the known keys of its unknown-key error and
// DEFAULTS come from them; tests/config.test.ts holds conf.example.yaml to them.
// Invariant: an option is added, renamed or given another default here and nowhere else
// (then in conf.example.yaml, which the test checks); `satisfies Spec<...>` keeps the tables
// and the interfaces in step: a field without a row, or a row whose kind converts to another
// type, does not compile. A leaf: imports nothing.

export type StartAt = "beginning" | "end";
export type LongLines = "split" | "truncate" | "drop";
export type Acks = "all" | "leader" | "none";
export type Compression = "none" | "gzip" | "snappy" | "lz4" | "zstd";
export type SaslMechanism = "plain" | "scram-sha-256" | "scram-sha-512";

/** `kafka.tls` as written (paths absolute); see TLS. `tls: {}` = TLS with the system CAs. */
export interface TlsConfig {
  ca: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  server_name: string | undefined;
  verify: boolean;
}

/** `kafka.sasl` as written (password_file absolute); see SASL. The password itself is only in KafkaConfig.secrets. */
export interface SaslConfig {
  mechanism: SaslMechanism;
  username: string;
  password: string | undefined; // never the value: the ${ENV} reference as written, or LITERAL_PASSWORD (config.ts)
  password_file: string | undefined;
}

/**
 * What the files of kafka.tls / kafka.sasl held when the config was read (PEM text, the
 * password). Wrapped so that it never prints: toString/inspect give "[redacted]", and
 * JSON.stringify gives only a digest, so a reload still notices a changed file.
 */
export interface SecretMaterial {
  ca?: string;
  cert?: string;
  key?: string;
  password?: string;
}
export type LogFormat = "text" | "json";
export type LogLevel = "debug" | "info" | "warn" | "error";
export type RecordFormat = "packed" | "line" | "json";
/** One `redact` rule: every match of `pattern` (a JavaScript RegExp) is replaced by `replace` ($1 etc. allowed). */
/** `multiline`: exactly one of start and continue (JavaScript RegExps). Sizes bytes, timeout ms. */
export interface MultilineConfig {
  start?: string;
  continue?: string;
  max_lines: number;
  max_bytes: number;
  timeout: number;
}
export interface RedactRule {
  pattern: string;
  replace: string;
}

/** One `inputs[]` entry; its fields are documented by the rows of INPUT. Durations are ms, sizes bytes. */
export interface InputConfig {
  paths: string[]; // absolute
  exclude: string[];
  start_at: StartAt;
  topic: string; // resolved: the input's own topic or kafka.topic
  max_line_bytes: number;
  long_lines: LongLines;
  partial_line_timeout: number; // 0 = for ever
  close_inactive: number;
  close_removed: number;
  follow_symlinks: boolean; // follow a symlink that passes the protected_symlinks rule (files/links.ts); false: none
  format: RecordFormat; // packed: many lines per record, byte for byte; line: one line per record; json: one JSON object per line
  fields: Record<string, string>; // static fields: a header each (line), top-level keys (json)
  include_lines: string[]; // regexes (validated at load): ship a line only if it matches one (when any)
  exclude_lines: string[]; // regexes: drop a line that matches one
  redact: RedactRule[]; // applied in order to every shipped line
  key: string; // "path" | "none" | "field:NAME"
  multiline?: MultilineConfig; // join continuation lines into one event (line or json); absent: off
}

/** The `kafka` section; see KAFKA. */
export interface KafkaConfig {
  brokers: string[];
  topic: string | undefined;
  client_id: string;
  acks: Acks;
  idempotent: boolean;
  compression: Compression;
  max_message_bytes: number;
  target_message_bytes: number;
  request_timeout: number;
  retry_backoff: number;
  retry_backoff_max: number;
  tls?: TlsConfig; // absent = plaintext
  sasl?: SaslConfig;
  /** The contents of the files above and the password, read with the config (see lib/security.ts). */
  secrets?: { reveal(): SecretMaterial; readonly digest: string };
}

/** The `state` section; see STATE. */
export interface StateConfig {
  path: string; // absolute
  ttl: number;
  flush_interval: number;
}

/** The `http` section; see HTTP. */
export interface HttpConfig {
  listen: string | undefined; // normalised "HOST:PORT" ("[v6]:PORT" for IPv6); undefined = no endpoint
}

/** The `log` section; see LOG. */
export interface LogConfig {
  format: LogFormat;
  level: LogLevel;
}

/** A whole config; the top-level options are documented by the rows of TOP. */
export interface AgentConfig {
  file: string; // the config file this came from (absolute)
  host: string;
  inputs: InputConfig[];
  kafka: KafkaConfig;
  state: StateConfig;
  http: HttpConfig;
  log: LogConfig;
  scan_interval: number;
  poll_interval: number;
  shutdown_timeout: number;
  max_open_files: number;
  max_inflight_bytes: number;
  stats_interval: number; // 0 = never
  /** WARN lines to log at every start and reload (kafka.tls.verify: false, a readable password). */
  warnings: string[];
}

// --- kinds -----------------------------------------------------------------------------

/** What a value must look like; config.ts converts each kind and words its problems. */
export type KindRule =
  | { readonly kind: "duration"; readonly min: number } // written with a unit (or 0); converts to ms
  | { readonly kind: "size"; readonly min: number; readonly max?: number } // 1000000, 512KiB, 1MB; converts to bytes
  | { readonly kind: "int"; readonly min: number }
  | { readonly kind: "bool" } // true | false
  | { readonly kind: "enum"; readonly values: readonly string[] }
  | { readonly kind: "string" } // not blank
  | { readonly kind: "topic" } // a Kafka topic name
  | { readonly kind: "listen" } // HOST:PORT or PORT (then 127.0.0.1); converts to "HOST:PORT"
  | { readonly kind: "list"; readonly nonEmpty: boolean } // of strings; one string is a one-entry list
  | { readonly kind: "topicTemplate" } // a topic name that may hold ${fields.NAME} (resolved by config.ts from the input's fields)
  | { readonly kind: "fields" } // a mapping of names to single values (kept as strings)
  | { readonly kind: "regexes" } // a list of JavaScript regular expressions, each compiled at load
  | { readonly kind: "redact" } // a list of { pattern, replace }
  | { readonly kind: "recordKey" } // path | none | field:NAME
  | { readonly kind: "multiline" }; // { start | continue, max_lines, max_bytes, timeout }

/** A kind whose conversion yields a T. `out` is never set: it only carries T for the type checker. */
export type Kind<T> = KindRule & { readonly out?: T };

const duration = (minMs: number): Kind<number> => ({ kind: "duration", min: minMs });
const size = (minBytes: number, maxBytes?: number): Kind<number> => ({ kind: "size", min: minBytes, max: maxBytes });
const int = (min: number): Kind<number> => ({ kind: "int", min });
const oneOf = <const V extends string>(...values: V[]): Kind<V> => ({ kind: "enum", values });
const str: Kind<string> = { kind: "string" };
const bool: Kind<boolean> = { kind: "bool" };
const topic: Kind<string> = { kind: "topic" };
const listen: Kind<string> = { kind: "listen" };
const list = (nonEmpty: boolean): Kind<string[]> => ({ kind: "list", nonEmpty });
const topicTemplate: Kind<string> = { kind: "topicTemplate" };
const fieldMap: Kind<Record<string, string>> = { kind: "fields" };
const regexes: Kind<string[]> = { kind: "regexes" };
const redact: Kind<RedactRule[]> = { kind: "redact" };
const recordKey: Kind<string> = { kind: "recordKey" };
const multiline: Kind<MultilineConfig> = { kind: "multiline" };

/** One option. Without a default it is required, or config.ts derives its value (the doc says how). */
export interface Row<T> {
  readonly kind: Kind<T>;
  readonly default?: T;
  readonly required?: true;
  readonly doc: string;
}

/** A section's table: exactly one row per field of T, in the order the unknown-key error lists them. */
export type Spec<T> = { readonly [K in keyof T]-?: Row<T[K]> };

// --- the tables ------------------------------------------------------------------------

/** The largest max_line_bytes: a line up to it is read and held whole, so it bounds memory. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

const KiB = 1024;
const MiB = 1024 * KiB;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const DAY = 24 * 60 * MINUTE;

export const INPUT = {
  paths: { kind: list(true), required: true, doc: "globs (** allowed) of the files to read; relative ones resolve against the config's directory" },
  exclude: { kind: list(false), default: [], doc: 'globs; a pattern without "/" is matched against the base name too' },
  start_at: { kind: oneOf("beginning", "end"), default: "beginning", doc: "where the files present at a first start (empty state) begin; later files start at 0" },
  topic: { kind: topicTemplate, doc: "overrides kafka.topic for this input (${fields.NAME} takes a static field); one of the two is required" },
  max_line_bytes: { kind: size(16, MAX_LINE_BYTES), default: MiB, doc: "a longer line is handled as long_lines says; at most 16MiB (a line is held whole in memory)" },
  long_lines: { kind: oneOf("split", "truncate", "drop"), default: "split", doc: "split (ship it in pieces) | truncate (ship the first max_line_bytes) | drop" },
  partial_line_timeout: { kind: duration(0), default: 5 * SECOND, doc: 'a last line without "\\n" ships as it is after this long idle; 0 = wait for ever' },
  close_inactive: { kind: duration(0), default: 5 * MINUTE, doc: "close a file's descriptor after this long without growth" },
  close_removed: { kind: duration(0), default: 5 * MINUTE, doc: "a deleted file is read to its end, but held open at most this long; 0 = until drained" },
  follow_symlinks: { kind: bool, default: true, doc: "follow a symlink only when owned by root or by its target's owner, never into /proc, /sys or /dev; false: none" },
  format: { kind: oneOf("packed", "line", "json"), default: "packed", doc: "packed (many lines per record, byte for byte) | line (one line per record) | json (one JSON object per line)" },
  fields: { kind: fieldMap, default: {}, doc: "static fields: one header each (line), top-level keys (json); line or json only" },
  include_lines: { kind: regexes, default: [], doc: "regexes: ship only lines matching one of them (when any); line or json only" },
  exclude_lines: { kind: regexes, default: [], doc: "regexes: drop lines matching one of them; line or json only" },
  redact: { kind: redact, default: [], doc: "[{pattern, replace}]: applied in order to each shipped line before it leaves; line or json only" },
  key: { kind: recordKey, default: "path", doc: "the record key: path | none | field:NAME; line or json only" },
  multiline: { kind: multiline, doc: "{start | continue: regex, max_lines: 500, max_bytes: 1MiB, timeout: 1s}: join continuation lines into one event; unset = off; line or json only" },
} satisfies Spec<InputConfig>;

export const KAFKA = {
  brokers: { kind: list(true), required: true, doc: "HOST:PORT list" },
  topic: { kind: topic, doc: "the topic of every input that names none; required unless every input names its own" },
  client_id: { kind: str, default: "logship", doc: "the Kafka client id" },
  acks: { kind: oneOf("all", "leader", "none"), default: "all", doc: "what counts as acknowledged before an offset moves" },
  idempotent: { kind: bool, default: true, doc: "the idempotent producer: batches carry a producer id and sequence numbers, so a retry after a leader change or timeout is not stored twice; needs acks: all (off by default with other acks; README)" },
  compression: { kind: oneOf("none", "gzip", "snappy", "lz4", "zstd"), default: "none", doc: "of record batches: none | gzip | snappy | lz4 | zstd" },
  max_message_bytes: { kind: size(1024), default: 1_000_000, doc: "no record batch sent to a partition exceeds this, key, headers and framing included" },
  target_message_bytes: { kind: size(1024), default: 256 * KiB, doc: "records aim for this size; <= max_message_bytes (and lowered to it when unset)" },
  request_timeout: { kind: duration(100), default: 30 * SECOND, doc: "how long one produce request may take" },
  retry_backoff: { kind: duration(1), default: 100, doc: "first wait after a failed send; doubles per failure" },
  retry_backoff_max: { kind: duration(1), default: 30 * SECOND, doc: "the cap of that wait; >= retry_backoff" },
} satisfies Spec<Omit<KafkaConfig, (typeof KAFKA_SECTIONS)[number] | "secrets">>;

/** kafka's sub-sections, listed after KAFKA's keys among its known keys. */
export const KAFKA_SECTIONS = ["tls", "sasl"] as const;

export const TLS = {
  ca: { kind: str, doc: "PEM file of the CA(s) that signed the brokers' certificates; default: the system CAs" },
  cert: { kind: str, doc: "PEM file of the client certificate (mTLS); needs key" },
  key: { kind: str, doc: "PEM file of the client certificate's private key (unencrypted); needs cert" },
  server_name: { kind: str, doc: "the name to verify in the brokers' certificates when it differs from the host in brokers" },
  verify: { kind: bool, default: true, doc: "false skips verifying the brokers' certificates (a WARN at every start)" },
} satisfies Spec<TlsConfig>;

export const SASL = {
  mechanism: { kind: oneOf("plain", "scram-sha-256", "scram-sha-512"), required: true, doc: "plain | scram-sha-256 | scram-sha-512" },
  username: { kind: str, required: true, doc: "the SASL user" },
  password: { kind: str, doc: "the password; better ${ENV} or password_file (one of the two is required)" },
  password_file: { kind: str, doc: "a file holding the password (one trailing newline is ignored); read at start and on SIGHUP" },
} satisfies Spec<SaslConfig>;

export const STATE = {
  path: { kind: str, default: "./logship-state.db", doc: "bun:sqlite file holding offsets; relative to the config's directory" },
  ttl: { kind: duration(MINUTE), default: 7 * DAY, doc: "state of a file gone this long is deleted (never while the file exists)" },
  flush_interval: { kind: duration(0), default: 1 * SECOND, doc: "how often acknowledged offsets are written; 0 = after every acknowledged send" },
} satisfies Spec<StateConfig>;

export const HTTP = {
  listen: { kind: listen, doc: "HOST:PORT (or PORT alone: 127.0.0.1) of the /metrics, /health, /ready and /status endpoint; unset = no endpoint" },
} satisfies Spec<HttpConfig>;

export const LOG = {
  format: { kind: oneOf("text", "json"), default: "text", doc: "text (TIME LEVEL message key=value ...) | json (one object per line)" },
  level: { kind: oneOf("debug", "info", "warn", "error"), default: "info", doc: "the least severe level written: debug | info | warn | error" },
} satisfies Spec<LogConfig>;

/** The sections, listed before TOP's keys among the known top-level keys. */
export const SECTIONS = ["inputs", "kafka", "state", "http", "log"] as const;

export const TOP = {
  host: { kind: str, doc: "the `host` header; default: $HOSTNAME, else the machine's hostname" },
  scan_interval: { kind: duration(100), default: 10 * SECOND, doc: "how often globs are expanded again to find new and rotated files" },
  poll_interval: { kind: duration(10), default: 1 * SECOND, doc: "how often open files are checked for growth, truncation and deletion" },
  shutdown_timeout: { kind: duration(0), default: 30 * SECOND, doc: "SIGTERM/SIGINT: time to drain in-flight data before exiting" },
  max_open_files: { kind: int(1), default: 1024, doc: "descriptors held at once; caught-up files yield theirs to waiting ones" },
  max_inflight_bytes: { kind: size(64 * KiB), default: 2 * MiB, doc: "bytes read but not yet acknowledged; reading pauses above this; >= kafka.max_message_bytes" },
  stats_interval: { kind: duration(0), default: 60 * SECOND, doc: "a summary line on stderr this often; 0 = never" },
} satisfies Spec<Omit<AgentConfig, "file" | "warnings" | (typeof SECTIONS)[number]>>;

// --- defaults --------------------------------------------------------------------------

/** The rows of S that have a default, typed by their kind. */
export type Defaults<S> = { -readonly [K in keyof S as S[K] extends { default: unknown } ? K : never]: S[K] extends { kind: Kind<infer T> } ? T : never };

function defaultsOf<S extends Record<string, Row<unknown>>>(spec: S): Defaults<S> {
  const out: Record<string, unknown> = {};
  for (const [key, row] of Object.entries(spec)) if (row.default !== undefined) out[key] = row.default;
  return out as Defaults<S>;
}

/** Every default, by section, in the units of AgentConfig (ms, bytes); state.path is still relative. */
export const DEFAULTS = {
  input: defaultsOf(INPUT),
  kafka: defaultsOf(KAFKA),
  state: defaultsOf(STATE),
  http: { listen: undefined as string | undefined, ...defaultsOf(HTTP) },
  log: defaultsOf(LOG),
  ...defaultsOf(TOP),
  warnings: [] as string[],
};
