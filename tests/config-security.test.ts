// kafka.tls and kafka.sasl in the config: files read and checked when the config is read
// (located problems naming the file, never its contents), secrets never shown, the WARNs, and
// a changed file changing the config (what makes SIGHUP pick up rotated certificates and
// passwords). Certificates come from openssl (tests/helpers/kafkaCerts.ts);
// no broker is needed here.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { loadConfig, parseConfig } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { saslOptions, tlsOptions } from "../lib/kafka/publish.ts";
import { makeCertificates, type Files } from "./helpers/kafkaCerts.ts";
import { runLogship, ensureBuilt } from "./helpers/agentProcess.ts";

let dir: string;
let certs: Files;
const SECRET = "s3cret-Pa55word";

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "logship-config-security-"));
  certs = makeCertificates(join(dir, "certs"));
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = (kafka: string) => `inputs: [{ paths: [/var/log/*.log] }]\nkafka:\n  brokers: ["127.0.0.1:9093"]\n  topic: logs\n${kafka}`;
const FILE = () => join(dir, "logship.yaml");

function problems(kafka: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(base(kafka), FILE(), env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split("\n");
  }
  throw new Error("expected a ConfigError, the config was accepted");
}

describe("kafka.tls", () => {
  test("ca, cert and key are read, and reach kafkajs as tls.connect options", () => {
    const c = parseConfig(base(`  tls:\n    ca: ${certs.ca}\n    cert: ${certs.clientCert}\n    key: ${certs.clientKey}\n    server_name: localhost\n`), FILE());
    expect(c.kafka.tls).toEqual({ ca: certs.ca, cert: certs.clientCert, key: certs.clientKey, server_name: "localhost", verify: true });
    const opts = tlsOptions(c.kafka) as Record<string, unknown>;
    expect(opts.rejectUnauthorized).toBe(true);
    expect(String((opts.ca as string[])[0])).toContain("BEGIN CERTIFICATE");
    expect(String(opts.key)).toContain("PRIVATE KEY");
    expect(opts.servername).toBe("localhost");
    expect(c.warnings).toEqual([]);
  });

  test("`tls: {}` is TLS with the system CAs; no tls is plaintext", () => {
    expect(tlsOptions(parseConfig(base("  tls: {}\n"), FILE()).kafka)).toBe(true);
    expect(tlsOptions(parseConfig(base(""), FILE()).kafka)).toBeUndefined();
  });

  test("a missing, unreadable, non-PEM file or a key of another certificate is a located problem", () => {
    const notPem = join(dir, "not.pem");
    writeFileSync(notPem, "hello\n");
    expect(problems(`  tls:\n    ca: ${join(dir, "nope.pem")}\n`)).toEqual([`${FILE()}:6: kafka.tls.ca: file not found (got "${join(dir, "nope.pem")}")`]);
    expect(problems(`  tls:\n    ca: ${notPem}\n`)).toEqual([`${FILE()}:6: kafka.tls.ca: not a PEM certificate file (no -----BEGIN CERTIFICATE----- block) (got "${notPem}")`]);
    expect(problems(`  tls:\n    cert: ${certs.clientCert}\n    key: ${notPem}\n`)).toEqual([`${FILE()}:7: kafka.tls.key: not a PEM private key (no -----BEGIN ... PRIVATE KEY----- block) (got "${notPem}")`]);
    expect(problems(`  tls:\n    cert: ${certs.clientCert}\n    key: ${certs.otherClientKey}\n`)).toEqual([
      `${FILE()}:7: kafka.tls.key: is not the private key of the certificate in kafka.tls.cert (${certs.clientCert}) (got "${certs.otherClientKey}")`,
    ]);
    expect(problems(`  tls:\n    cert: ${certs.clientCert}\n`)).toEqual([`${FILE()}:6: kafka.tls.key: missing: a client certificate (cert) needs its private key (key)`]);
    expect(problems(`  tls:\n    verify: maybe\n`)).toEqual([`${FILE()}:6: kafka.tls.verify: must be true or false (got "maybe")`]);
    if (process.getuid?.() !== 0) {
      const locked = join(dir, "locked.pem");
      copyFileSync(certs.ca, locked);
      chmodSync(locked, 0);
      expect(problems(`  tls:\n    ca: ${locked}\n`)).toEqual([`${FILE()}:6: kafka.tls.ca: cannot read: permission denied (got "${locked}")`]);
    }
  });

  test("verify: false is accepted with a WARN", () => {
    const c = parseConfig(base("  tls:\n    verify: false\n"), FILE());
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toContain("kafka.tls.verify is false");
    expect((tlsOptions(c.kafka) as { rejectUnauthorized: boolean }).rejectUnauthorized).toBe(false);
  });
});

describe("kafka.sasl", () => {
  test("password from the environment or from password_file (one trailing newline dropped)", () => {
    const fromEnv = parseConfig(base("  sasl:\n    mechanism: scram-sha-512\n    username: logship\n    password: ${KAFKA_PASSWORD}\n"), FILE(), { KAFKA_PASSWORD: SECRET });
    expect(fromEnv.kafka.sasl).toEqual({ mechanism: "scram-sha-512", username: "logship", password: "${KAFKA_PASSWORD}", password_file: undefined });
    expect(saslOptions(fromEnv.kafka)).toMatchObject({ mechanism: "scram-sha-512", username: "logship", password: SECRET });
    const pw = join(dir, "kafka.pass");
    writeFileSync(pw, `${SECRET}\n`);
    const fromFile = parseConfig(base(`  sasl:\n    mechanism: plain\n    username: logship\n    password_file: ${pw}\n`), FILE());
    expect(saslOptions(fromFile.kafka)).toMatchObject({ mechanism: "plain", password: SECRET });
  });

  test("exactly one of password and password_file; an empty or missing file is a located problem", () => {
    const pw = join(dir, "empty.pass");
    writeFileSync(pw, "\n");
    const head = "  sasl:\n    mechanism: plain\n    username: u\n";
    expect(problems(head)).toEqual([`${FILE()}:5: kafka.sasl.password: missing: give password (e.g. \${KAFKA_PASSWORD}) or password_file`]);
    expect(problems(`${head}    password: x\n    password_file: ${pw}\n`)).toEqual([`${FILE()}:9: kafka.sasl: give password or password_file, not both`]);
    expect(problems(`${head}    password_file: ${pw}\n`)).toEqual([`${FILE()}:8: kafka.sasl.password_file: the password file is empty (got "${pw}")`]);
    expect(problems(`${head}    password_file: ${join(dir, "none")}\n`)).toEqual([`${FILE()}:8: kafka.sasl.password_file: file not found (got "${join(dir, "none")}")`]);
    expect(problems("  sasl:\n    mechanism: gssapi\n    username: u\n    password: x\n")).toEqual([`${FILE()}:6: kafka.sasl.mechanism: must be one of plain | scram-sha-256 | scram-sha-512 (got "gssapi")`]);
  });

  test("the password is never shown: not in problems, not when printed, not in the config's JSON", () => {
    const lines = problems(`  sasl:\n    mechanism: plain\n    username: u\n    password: "${SECRET}"\n    password_file: /x\n  bogus: 1\n`);
    expect(lines.join("\n")).not.toContain(SECRET);
    const c = parseConfig(base(`  sasl:\n    mechanism: plain\n    username: u\n    password: "${SECRET}"\n`), FILE());
    expect(JSON.stringify(c)).not.toContain(SECRET);
    expect(inspect(c, { depth: 10 })).not.toContain(SECRET);
    expect(String(c.kafka.secrets)).toBe("[redacted]");
  });

  test("a config holding the password and readable by others gets a WARN; 0600 or an env reference does not", () => {
    const file = FILE();
    writeFileSync(file, base(`  sasl:\n    mechanism: plain\n    username: u\n    password: "${SECRET}"\n`));
    chmodSync(file, 0o644);
    expect(loadConfig(file).warnings.join()).toContain("readable by others (mode 644)");
    chmodSync(file, 0o600);
    expect(loadConfig(file).warnings).toEqual([]);
    writeFileSync(file, base("  sasl:\n    mechanism: plain\n    username: u\n    password: ${P}\n"));
    chmodSync(file, 0o644);
    expect(loadConfig(file, { P: SECRET }).warnings).toEqual([]);
  });
});

test("a changed certificate or password file changes the config's JSON (so SIGHUP rebuilds the producer)", () => {
  const pw = join(dir, "rotating.pass");
  const ca = join(dir, "rotating-ca.pem");
  writeFileSync(pw, "first-Pa55\n");
  copyFileSync(certs.ca, ca);
  const text = base(`  tls:\n    ca: ${ca}\n  sasl:\n    mechanism: plain\n    username: u\n    password_file: ${pw}\n`);
  const first = JSON.stringify(parseConfig(text, FILE()).kafka);
  expect(JSON.stringify(parseConfig(text, FILE()).kafka)).toBe(first);
  writeFileSync(pw, "second-Pa55\n");
  const second = JSON.stringify(parseConfig(text, FILE()).kafka);
  expect(second).not.toBe(first);
  copyFileSync(certs.otherCa, ca);
  expect(JSON.stringify(parseConfig(text, FILE()).kafka)).not.toBe(second);
  expect(first + second).not.toContain("Pa55");
});

test("the binary: a bad TLS file is exit 2 with the located problem; check names files, never secrets", async () => {
  ensureBuilt();
  const file = join(dir, "bin.yaml");
  writeFileSync(file, base(`  tls:\n    ca: ${join(dir, "missing-ca.pem")}\n`));
  const bad = await runLogship(["run", "--config", file]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain(`${file}:6: kafka.tls.ca: file not found`);
  writeFileSync(file, base(`  tls:\n    ca: ${certs.ca}\n    verify: false\n  sasl:\n    mechanism: scram-sha-256\n    username: logship\n    password: \${KP}\n`), { mode: 0o600 });
  const check = await runLogship(["check", "--config", file], { env: { KP: SECRET } });
  expect(check.code).toBe(0);
  expect(check.stdout).toContain(`kafka security: TLS (ca ${certs.ca}, NOT verified), SASL scram-sha-256 as logship`);
  expect(check.stdout).toContain("WARN kafka.tls.verify is false");
  expect(check.stdout + check.stderr).not.toContain(SECRET);
});
