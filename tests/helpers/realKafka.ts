// A real Apache Kafka cluster (KRaft, combined broker+controller nodes) on loopback, from the
// jars scripts/setup.sh copies into .kafka/libs (pinned in scripts/kafka/pom.xml). Used by
// scripts/kafka.ts (the CLI) and by the real-broker tests; imports nothing from lib/.
//
// Each node has a PLAINTEXT listener INTERNAL (inter-broker; also this module's admin access,
// never printed for clients), a CONTROLLER listener (never given to clients: kafkajs pointed at
// it fails with "does not support the requested API version") and one client listener per
// requested security mode (and, for the tests only, TLS listeners serving an expired or a
// not-yet-valid broker certificate: TEST_LISTENERS). Certificates are made with openssl in
// `dir` (kafkaCerts.ts: a CA, broker and client certificates, an unrelated CA). SCRAM users
// are added at format time (StorageTool --add-scram), PLAIN users in the listener's JAAS line.
// Readiness: the node answers Metadata on INTERNAL listing every node (kcat -L), not a log line.
import { mkdirSync, writeFileSync, existsSync, rmSync, openSync, closeSync } from "node:fs";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { ConfigResourceTypes, Kafka, logLevel } from "kafkajs";
import { makeCertificates, type Files } from "./kafkaCerts.ts";

export type { Files } from "./kafkaCerts.ts";

export const SECURITY_MODES = [
  "plaintext",
  "ssl",
  "mtls",
  "sasl-plain",
  "sasl-scram-256",
  "sasl-scram-512",
  "sasl-ssl-scram-512",
] as const;
/**
 * Listeners only the tests open (scripts/kafka.ts offers SECURITY_MODES alone): TLS like `ssl`,
 * but serving a broker certificate that expired in 2020, or one valid only from 2099.
 */
export const TEST_LISTENERS = ["ssl-expired-cert", "ssl-not-yet-valid-cert"] as const;
export type SecurityMode = (typeof SECURITY_MODES)[number] | (typeof TEST_LISTENERS)[number];

const ROOT = resolve(import.meta.dir, "../..");
export const KAFKA_LIBS = join(ROOT, ".kafka", "libs");
const CLUSTER_ID = "4L6g3nShT-eMCtK--X86sw"; // any valid base64 UUID; pinned to skip one JVM start
export const USERNAME = "logship";

/** Per mode: the listener name, its security protocol, and SASL mechanism / client auth. */
const LISTENERS: Record<SecurityMode, { name: string; protocol: string; sasl?: string; clientAuth?: boolean; keystore?: keyof Files }> = {
  plaintext: { name: "C_PLAIN", protocol: "PLAINTEXT" },
  ssl: { name: "C_SSL", protocol: "SSL" },
  mtls: { name: "C_MTLS", protocol: "SSL", clientAuth: true },
  "sasl-plain": { name: "C_SASL_PLAIN", protocol: "SASL_PLAINTEXT", sasl: "PLAIN" },
  "sasl-scram-256": { name: "C_SCRAM256", protocol: "SASL_PLAINTEXT", sasl: "SCRAM-SHA-256" },
  "sasl-scram-512": { name: "C_SCRAM512", protocol: "SASL_PLAINTEXT", sasl: "SCRAM-SHA-512" },
  "sasl-ssl-scram-512": { name: "C_SASL_SSL", protocol: "SASL_SSL", sasl: "SCRAM-SHA-512" },
  "ssl-expired-cert": { name: "C_SSL_EXPIRED", protocol: "SSL", keystore: "expiredBrokerKeystore" },
  "ssl-not-yet-valid-cert": { name: "C_SSL_FUTURE", protocol: "SSL", keystore: "notYetValidBrokerKeystore" },
};

/** What a client of one mode needs, with the names scripts/kafka.ts prints. */
export interface ClientEnv {
  BOOTSTRAP: string;
  CA?: string;
  CLIENT_CERT?: string;
  CLIENT_KEY?: string;
  USERNAME?: string;
  PASSWORD?: string;
}

export interface RealClusterOptions {
  brokers?: 1 | 3;
  /** Client listeners to open; the first is the CLI's. Default: plaintext. */
  modes?: SecurityMode[];
  /** Working directory (certs, configs, log dirs); created; default a fresh dir under /tmp. */
  dir?: string;
  /** Extra broker properties, e.g. auto.create.topics.enable=false. */
  props?: Record<string, string | number | boolean>;
  /** Milliseconds to wait for the cluster to be ready. Default 90 s. */
  readyTimeoutMs?: number;
}

export interface RealCluster {
  readonly dir: string;
  readonly password: string;
  readonly files: Files;
  /** Plaintext bootstrap of the inter-broker listener: for admin work in tests only. */
  readonly internalBootstrap: string;
  env(mode: SecurityMode): ClientEnv;
  /**
   * Makes every node's `mode` listener serve `keystore` (a PEM key and certificate of the same
   * name and SANs as the broker's) from now on: Kafka's dynamic per-broker update, through the
   * internal listener, no restart. Resolves once every node accepted it.
   */
  setKeystore(mode: SecurityMode, keystore: string): Promise<void>;
  /** kcat -X options that connect in `mode`. */
  kcatArgs(mode: SecurityMode): string[];
  /** Creates a topic through the internal listener (kafkajs admin); waits until its leaders are known. */
  createTopic(name: string, opts?: { partitions?: number; replicationFactor?: number; config?: Record<string, string> }): Promise<void>;
  /** The node id leading `partition` of `topic` (kcat -L on the internal listener). */
  leaderOf(topic: string, partition?: number): Promise<number>;
  /** SIGKILL node n (1-based). */
  kill(n: number): void;
  /**
   * Start nodes again (same log dirs) and wait until they are back in the cluster. Nodes that
   * must come back together to form a quorum (e.g. all 3 after all were killed) are passed together.
   */
  start(...n: number[]): Promise<void>;
  /** Node ids that currently run. */
  running(): number[];
  /** SIGTERM every node (SIGKILL after graceMs, default 10 s; 0 = SIGKILL at once), then wait. */
  stop(graceMs?: number): Promise<void>;
}

/** `n` distinct free loopback ports: all listened on at once, so none is handed out twice. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((res, rej) => {
      const srv = createServer();
      srv.on("error", rej);
      srv.listen(0, "127.0.0.1", () => res(srv));
    })),
  );
  const ports = servers.map((srv) => {
    const addr = srv.address();
    return typeof addr === "object" && addr ? addr.port : 0;
  });
  await Promise.all(servers.map((srv) => new Promise((res) => srv.close(res))));
  return ports;
}

interface Node {
  id: number;
  internal: number;
  controller: number;
  client: Map<SecurityMode, number>;
  config: string;
  proc?: ReturnType<typeof Bun.spawn>;
}

const live = new Set<ReturnType<typeof Bun.spawn>>();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL"); // never leave a JVM behind
});

function javaCmd(dir: string, main: string, args: string[]): string[] {
  return [
    "java", "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
    `-Dlog4j2.configurationFile=${join(dir, "log4j2.properties")}`, "-cp", `${KAFKA_LIBS}/*`, main, ...args,
  ];
}

async function waitForBrokers(bootstrap: string, count: number, timeoutMs: number, alive: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const dead = alive();
    if (dead) throw new Error(dead);
    const p = Bun.spawn(["kcat", "-L", "-J", "-b", bootstrap, "-m", "2"], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    try {
      const md = JSON.parse(out) as { brokers: unknown[] };
      if (md.brokers.length >= count) return;
      last = `${md.brokers.length} of ${count} brokers`;
    } catch {
      last = err.trim().split("\n").pop() ?? "";
    }
    await Bun.sleep(300);
  }
  throw new Error(`Kafka not ready after ${timeoutMs} ms (${last})`);
}

export async function startRealCluster(opts: RealClusterOptions = {}): Promise<RealCluster> {
  if (!existsSync(KAFKA_LIBS)) {
    throw new Error(`no Kafka jars in ${KAFKA_LIBS}: run bash scripts/setup.sh --real-kafka (npm test does)`);
  }
  const count = opts.brokers ?? 1;
  const modes = opts.modes?.length ? opts.modes : (["plaintext"] as SecurityMode[]);
  const dir = resolve(opts.dir ?? join("/tmp", `logship-kafka-${process.pid}-${randomBytes(3).toString("hex")}`));
  mkdirSync(dir, { recursive: true });
  const certs = makeCertificates(join(dir, "certs"));
  const password = randomBytes(12).toString("hex");
  writeFileSync(join(dir, "log4j2.properties"), "rootLogger.level=WARN\nrootLogger.appenderRef.out.ref=OUT\nappender.out.type=Console\nappender.out.name=OUT\nappender.out.layout.type=PatternLayout\nappender.out.layout.pattern=[%d] %p %m (%c)%n\n");

  const nodes: Node[] = [];
  const ports = await freePorts(count * (2 + modes.length));
  const port = () => ports.pop()!;
  for (let id = 1; id <= count; id++) {
    const client = new Map<SecurityMode, number>();
    for (const m of modes) client.set(m, port());
    nodes.push({ id, internal: port(), controller: port(), client, config: join(dir, `node${id}.properties`) });
  }
  const voters = nodes.map((n) => `${n.id}@127.0.0.1:${n.controller}`).join(",");
  const rf = count === 3 ? 3 : 1;
  for (const n of nodes) {
    const listeners = [`INTERNAL://127.0.0.1:${n.internal}`, `CONTROLLER://127.0.0.1:${n.controller}`];
    const advertised = [`INTERNAL://127.0.0.1:${n.internal}`];
    const protoMap = ["INTERNAL:PLAINTEXT", "CONTROLLER:PLAINTEXT"];
    const extra: string[] = [];
    for (const m of modes) {
      const l = LISTENERS[m];
      const port = n.client.get(m);
      listeners.push(`${l.name}://127.0.0.1:${port}`);
      advertised.push(`${l.name}://127.0.0.1:${port}`);
      protoMap.push(`${l.name}:${l.protocol}`);
      const pre = `listener.name.${l.name.toLowerCase()}`;
      if (l.clientAuth) extra.push(`${pre}.ssl.client.auth=required`);
      if (l.keystore) extra.push(`${pre}.ssl.keystore.type=PEM`, `${pre}.ssl.keystore.location=${certs[l.keystore]}`);
      if (l.sasl) {
        extra.push(`${pre}.sasl.enabled.mechanisms=${l.sasl}`);
        const mech = l.sasl.toLowerCase();
        extra.push(
          l.sasl === "PLAIN"
            ? `${pre}.${mech}.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${USERNAME}="${password}";`
            : `${pre}.${mech}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
        );
      }
    }
    const props: Record<string, string | number | boolean> = {
      "process.roles": "broker,controller",
      "node.id": n.id,
      "controller.quorum.voters": voters,
      listeners: listeners.join(","),
      "advertised.listeners": advertised.join(","),
      "listener.security.protocol.map": protoMap.join(","),
      "controller.listener.names": "CONTROLLER",
      "inter.broker.listener.name": "INTERNAL",
      "log.dirs": join(dir, `data${n.id}`),
      "num.partitions": 1,
      "default.replication.factor": rf,
      "min.insync.replicas": count === 3 ? 2 : 1,
      "offsets.topic.replication.factor": rf,
      "transaction.state.log.replication.factor": rf,
      "transaction.state.log.min.isr": count === 3 ? 2 : 1,
      "share.coordinator.state.topic.replication.factor": rf,
      "share.coordinator.state.topic.min.isr": count === 3 ? 2 : 1,
      "group.initial.rebalance.delay.ms": 0,
      "log.cleaner.dedupe.buffer.size": 2097152,
      "num.network.threads": 2,
      "num.io.threads": 2,
      "ssl.keystore.type": "PEM",
      "ssl.keystore.location": certs.brokerKeystore,
      "ssl.truststore.type": "PEM",
      "ssl.truststore.location": certs.ca,
      ...opts.props,
    };
    const text = Object.entries(props).map(([k, v]) => `${k}=${v}`).concat(extra).join("\n") + "\n";
    writeFileSync(n.config, text);
  }

  // Format every node's storage (same cluster id, same SCRAM users), in parallel.
  const scram = modes.some((m) => LISTENERS[m].sasl?.startsWith("SCRAM"))
    ? ["SCRAM-SHA-256", "SCRAM-SHA-512"].flatMap((mech) => ["--add-scram", `${mech}=[name=${USERNAME},password="${password}"]`])
    : [];
  await Promise.all(
    nodes.map(async (n) => {
      const p = Bun.spawn(javaCmd(dir, "kafka.tools.StorageTool", ["format", "-t", CLUSTER_ID, "-c", n.config, "--ignore-formatted", ...scram]), {
        stdout: "pipe", stderr: "pipe", stdin: "ignore",
      });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      if (code !== 0) throw new Error(`StorageTool format node ${n.id}: exit ${code}: ${err.trim() || out.trim()}`);
    }),
  );

  const internalBootstrap = nodes.map((n) => `127.0.0.1:${n.internal}`).join(",");
  const spawnNode = (n: Node) => {
    const log = openSync(join(dir, `node${n.id}.log`), "a");
    n.proc = Bun.spawn(javaCmd(dir, "kafka.Kafka", [n.config]), { stdout: log, stderr: log, stdin: "ignore" });
    closeSync(log);
    live.add(n.proc);
    const proc = n.proc;
    void proc.exited.then(() => live.delete(proc));
  };
  const deadNode = (): string | undefined => {
    for (const n of nodes) {
      if (n.proc && n.proc.exitCode !== null && n.proc.signalCode === null) {
        return `Kafka node ${n.id} exited with ${n.proc.exitCode}; see ${join(dir, `node${n.id}.log`)}`;
      }
    }
    return undefined;
  };
  for (const n of nodes) spawnNode(n);
  const readyMs = opts.readyTimeoutMs ?? 90_000;
  try {
    await waitForBrokers(internalBootstrap, count, readyMs, deadNode);
  } catch (e) {
    for (const n of nodes) n.proc?.kill("SIGKILL");
    await Promise.all(nodes.map((n) => n.proc?.exited));
    throw e;
  }

  const files: Files = certs;
  const nodeOf = (i: number): Node => {
    const n = nodes[i - 1];
    if (!n) throw new Error(`no node ${i} (1..${count})`);
    return n;
  };
  const isRunning = (n: Node) => n.proc !== undefined && n.proc.exitCode === null && n.proc.signalCode === null;
  const envOf = (mode: SecurityMode): ClientEnv => {
      const l = LISTENERS[mode];
      if (!nodes[0]?.client.has(mode)) throw new Error(`mode ${mode} was not started`);
      const env: ClientEnv = { BOOTSTRAP: nodes.map((n) => `127.0.0.1:${n.client.get(mode)}`).join(",") };
      if (l.protocol === "SSL" || l.protocol === "SASL_SSL") env.CA = files.ca;
      if (l.clientAuth) {
        env.CLIENT_CERT = files.clientCert;
        env.CLIENT_KEY = files.clientKey;
      }
      if (l.sasl) {
        env.USERNAME = USERNAME;
        env.PASSWORD = password;
      }
      return env;
  };
  return {
    dir,
    password,
    files,
    internalBootstrap,
    env: envOf,
    kcatArgs(mode) {
      const l = LISTENERS[mode];
      const env = envOf(mode);
      const x = (k: string, v: string) => ["-X", `${k}=${v}`];
      const out = [...x("security.protocol", l.protocol.toLowerCase())];
      if (env.CA) out.push(...x("ssl.ca.location", env.CA));
      if (env.CLIENT_CERT && env.CLIENT_KEY) out.push(...x("ssl.certificate.location", env.CLIENT_CERT), ...x("ssl.key.location", env.CLIENT_KEY));
      if (l.sasl) out.push(...x("sasl.mechanisms", l.sasl), ...x("sasl.username", USERNAME), ...x("sasl.password", password));
      return out;
    },
    async setKeystore(mode, keystore) {
      const kafka = new Kafka({ brokers: internalBootstrap.split(","), logLevel: logLevel.NOTHING, clientId: "realKafka-admin" });
      const admin = kafka.admin();
      await admin.connect();
      try {
        const pre = `listener.name.${LISTENERS[mode].name.toLowerCase()}`;
        await admin.alterConfigs({
          validateOnly: false,
          resources: nodes.map((n) => ({
            type: ConfigResourceTypes.BROKER,
            name: String(n.id),
            configEntries: [{ name: `${pre}.ssl.keystore.type`, value: "PEM" }, { name: `${pre}.ssl.keystore.location`, value: keystore }],
          })),
        });
      } finally {
        await admin.disconnect();
      }
    },
    async createTopic(name, topicOpts = {}) {
      const kafka = new Kafka({ brokers: internalBootstrap.split(","), logLevel: logLevel.NOTHING, clientId: "realKafka-admin" });
      const admin = kafka.admin();
      await admin.connect();
      try {
        await admin.createTopics({
          waitForLeaders: true,
          topics: [{
            topic: name,
            numPartitions: topicOpts.partitions ?? 1,
            replicationFactor: topicOpts.replicationFactor ?? count,
            configEntries: Object.entries(topicOpts.config ?? {}).map(([k, v]) => ({ name: k, value: v })),
          }],
        });
      } finally {
        await admin.disconnect();
      }
    },
    async leaderOf(topic, partition = 0) {
      const p = Bun.spawn(["kcat", "-L", "-J", "-b", internalBootstrap, "-t", topic, "-m", "5"], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
      const [out] = await Promise.all([new Response(p.stdout).text(), p.exited]);
      const md = JSON.parse(out) as { topics: { topic: string; partitions: { partition: number; leader: number }[] }[] };
      const leader = md.topics.find((t) => t.topic === topic)?.partitions.find((q) => q.partition === partition)?.leader;
      if (leader === undefined) throw new Error(`no leader known for ${topic}/${partition}`);
      return leader;
    },
    kill(i) {
      const n = nodeOf(i);
      n.proc?.kill("SIGKILL");
    },
    async start(...ids) {
      const starting = ids.map(nodeOf).filter((n) => !isRunning(n));
      for (const n of starting) {
        await n.proc?.exited;
        spawnNode(n);
      }
      const running = nodes.filter(isRunning).length;
      await Promise.all(starting.map((n) => waitForBrokers(`127.0.0.1:${n.internal}`, running, readyMs, deadNode)));
    },
    running() {
      return nodes.filter(isRunning).map((n) => n.id);
    },
    async stop(graceMs = 10_000) {
      const procs = nodes.map((n) => n.proc).filter((p): p is NonNullable<typeof p> => p !== undefined && p.exitCode === null);
      for (const p of procs) p.kill(graceMs === 0 ? "SIGKILL" : "SIGTERM");
      const timer = graceMs > 0 ? setTimeout(() => procs.forEach((p) => p.kill("SIGKILL")), graceMs) : undefined;
      await Promise.all(procs.map((p) => p.exited));
      if (timer) clearTimeout(timer);
    },
  };
}

/** Removes a cluster's directory (after stop). */
export function removeClusterDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
