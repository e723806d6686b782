// Configuration: reads the YAML file, expands ${ENV} references, applies defaults and
// validates every field against the spec tables of options.ts. It touches neither log files
// nor Kafka. Every problem found is reported together, each located as FILE:LINE:
// field.path: what is wrong (got VALUE), so an operator fixes a file in one pass; unknown
// keys are errors (a typo must not silently become a default). A value that came, wholly or
// partly, from ${ENV} is shown as written in the file, never expanded: the environment may
// hold secrets, and these messages reach terminals and log collectors. The options and
// their defaults live in options.ts only; conf.example.yaml mirrors them.

import { statSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, resolve } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type YAMLMap } from "yaml";
import { MAX_CONFIG_BYTES, readBounded, resolveAliases } from "./config-source.ts";
import * as ev from "./config-events.ts";
import { ENV_REF, env, keyOf, LITERAL_PASSWORD, Reader, shown, shownOrNull, withDefaults, type Fields } from "./config-reader.ts";
import { ConfigError } from "./errors.ts";
import { DEFAULTS, HTTP, INPUT, KAFKA, KAFKA_SECTIONS, LOG, SASL, SECTIONS, STATE, TLS, TOP, type AgentConfig, type HttpConfig, type InputConfig, type KafkaConfig, type LogConfig, type SaslConfig, type SecretMaterial, type Spec, type StateConfig, type TlsConfig } from "./options.ts";
import { FileProblem, keyMatches, readCertificates, readPassword, readPrivateKey, Secrets } from "./security.ts";

export { DEFAULTS } from "./options.ts";
export { LITERAL_PASSWORD } from "./config-reader.ts";
export { parseDuration, parseListen, parseSize } from "./values.ts";
export { MAX_CONFIG_BYTES } from "./config-source.ts";
export type { Acks, AgentConfig, Compression, HttpConfig, InputConfig, KafkaConfig, LogConfig, LogFormat, LogLevel, LongLines, RecordFormat, RedactRule, SaslConfig, StartAt, StateConfig, TlsConfig } from "./options.ts";

/** Reads and validates a config file; throws ConfigError listing every problem. */
export function loadConfig(path: string, env: Record<string, string | undefined> = process.env): AgentConfig {
  const fail = (message: string) => new ConfigError([{ file: path, line: 0, field: "(file)", message }]);
  if (path === "") throw fail("cannot read config: --config was given an empty path; give the YAML file, e.g. --config /etc/logship.yaml");
  const file = resolve(path);
  let text: string;
  try {
    text = readBounded(file, MAX_CONFIG_BYTES);
  } catch (err) {
    if (err instanceof RangeError) throw fail(`config file is larger than ${MAX_CONFIG_BYTES / 1024 / 1024} MiB; is --config the right file?`);
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "file not found" : code === "EISDIR" ? "it is a directory, not a YAML file" : String((err as Error).message);
    throw fail(`cannot read config: ${why}`);
  }
  const config = parseConfig(text, file, env);
  if (config.kafka.sasl?.password === LITERAL_PASSWORD) {
    // As ssh does for keys: a password written into a file others can read.
    let mode = 0;
    try {
      mode = statSync(file).mode;
    } catch {
      // read a moment ago; a race with its removal is not worth a problem
    }
    if (mode & 0o077) config.warnings.push(`${file} holds kafka.sasl.password and is readable by ${mode & 0o007 ? "others" : "its group"} (mode ${(mode & 0o777).toString(8)}): chmod 600 it, or use \${ENV} or password_file`);
  }
  return config;
}

/** Validates config text; `file` names it in errors and anchors relative paths. */
export function parseConfig(text: string, file: string, env: Record<string, string | undefined> = process.env): AgentConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const v = new Validator(file, lines, env);
  for (const e of doc.errors) {
    // linePos is only filled in with prettyErrors; pos (a character offset) always is.
    const line = e.linePos?.[0].line ?? lines.linePos(e.pos[0]).line;
    v.problems.push({ file, line, field: "(yaml)", message: e.message.split("\n")[0] ?? e.message });
  }
  if (v.problems.length > 0) throw new ConfigError(v.problems);
  const root = resolveAliases(doc.contents, doc, new Set(), v);
  if (!isMap(root)) {
    v.fail(root ?? null, "(root)", "the config must be a mapping with at least `inputs` and `kafka`");
    throw new ConfigError(v.problems);
  }
  const config = v.agent(root);
  // In file order, so an operator can fix them top to bottom (the sort is stable).
  if (v.problems.length > 0 || config === undefined) throw new ConfigError(v.problems.sort((a, b) => a.line - b.line));
  return config;
}

/** Walks the YAML tree, converting values and collecting located problems. */
class Validator extends Reader {
  private kafkaTopicGiven = false;
  private passwordLiteral = false;
  readonly warnings: string[] = [];

  constructor(file: string, lines: LineCounter, env: Record<string, string | undefined>) {
    super(file, lines, env, dirname(file));
  }

  agent(root: YAMLMap): AgentConfig | undefined {
    const f = this.fields(root, "", [...SECTIONS, ...Object.keys(TOP)]);
    const kafka = this.kafka(f, root);
    const defaultTopic = kafka?.topic;
    // A missing or broken kafka section (or kafka.topic) already has its own problem.
    const topicReported = kafka === undefined || (kafka.topic === undefined && this.kafkaTopicGiven);
    const inputs = this.inputs(f, root, defaultTopic, !topicReported);
    const state = this.state(f);
    const http = this.section(f, "http", HTTP, "`listen: 127.0.0.1:9570`") as HttpConfig;
    const log = this.section(f, "log", LOG, "`format: json`") as LogConfig;
    const got = this.options(f, "", TOP, root);
    const top = withDefaults({ ...got, host: got.host ?? env(this.env, "HOSTNAME") ?? hostname() }, TOP);
    const config = { file: this.file, host: top.host, inputs: inputs ?? [], kafka: kafka ?? ({} as KafkaConfig), state, http, log, ...top, warnings: this.warnings } as AgentConfig;
    if (kafka && config.max_inflight_bytes < kafka.max_message_bytes) {
      const max = this.asWritten("kafka.max_message_bytes", String(kafka.max_message_bytes));
      this.fail(f.get("max_inflight_bytes")?.node ?? null, "max_inflight_bytes", `must be at least kafka.max_message_bytes (${max})`, config.max_inflight_bytes);
    }
    return kafka && inputs ? config : undefined;
  }

  private kafka(f: Fields, root: YAMLMap): KafkaConfig | undefined {
    const entry = f.get("kafka");
    if (!entry) return void this.fail(root, "kafka", "missing: add a `kafka:` section with at least `brokers`");
    if (!isMap(entry.node)) return void this.fail(entry.node ?? keyOf(entry), "kafka", "must be a mapping with at least `brokers`", shownOrNull(entry.node));
    const k = this.fields(entry.node, "kafka", [...Object.keys(KAFKA), ...KAFKA_SECTIONS]);
    this.kafkaTopicGiven = k.has("topic");
    const got = this.options(k, "kafka", KAFKA, keyOf(entry));
    got.brokers?.forEach((b, i) => {
      if (!/^[^\s:]+:\d{1,5}$/.test(b) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(b)) {
        this.fail(this.item(k.get("brokers")?.node, i), `kafka.brokers[${i}]`, "must be HOST:PORT", b);
      }
    });
    const d = DEFAULTS.kafka;
    const max = got.max_message_bytes ?? d.max_message_bytes;
    const target = got.target_message_bytes ?? Math.min(d.target_message_bytes, max);
    const backoff = got.retry_backoff ?? d.retry_backoff;
    const backoffMax = got.retry_backoff_max ?? d.retry_backoff_max;
    if (target > max) {
      this.fail(k.get("target_message_bytes")?.node ?? null, "kafka.target_message_bytes", `must not exceed kafka.max_message_bytes (${this.asWritten("kafka.max_message_bytes", String(max))})`, target);
    }
    // The idempotent producer needs acks=all (the broker's dedup of a retried batch relies on
    // every in-sync replica having it). On by default with acks: all, off with other acks unless
    // asked for, then a located error (the measurements behind the default: README).
    const acks = got.acks ?? d.acks;
    if (got.idempotent === true && acks !== "all") {
      this.fail(k.get("idempotent")?.node ?? null, "kafka.idempotent", `needs kafka.acks: all (got acks: ${acks}); set acks: all, or idempotent: false`, true);
    }
    const idempotent = got.idempotent ?? (d.idempotent && acks === "all");
    if (backoffMax < backoff) {
      this.fail(k.get("retry_backoff_max")?.node ?? null, "kafka.retry_backoff_max", `must be at least kafka.retry_backoff (${this.asWritten("kafka.retry_backoff", `${backoff} ms`)})`, backoffMax);
    }
    const material: SecretMaterial = {};
    const tls = this.tls(k, material);
    const sasl = this.sasl(k, material);
    return { ...withDefaults(got, KAFKA), brokers: got.brokers ?? [], target_message_bytes: target, idempotent, ...(tls && { tls }), ...(sasl && { sasl }), ...(Object.keys(material).length > 0 && { secrets: new Secrets(material) }) } as KafkaConfig;
  }

  /** kafka.tls: the files are read and checked here (PEM, key matching its certificate). */
  private tls(k: Fields, material: SecretMaterial): TlsConfig | undefined {
    const entry = k.get("tls");
    if (!entry) return undefined;
    if (entry.node === null || (isScalar(entry.node) && entry.node.value === null)) return { ...withDefaults({}, TLS) } as TlsConfig; // `tls:` alone = `tls: {}`
    if (!isMap(entry.node)) return void this.fail(entry.node, "kafka.tls", "must be a mapping, e.g. `tls: { ca: /etc/logship/kafka-ca.pem }` (`tls: {}` = TLS with the system CAs)", shown(entry.node));
    const f = this.fields(entry.node, "kafka.tls", Object.keys(TLS));
    const got = this.options(f, "kafka.tls", TLS, keyOf(entry));
    const tls = withDefaults({ ...got, ca: got.ca && this.absolute(got.ca), cert: got.cert && this.absolute(got.cert), key: got.key && this.absolute(got.key) }, TLS) as TlsConfig;
    const at = (key: string) => f.get(key)?.node ?? null;
    const file = <T>(key: "ca" | "cert" | "key", read: (p: string) => T): T | undefined => {
      const path = tls[key];
      if (path === undefined) return undefined;
      try {
        return read(path);
      } catch (err) {
        if (!(err instanceof FileProblem)) throw err;
        return void this.fail(at(key), `kafka.tls.${key}`, err.message, got[key]);
      }
    };
    const ca = file("ca", readCertificates);
    if (ca) material.ca = ca.pem;
    const cert = file("cert", readCertificates);
    const key = file("key", readPrivateKey);
    if (tls.cert !== undefined && tls.key === undefined) this.fail(at("cert"), "kafka.tls.key", "missing: a client certificate (cert) needs its private key (key)");
    if (tls.key !== undefined && tls.cert === undefined) this.fail(at("key"), "kafka.tls.cert", "missing: a private key (key) needs its client certificate (cert)");
    const leaf = cert?.certs[0];
    if (leaf && Date.parse(leaf.validTo) < Date.now()) this.warnings.push(`kafka.tls.cert ${tls.cert} expired on ${new Date(leaf.validTo).toISOString()}: brokers that check client certificates will refuse it`);
    if (cert && key) {
      if (!keyMatches(cert.certs[0]!, key.key)) this.fail(at("key"), "kafka.tls.key", `is not the private key of the certificate in kafka.tls.cert (${got.cert})`, got.key);
      material.cert = cert.pem;
      material.key = key.pem;
    }
    if (!tls.verify) this.warnings.push("kafka.tls.verify is false: the brokers' certificates are not checked, so anyone on the path can read and change what logship sends");
    return tls;
  }

  /** kafka.sasl: exactly one of password and password_file; the file is read here. */
  private sasl(k: Fields, material: SecretMaterial): SaslConfig | undefined {
    const entry = k.get("sasl");
    if (!entry) return undefined;
    if (!isMap(entry.node)) return void this.fail(entry.node ?? keyOf(entry), "kafka.sasl", "must be a mapping with mechanism, username and password or password_file", shownOrNull(entry.node));
    const f = this.fields(entry.node, "kafka.sasl", Object.keys(SASL));
    // The password is never shown in a problem, not even as written (a literal one is the secret itself).
    const pw = f.get("password");
    let password: string | undefined;
    if (pw) {
      f.delete("password");
      if (pw.node === null || (isScalar(pw.node) && pw.node.value === null)) this.fail(keyOf(pw), "kafka.sasl.password", "has no value: give one or remove the key");
      else if (!isScalar(pw.node) || typeof pw.node.value === "object") this.fail(pw.node, "kafka.sasl.password", "must be a single value");
      else {
        const raw = String(pw.node.value);
        this.passwordLiteral = !ENV_REF.test(raw);
        password = typeof pw.node.value === "string" ? this.expandEnv(raw, pw.node, "kafka.sasl.password") : raw;
        if (password !== undefined && password === "") {
          this.fail(pw.node, "kafka.sasl.password", "must not be empty");
          password = undefined;
        }
      }
    }
    const got = this.options(f, "kafka.sasl", SASL, keyOf(entry));
    const passwordFile = got.password_file && this.absolute(got.password_file);
    if (pw && passwordFile) this.fail(f.get("password_file")?.node ?? null, "kafka.sasl", "give password or password_file, not both");
    else if (!pw && !passwordFile && !f.has("password_file")) this.fail(keyOf(entry), "kafka.sasl.password", "missing: give password (e.g. ${KAFKA_PASSWORD}) or password_file");
    if (passwordFile && !pw) {
      try {
        password = readPassword(passwordFile);
      } catch (err) {
        if (!(err instanceof FileProblem)) throw err;
        this.fail(f.get("password_file")?.node ?? null, "kafka.sasl.password_file", err.message, got.password_file);
      }
    }
    if (password !== undefined) material.password = password;
    return { mechanism: got.mechanism ?? "plain", username: got.username ?? "", password: pw ? (this.passwordLiteral ? LITERAL_PASSWORD : String((pw.node as { value?: unknown })?.value)) : undefined, password_file: passwordFile } as SaslConfig;
  }

  private inputs(f: Fields, root: YAMLMap, defaultTopic: string | undefined, reportMissingTopic: boolean): InputConfig[] | undefined {
    const entry = f.get("inputs");
    if (!entry) return void this.fail(root, "inputs", "missing: add `inputs:` with at least one entry that has `paths`");
    if (!isSeq(entry.node) || entry.node.items.length === 0) return void this.fail(entry.node ?? keyOf(entry), "inputs", "must be a list with at least one entry", isSeq(entry.node) ? undefined : shownOrNull(entry.node));
    const out: InputConfig[] = [];
    entry.node.items.forEach((item, i) => {
      const at = `inputs[${i}]`;
      if (!isMap(item)) return void this.fail(item as Node, at, "must be a mapping with `paths`", shownOrNull(item as Node));
      const g = this.fields(item, at, Object.keys(INPUT));
      const got = this.options(g, at, INPUT, item);
      const topic = ev.checkInput(this.ctx, got, at, (key) => g.get(key)?.node ?? null) ?? defaultTopic;
      if (topic === undefined && reportMissingTopic && !g.has("topic")) this.fail(item, `${at}.topic`, "missing: set `topic` here or `kafka.topic` for all inputs");
      out.push({ ...withDefaults(got, INPUT), paths: (got.paths ?? []).map((p) => this.absolute(p)), topic: topic ?? "" } as InputConfig);
    });
    return out;
  }

  private state(f: Fields): StateConfig {
    const d = DEFAULTS.state;
    const entry = f.get("state");
    if (!entry) return { ...d, path: this.absolute(d.path) };
    if (!isMap(entry.node)) {
      this.fail(entry.node ?? keyOf(entry), "state", "must be a mapping (e.g. `path: ./logship-state.db`)", shownOrNull(entry.node));
      return { ...d, path: this.absolute(d.path) };
    }
    const got = withDefaults(this.options(this.fields(entry.node, "state", Object.keys(STATE)), "state", STATE, keyOf(entry)), STATE) as StateConfig;
    return { ...got, path: this.absolute(got.path) };
  }

  /** A section of plain options (http, log): absent or empty (`http:` alone) means every default. */
  private section<T>(f: Fields, name: string, spec: Spec<T>, example: string): Partial<T> {
    const entry = f.get(name);
    if (!entry || entry.node === null || (isScalar(entry.node) && entry.node.value === null)) return withDefaults({}, spec);
    if (!isMap(entry.node)) {
      this.fail(entry.node, name, `must be a mapping (e.g. ${example})`, shownOrNull(entry.node));
      return withDefaults({}, spec);
    }
    return withDefaults(this.options(this.fields(entry.node, name, Object.keys(spec)), name, spec, keyOf(entry)), spec);
  }

}
