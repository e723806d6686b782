// The certificates of the real-broker tests and of scripts/kafka.ts (through realKafka.ts), made
// with openssl in a directory: PEM files, unencrypted PKCS#8 keys. Imports nothing from lib/.
//
//   - a CA, and a broker certificate it signed (CN localhost, SAN DNS:localhost, IP:127.0.0.1,
//     serverAuth), with its key in one PEM keystore, as Kafka's ssl.keystore.type=PEM takes it;
//   - two more broker keystores of the same name and SANs (Kafka's dynamic keystore update
//     refuses a change of either), signed by the same CA: one expired (2020-01-01 to
//     2020-02-01), one not yet valid (2099-01-01 to 2100-01-01);
//   - a client certificate (clientAuth) for mTLS, and one that expired in 2020;
//   - an unrelated CA with its own client certificate, for "unknown authority" both ways.
// Invariant: every certificate but the unrelated ones is signed by `ca`; only the dates differ
// between the three broker certificates.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Files {
  ca: string;
  caKey: string;
  clientCert: string;
  clientKey: string;
  /** An unrelated CA and a client certificate it signed: "unknown authority" both ways. */
  otherCa: string;
  otherClientCert: string;
  otherClientKey: string;
  /** A client certificate of the right CA, expired (2020-01-01 to 2020-02-01). */
  expiredClientCert: string;
  expiredClientKey: string;
  /** The broker's key and certificate, one PEM file (what every TLS listener serves by default). */
  brokerKeystore: string;
  /** The same name and SANs, expired (2020-01-01 to 2020-02-01). */
  expiredBrokerKeystore: string;
  /** The same name and SANs, valid only from 2099-01-01. */
  notYetValidBrokerKeystore: string;
}

function run(cmd: string[], what: string): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${what}: ${cmd.join(" ")}: exit ${r.exitCode}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

const BROKER_EXT = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";

/** Makes every file of `Files` in `dir` (created). */
export function makeCertificates(dir: string): Files {
  mkdirSync(dir, { recursive: true });
  const p = (n: string) => join(dir, n);
  const ca = (name: string, cn: string) =>
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${cn}`, "-days", "3650",
      "-keyout", p(`${name}.key`), "-out", p(`${name}.pem`)], "CA");
  const leaf = (name: string, cn: string, caName: string, ext: string) => {
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${cn}`,
      "-keyout", p(`${name}.key`), "-out", p(`${name}.csr`)], "CSR");
    writeFileSync(p(`${name}.ext`), ext);
    run(["openssl", "x509", "-req", "-in", p(`${name}.csr`), "-CA", p(`${caName}.pem`), "-CAkey", p(`${caName}.key`),
      "-CAcreateserial", "-days", "3650", "-extfile", p(`${name}.ext`), "-out", p(`${name}.pem`)], "sign");
  };
  ca("ca", "logship-test-ca");
  ca("other-ca", "logship-unrelated-ca");
  leaf("broker", "localhost", "ca", BROKER_EXT);
  leaf("client", "logship-client", "ca", "extendedKeyUsage=clientAuth\n");
  leaf("other-client", "logship-client", "other-ca", "extendedKeyUsage=clientAuth\n");
  // Certificates of the right CA with explicit dates (openssl ca takes them; x509 -req does not).
  writeFileSync(p("ca.cnf"), "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n");
  writeFileSync(p("index.txt"), "");
  writeFileSync(p("serial"), "1000\n");
  const dated = (name: string, cn: string, start: string, end: string, ext?: string) => {
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${cn}`, "-keyout", p(`${name}.key`), "-out", p(`${name}.csr`)], "CSR");
    if (ext) writeFileSync(p(`${name}.ext`), ext);
    run(["sh", "-c", `cd "${dir}" && openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in ${name}.csr -out ${name}.pem -startdate ${start} -enddate ${end} -notext${ext ? ` -extfile ${name}.ext` : ""}`], `${name} certificate`);
  };
  dated("expired-client", "logship-client", "20200101000000Z", "20200201000000Z");
  dated("expired-broker", "localhost", "20200101000000Z", "20200201000000Z", BROKER_EXT);
  dated("future-broker", "localhost", "20990101000000Z", "21000101000000Z", BROKER_EXT);
  const keystore = (name: string) => {
    const out = p(`${name}-keystore.pem`);
    run(["sh", "-c", `cat "${p(`${name}.key`)}" "${p(`${name}.pem`)}" > "${out}"`], "keystore");
    return out;
  };
  return {
    ca: p("ca.pem"),
    caKey: p("ca.key"),
    clientCert: p("client.pem"),
    clientKey: p("client.key"),
    otherCa: p("other-ca.pem"),
    otherClientCert: p("other-client.pem"),
    otherClientKey: p("other-client.key"),
    expiredClientCert: p("expired-client.pem"),
    expiredClientKey: p("expired-client.key"),
    brokerKeystore: keystore("broker"),
    expiredBrokerKeystore: keystore("expired-broker"),
    notYetValidBrokerKeystore: keystore("future-broker"),
  };
}
