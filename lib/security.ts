// Kafka security material: the files named by kafka.tls and kafka.sasl, read and checked when
// the config is read (at start and on every SIGHUP, so rotated certificates and passwords take
// effect without a restart), and the one wrapper secrets travel in. A leaf: imports nothing.
//
// Invariant: a secret (PEM text of a key, a password) never reaches a log line, an error
// message, `check` output or a metric. It lives only inside a Secrets object, whose
// toString/inspect print "[redacted]" and whose JSON is a digest (so comparing two configs as
// JSON still tells a changed file apart). Problems name the file and what is wrong with it,
// never its contents.

import { createHash, createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import type { SecretMaterial } from "./options.ts";

export class Secrets {
  readonly #material: SecretMaterial;
  readonly digest: string;
  constructor(material: SecretMaterial) {
    this.#material = Object.freeze({ ...material });
    this.digest = createHash("sha256").update(JSON.stringify(material)).digest("hex").slice(0, 16);
  }
  reveal(): SecretMaterial {
    return this.#material;
  }
  toJSON(): string {
    return `redacted:${this.digest}`;
  }
  toString(): string {
    return "[redacted]";
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "[redacted]";
  }
}

/** A problem with one file: `message` names what is wrong, never what the file holds. */
export class FileProblem extends Error {}

/** A file's text; FileProblem when it cannot be read. */
export function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new FileProblem("file not found");
    if (code === "EACCES" || code === "EPERM") throw new FileProblem("cannot read: permission denied");
    if (code === "EISDIR") throw new FileProblem("is a directory, not a file");
    throw new FileProblem(`cannot read: ${code ?? "error"}`);
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** PEM certificates (one or more); FileProblem when none parses. Returns the text. */
export function readCertificates(path: string): { pem: string; certs: X509Certificate[] } {
  const pem = readText(path);
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new FileProblem("not a PEM certificate file (no -----BEGIN CERTIFICATE----- block)");
  const certs = blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch {
      throw new FileProblem(`certificate ${i + 1} in the file is not valid PEM/X.509`);
    }
  });
  return { pem, certs };
}

/** An unencrypted PEM private key; FileProblem otherwise. */
export function readPrivateKey(path: string): { pem: string; key: KeyObject } {
  const pem = readText(path);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) throw new FileProblem("not a PEM private key (no -----BEGIN ... PRIVATE KEY----- block)");
  if (/ENCRYPTED/.test(pem)) throw new FileProblem("the private key is encrypted; logship needs it unencrypted (protect the file with its permissions)");
  try {
    return { pem, key: createPrivateKey(pem) };
  } catch {
    throw new FileProblem("the private key cannot be parsed");
  }
}

/** Whether `key` is the private key of `cert`. */
export function keyMatches(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.checkPrivateKey(key);
  } catch {
    return false;
  }
}

/** A password file's content: one trailing newline (LF or CRLF) is not part of it. */
export function readPassword(path: string): string {
  const text = readText(path).replace(/\r?\n$/, "");
  if (text === "") throw new FileProblem("the password file is empty");
  if (/[\r\n]/.test(text)) throw new FileProblem("the password file has more than one line");
  return text;
}
