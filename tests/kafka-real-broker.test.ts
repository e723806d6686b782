// End to end against a real Apache Kafka broker (KRaft, from .kafka/libs; scripts/setup.sh):
// the compiled binary ships through every security mode of scripts/kafka.ts, and kcat (an
// independent client) reads each topic back byte for byte, headers included, through the
// broker's internal plaintext listener. Then the failures: wrong password, unknown CA, an
// expired or not-yet-valid broker certificate, an untrusted or expired client certificate,
// plaintext against TLS — one clear line each naming the broker
// and the cause, offsets held, and everything shipped exactly once after a SIGHUP with the
// right settings (the files are rewritten in place: SIGHUP must read them again).
// And every codec: the broker decompresses and validates each batch it stores, kcat decodes
// what arrived, and the partition's log on disk shows the batches really were compressed.
// One broker with one listener per mode (and the two test-only TLS listeners whose broker
// certificates are out of their dates) is started for the whole file.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AgentProcess, ensureBuilt, runLogship } from "./helpers/agentProcess.ts";
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, logLevel, ResourcePatternTypes, type Admin } from "kafkajs";
import { consumeAll } from "./helpers/consume.ts";
import { realBrokerKit, type Workspace } from "./helpers/realBroker.ts";
import { removeClusterDir, SECURITY_MODES, startRealCluster, TEST_LISTENERS, type RealCluster, type SecurityMode } from "./helpers/realKafka.ts";

let cluster: RealCluster;
const dirs: string[] = [];

// StandardAuthorizer: the internal listener, plain TLS and the mTLS client are super users;
// the SASL user logship may do anything with any topic (ACL on "*"), except what a test denies.
const acl = (topic: string, operation: AclOperationTypes, permissionType: AclPermissionTypes) => ({
  resourceType: AclResourceTypes.TOPIC, resourceName: topic, resourcePatternType: ResourcePatternTypes.LITERAL,
  principal: "User:logship", host: "*", operation, permissionType,
});
let admin: Admin;

beforeAll(async () => {
  ensureBuilt();
  cluster = await startRealCluster({
    modes: [...SECURITY_MODES, ...TEST_LISTENERS],
    props: {
      "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
      "super.users": "User:ANONYMOUS;User:CN=logship-client",
    },
  });
  admin = new Kafka({ brokers: cluster.internalBootstrap.split(","), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createAcls({ acl: [acl("*", AclOperationTypes.ALL, AclPermissionTypes.ALLOW)] });
}, 180_000);

afterAll(async () => {
  await admin?.disconnect();
  await cluster?.stop(0);
  if (cluster) removeClusterDir(cluster.dir);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 30_000);

const kit = realBrokerKit(() => cluster, dirs);
const { workspace, security, config, delivered, failThenRecover } = kit;
const ENV = kit.env;

describe("ship once through each security mode of a real broker", () => {
  for (const mode of SECURITY_MODES) {
    test(mode, async () => {
      const ws = workspace(mode);
      const cfg = config(ws, mode, security(mode));
      const r = await runLogship(["run", "--config", cfg, "--once"], { env: ENV(), timeoutMs: 60_000 });
      expect({ code: r.code, errors: r.lines.filter((l) => / (ERROR|WARN) /.test(l)) }).toEqual({ code: 0, errors: [] });
      expect(r.stderr).not.toContain(cluster.password);
      const report = await delivered(ws);
      expect(report.bytes).toBe([...ws.files.values()].reduce((n, b) => n + b.length, 0));
      expect(report.duplicateLines).toBe(0);
    }, 90_000);
  }
});

describe("failures against a real broker: one clear line, offsets held, recovery after SIGHUP", () => {
  test("wrong password (SCRAM-SHA-512, password_file rewritten in place)", async () => {
    const ws = workspace("wrongpw");
    const pwFile = join(ws.dir, "kafka.pass");
    writeFileSync(pwFile, "not-the-password\n", { mode: 0o600 });
    const cfg = config(ws, "sasl-scram-512", security("sasl-scram-512", { passwordFile: pwFile }));
    const port = cluster.env("sasl-scram-512").BOOTSTRAP.split(":")[1];
    await failThenRecover(ws, cfg, new RegExp(`SASL authentication failed for user logship \\(SCRAM-SHA-512\\) at 127\\.0\\.0\\.1:${port}`), () => writeFileSync(pwFile, `${cluster.password}\n`));
  }, 120_000);

  test("unknown CA (the CA file replaced in place)", async () => {
    const ws = workspace("unknownca");
    const ca = join(ws.dir, "ca.pem");
    copyFileSync(cluster.files.otherCa, ca);
    const cfg = config(ws, "ssl", security("ssl", { ca }));
    const port = cluster.env("ssl").BOOTSTRAP.split(":")[1];
    await failThenRecover(ws, cfg, new RegExp(`TLS: certificate signed by unknown authority .*at 127\\.0\\.0\\.1:${port}`), () => copyFileSync(cluster.files.ca, ca));
  }, 120_000);

  // The broker serves a certificate of the right CA and name, outside its dates; the fix is on
  // the broker (a renewed certificate through Kafka's dynamic keystore update, no restart).
  for (const [mode, words] of [["ssl-expired-cert", "the broker's certificate has expired"], ["ssl-not-yet-valid-cert", "the broker's certificate is not valid yet"]] as const) {
    test(`broker certificate out of its dates (${mode}): check --connect and run say "${words}", recovery once the broker serves a valid one, no SIGHUP`, async () => {
      const ws = workspace(mode);
      const cfg = config(ws, mode, security(mode));
      const port = cluster.env(mode).BOOTSTRAP.split(":")[1];
      const check = await runLogship(["check", "--config", cfg, "--connect"], { timeoutMs: 40_000 });
      expect(check.stdout).toContain(`FAIL connect to 127.0.0.1:${port}: TLS: ${words} at 127.0.0.1:${port}\n`);
      expect(check.code).toBe(1);
      await failThenRecover(ws, cfg, new RegExp(`TLS: ${words} at 127\\.0\\.0\\.1:${port}`), () => cluster.setKeystore(mode, cluster.files.brokerKeystore), { sighup: false });
    }, 120_000);
  }

  test("client certificate the broker does not trust (mTLS)", async () => {
    const ws = workspace("badcert");
    const cert = join(ws.dir, "client.pem");
    const key = join(ws.dir, "client.key");
    copyFileSync(cluster.files.otherClientCert, cert);
    copyFileSync(cluster.files.otherClientKey, key);
    const cfg = config(ws, "mtls", security("mtls", { cert, key }));
    await failThenRecover(ws, cfg, /TLS: the broker rejected the client certificate .*at 127\.0\.0\.1:\d+/, () => {
      copyFileSync(cluster.files.clientCert, cert);
      copyFileSync(cluster.files.clientKey, key);
    });
  }, 120_000);

  test("expired client certificate (mTLS): a WARN at start, the broker's refusal in one line, recovery with a renewed one", async () => {
    const ws = workspace("expired");
    const cert = join(ws.dir, "client.pem");
    const key = join(ws.dir, "client.key");
    copyFileSync(cluster.files.expiredClientCert, cert);
    copyFileSync(cluster.files.expiredClientKey, key);
    const cfg = config(ws, "mtls", security("mtls", { cert, key }));
    const warned = await runLogship(["check", "--config", cfg]);
    expect(warned.stdout).toContain(`WARN kafka.tls.cert ${cert} expired on 2020-02-01T00:00:00.000Z`);
    await failThenRecover(ws, cfg, /TLS: the broker rejected the client certificate .*at 127\.0\.0\.1:\d+/, () => {
      copyFileSync(cluster.files.clientCert, cert);
      copyFileSync(cluster.files.clientKey, key);
    });
  }, 120_000);

  test("topic authorization denied (StandardAuthorizer ACL): TOPIC_AUTHORIZATION_FAILED with the topic, offsets held, shipping once the ACL is removed", async () => {
    const ws = workspace("authz");
    await cluster.createTopic(ws.topic, { partitions: 1 });
    const deny = acl(ws.topic, AclOperationTypes.WRITE, AclPermissionTypes.DENY);
    await admin.createAcls({ acl: [deny] });
    const cfg = config(ws, "sasl-scram-512", security("sasl-scram-512"));
    const agent = AgentProcess.start(["run", "--config", cfg], { env: ENV() });
    try {
      const line = await agent.waitForLine(/Kafka send failed/, { timeoutMs: 30_000 });
      expect(line).toContain("code=TOPIC_AUTHORIZATION_FAILED");
      expect(line).toContain(`(topic ${ws.topic})`);
      await Bun.sleep(1500);
      expect(agent.count(/Kafka send failed/)).toBe(1);
      const check = await runLogship(["check", "--config", cfg], { env: ENV() });
      for (const [path, content] of ws.files) expect(check.stdout).toMatch(new RegExp(`${path}\\s.*\\b${content.length}\\s+(0|-)\\s+${content.length}\\b`));
      const from = agent.lines.length;
      await admin.deleteAcls({ filters: [deny] }); // fixed on the broker side: no SIGHUP
      await agent.waitForLine("Kafka sends succeed again", { timeoutMs: 30_000, after: from });
      for (let i = 0; i < 100; i++) {
        const c = await runLogship(["check", "--config", cfg], { env: ENV() });
        if ([...ws.files.keys()].every((p) => new RegExp(`${p}\\s.*\\s0\\s*$`, "m").test(c.stdout))) break;
        await Bun.sleep(200);
      }
      agent.signal("SIGTERM");
      expect(await agent.waitForExit(30_000)).toBe(0);
      const report = await delivered(ws);
      expect(report.duplicateLines).toBe(0);
    } finally {
      await agent.kill();
    }
  }, 120_000);

  test("plaintext client against the TLS listener, then kafka.tls added", async () => {
    const ws = workspace("plainvstls");
    const cfg = config(ws, "ssl", "");
    await failThenRecover(ws, cfg, /Kafka send failed.*127\.0\.0\.1:\d+/, () => {
      writeFileSync(cfg, readFileSync(cfg, "utf8").replace("  retry_backoff_max: 500ms\n", `  retry_backoff_max: 500ms\n${security("ssl")}\n`));
    });
  }, 120_000);
});

describe("every codec through the real broker, decoded by kcat", () => {
  for (const format of ["packed", "line"] as const) {
    for (const codec of ["none", "gzip", "snappy", "lz4", "zstd"]) {
      test(`${codec}, format ${format}`, async () => {
        const ws = workspace(`codec-${codec}-${format}`);
        if (format === "line") {
          // Many short, similar lines: LZ4 blocks that end in a match, which liblz4 holds to the end-of-block rules.
          const path = join(ws.logs, "c.log");
          const content = Buffer.from(Array.from({ length: 30_000 }, (_, i) => `2026-11-30T12:00:${String(i % 60).padStart(2, "0")}Z INFO req=${i} ok\n`).join(""));
          writeFileSync(path, content);
          ws.files.set(path, content);
        }
        const cfg = config(ws, "plaintext", `  compression: ${codec}`);
        if (format === "line") writeFileSync(cfg, readFileSync(cfg, "utf8").replace(`  - paths: ["${ws.logs}/*.log"]\n`, `  - paths: ["${ws.logs}/*.log"]\n    format: line\n`));
        const r = await runLogship(["run", "--config", cfg, "--once"], { timeoutMs: 60_000 });
        expect({ code: r.code, errors: r.lines.filter((l) => / (ERROR|WARN) /.test(l)) }).toEqual({ code: 0, errors: [] });
        const report = await delivered(ws);
        const total = [...ws.files.values()].reduce((n, b) => n + b.length, 0);
        expect(report.bytes).toBe(total);
        expect(report.duplicateLines).toBe(0);
        // What the broker stored: its partition log, compressed (the files are ~4x compressible) or not.
        const logDir = join(cluster.dir, "data1", `${ws.topic}-0`);
        const stored = readdirSync(logDir).filter((f) => f.endsWith(".log")).reduce((n, f) => n + statSync(join(logDir, f)).size, 0);
        if (codec === "none") expect(stored).toBeGreaterThan(total);
        else expect(stored).toBeLessThan(total / 2);
      }, 90_000);
    }
  }
});

describe("logship check --connect against the real broker", () => {
  const connectConfig = (ws: Workspace, mode: SecurityMode, kafka: string) => config(ws, mode, kafka);

  test("SASL over TLS: every broker reached, SASL authenticated, topics reported; exit 0", async () => {
    const ws = workspace("connect-ok");
    const cfg = connectConfig(ws, "sasl-ssl-scram-512", security("sasl-ssl-scram-512"));
    await runLogship(["run", "--config", cfg, "--once"], { env: ENV(), timeoutMs: 60_000 }); // the topic exists now
    writeFileSync(cfg, readFileSync(cfg, "utf8").replace(`  - paths: ["${ws.logs}/*.log"]\n`, `  - paths: ["${ws.logs}/*.log"]\n  - paths: ["${ws.logs}/*.other"]\n    topic: ${ws.topic}-new\n`));
    const r = await runLogship(["check", "--config", cfg, "--connect"], { env: ENV(), timeoutMs: 40_000 });
    const port = cluster.env("sasl-ssl-scram-512").BOOTSTRAP.split(":")[1];
    expect(r.stdout).toContain("ok   SASL scram-sha-512 as logship: authenticated");
    // The release from ApiVersions: the pinned broker is 4.1.2 (scripts/kafka/pom.xml).
    expect(r.stdout).toMatch(new RegExp(`ok   broker 1 at 127\\.0\\.0\\.1:${port}: reached over TLS, SASL authenticated; Kafka 4\\.1 \\(Produce v\\d+–v13, Metadata v\\d+–v13, \\d+ APIs\\)`));
    // Metadata v8's authorized operations: the ACL on "*" allows this user to write.
    expect(r.stdout).toContain(`ok   topic ${ws.topic}: exists, 1 partition, every partition has a leader; may write\n`);
    // The authorizer keeps the broker's settings from this user: auto-creation cannot be confirmed.
    expect(r.stdout).toContain(`WARN topic ${ws.topic}-new: does not exist; whether the broker creates it is not known: auto.create.topics.enable=unknown (Cluster authorization failed)`);
    expect(r.stdout).toContain("kafka: shipping can work");
    expect(r.stdout + r.stderr).not.toContain(cluster.password);
    expect(r.code).toBe(0);
    const describeConfigs = { ...acl("kafka-cluster", AclOperationTypes.DESCRIBE_CONFIGS, AclPermissionTypes.ALLOW), resourceType: AclResourceTypes.CLUSTER };
    await admin.createAcls({ acl: [describeConfigs] });
    try {
      const again = await runLogship(["check", "--config", cfg, "--connect"], { env: ENV(), timeoutMs: 40_000 });
      expect(again.stdout).toContain(`ok   topic ${ws.topic}-new: does not exist yet; the broker creates it on the first send (auto.create.topics.enable=true)`);
      expect(again.code).toBe(0);
    } finally {
      await admin.deleteAcls({ filters: [describeConfigs] });
    }
    expect(await consumeAll(cluster.internalBootstrap, `${ws.topic}-new`)).toEqual([]); // check created nothing
  }, 90_000);

  test("write permission from Metadata v8 (StandardAuthorizer): WRITE denied, then DESCRIBE denied, name the topic and exit 1; allowed again, exit 0", async () => {
    const ws = workspace("connect-acl");
    await cluster.createTopic(ws.topic, { partitions: 2 });
    const cfg = connectConfig(ws, "sasl-scram-512", security("sasl-scram-512"));
    const check = () => runLogship(["check", "--config", cfg, "--connect"], { env: ENV(), timeoutMs: 40_000 });
    const allowed = await check();
    expect(allowed.stdout).toContain(`ok   topic ${ws.topic}: exists, 2 partitions, every partition has a leader; may write\n`);
    expect(allowed.stdout).toContain("ok   idempotent producer: a producer id was granted (InitProducerId)\n");
    expect(allowed.code).toBe(0);
    // WRITE denied on every topic: no producer id either (Kafka 2.8+ grants one to a principal that may write somewhere).
    const denyAll = acl("*", AclOperationTypes.WRITE, AclPermissionTypes.DENY);
    await admin.createAcls({ acl: [denyAll] });
    try {
      const noId = await check();
      expect(noId.stdout).toMatch(/^FAIL idempotent producer: .*CLUSTER_AUTHORIZATION_FAILED|^FAIL idempotent producer: .*[Cc]luster authorization failed/m);
      expect(noId.stdout).toContain("grant it, or set kafka.idempotent: false)\n");
      expect(noId.code).toBe(1);
    } finally {
      await admin.deleteAcls({ filters: [denyAll] });
    }
    const denyWrite = acl(ws.topic, AclOperationTypes.WRITE, AclPermissionTypes.DENY);
    const denyDescribe = acl(ws.topic, AclOperationTypes.DESCRIBE, AclPermissionTypes.DENY);
    await admin.createAcls({ acl: [denyWrite] });
    try {
      const noWrite = await check();
      expect(noWrite.stdout).toContain(`FAIL topic ${ws.topic}: exists, 2 partitions, every partition has a leader; may not write: the broker's ACLs deny WRITE to this client (shipping fails with TOPIC_AUTHORIZATION_FAILED)\n`);
      expect(noWrite.stdout).toContain("kafka: shipping cannot work as configured");
      expect(noWrite.code).toBe(1);
      await admin.createAcls({ acl: [denyDescribe] });
      const noDescribe = await check();
      expect(noDescribe.stdout).toContain(`FAIL topic ${ws.topic}: may not write: this client may not even describe it (TOPIC_AUTHORIZATION_FAILED)\n`);
      expect(noDescribe.code).toBe(1);
    } finally {
      await admin.deleteAcls({ filters: [denyWrite, denyDescribe] });
    }
    const again = await check();
    expect(again.stdout).toContain(`ok   topic ${ws.topic}: exists, 2 partitions, every partition has a leader; may write\n`);
    expect(again.code).toBe(0);
    // A super user (the mTLS client certificate's name) may write whatever the ACLs say.
    await admin.createAcls({ acl: [denyWrite] });
    try {
      const mtls = await runLogship(["check", "--config", connectConfig(ws, "mtls", security("mtls")), "--connect"], { timeoutMs: 40_000 });
      expect(mtls.stdout).toContain(`ok   topic ${ws.topic}: exists, 2 partitions, every partition has a leader; may write\n`);
      expect(mtls.code).toBe(0);
    } finally {
      await admin.deleteAcls({ filters: [denyWrite] });
    }
    expect(await consumeAll(cluster.internalBootstrap, ws.topic)).toEqual([]); // nothing was written to find out
  }, 120_000);

  test("wrong password, unknown CA, nothing listening: the cause in one line, exit 1", async () => {
    const ws = workspace("connect-bad");
    const pw = join(ws.dir, "pw");
    writeFileSync(pw, "wrong\n");
    const port = cluster.env("sasl-ssl-scram-512").BOOTSTRAP.split(":")[1];
    const badPw = await runLogship(["check", "--config", connectConfig(ws, "sasl-ssl-scram-512", security("sasl-ssl-scram-512", { passwordFile: pw })), "--connect"], { timeoutMs: 40_000 });
    expect(badPw.code).toBe(1);
    expect(badPw.stdout).toContain(`FAIL connect to 127.0.0.1:${port}: SASL authentication failed for user logship (SCRAM-SHA-512) at 127.0.0.1:${port}`);
    const badCa = await runLogship(["check", "--config", connectConfig(ws, "ssl", security("ssl", { ca: cluster.files.otherCa })), "--connect"], { timeoutMs: 40_000 });
    expect(badCa.code).toBe(1);
    expect(badCa.stdout).toMatch(/FAIL connect to 127\.0\.0\.1:\d+: TLS: certificate signed by unknown authority/);
    const cfg = connectConfig(ws, "plaintext", "");
    writeFileSync(cfg, readFileSync(cfg, "utf8").replace(/brokers: \[.*\]/, 'brokers: ["127.0.0.1:1"]'));
    const none = await runLogship(["check", "--config", cfg, "--connect"], { timeoutMs: 40_000 });
    expect(none.code).toBe(1);
    expect(none.stdout).toContain("FAIL connect to 127.0.0.1:1: Connection error: connect ECONNREFUSED 127.0.0.1:1");
  }, 120_000);

  test("a broker that accepts but never answers: exit 1 within about 30 s", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const ws = workspace("connect-silent");
      const cfg = connectConfig(ws, "plaintext", "");
      writeFileSync(cfg, readFileSync(cfg, "utf8").replace(/brokers: \[.*\]/, `brokers: ["127.0.0.1:${silent.port}"]`));
      const r = await runLogship(["check", "--config", cfg, "--connect"], { timeoutMs: 45_000 });
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/FAIL (connect to|gave up after)/);
      expect(r.ms).toBeLessThan(35_000);
    } finally {
      silent.stop(true);
    }
  }, 60_000);
});
