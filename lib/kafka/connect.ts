// `logship check --connect`, like `filebeat test output`: connects with the configured brokers
// and security and reports, one line each, what shipping needs: each broker reached (TLS
// handshake and the Kafka version range from its ApiVersions answer), SASL, and each
// configured topic (exists, partitions, or whether the broker would create it). Nothing is
// produced. Bounded: about 30 s when no broker answers.
//
// ApiVersions is asked on a connection of its own (the request every client sends first, and
// the one a broker answers before SASL), so each broker listed by the cluster is reached
// directly with the configured TLS settings; SASL is proven by kafkajs' admin client, which
// authenticates to the bootstrap broker and to each broker it asks for its configuration.
// The admin client never creates topics (kafkajs' admin sends allow_auto_topic_creation=false).

import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { ConfigResourceTypes, Kafka, logLevel } from "kafkajs";
import type { AgentConfig } from "../config.ts";
import { installKafkajsPatches } from "./patches/index.ts";
import { saslOptions, tlsOptions, toPublishError } from "./publish.ts";

export interface ConnectLine {
  ok: boolean;
  /** ok but not confirmed (e.g. broker settings this user may not read): shown as WARN, exit 0. */
  warn?: boolean;
  text: string;
}

export interface ConnectReport {
  ok: boolean;
  lines: ConnectLine[];
}

/** What a broker's ApiVersions answer says: api key → [min, max]. */
export type ApiVersions = Map<number, [number, number]>;

const API = { Produce: 0, Fetch: 1, Metadata: 3, ApiVersions: 18, DescribeTopicPartitions: 75, AddRaftVoter: 80 } as const;

/**
 * The Kafka releases an ApiVersions answer fits, from API changes that came with a release:
 * Fetch v0–3 were removed in 4.0 (KIP-896), AddRaftVoter came in 3.9 (KIP-853),
 * DescribeTopicPartitions in 3.8 (KIP-966).
 */
export function kafkaVersionRange(v: ApiVersions): string {
  if ((v.get(API.Fetch)?.[0] ?? 0) >= 4) return "Kafka 4.0 or later";
  if (v.has(API.AddRaftVoter)) return "Kafka 3.9";
  if (v.has(API.DescribeTopicPartitions)) return "Kafka 3.8";
  return "Kafka 3.7 or older";
}

/** One ApiVersions v0 request on a fresh connection (TLS when configured). */
export function apiVersions(host: string, port: number, tls: ConnectionOptions | boolean | undefined, timeoutMs: number): Promise<ApiVersions> {
  return new Promise((resolve, reject) => {
    let socket: Socket;
    const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket?.destroy();
      reject(err);
    };
    const clientId = Buffer.from("logship-check");
    const body = Buffer.alloc(10 + clientId.length);
    body.writeInt16BE(API.ApiVersions, 0); // api key
    body.writeInt16BE(0, 2); // version 0
    body.writeInt32BE(1, 4); // correlation id
    body.writeInt16BE(clientId.length, 8);
    clientId.copy(body, 10);
    const request = Buffer.concat([Buffer.alloc(4), body]);
    request.writeInt32BE(body.length, 0);
    let got = Buffer.alloc(0);
    const onConnect = () => socket.write(request);
    if (tls) {
      const opts: ConnectionOptions = { host, port, ...(typeof tls === "object" ? tls : {}) };
      if (!opts.servername && !/^[\d.]+$|:/.test(host)) opts.servername = host;
      socket = tlsConnect(opts, onConnect);
    } else {
      socket = netConnect({ host, port }, onConnect);
    }
    socket.on("error", (err) => fail(Object.assign(new Error(`Connection error: ${err.message}`), { name: "KafkaJSConnectionError", broker: `${host}:${port}`, code: (err as NodeJS.ErrnoException).code })));
    socket.on("close", () => fail(Object.assign(new Error("Closed connection"), { name: "KafkaJSConnectionClosedError", broker: `${host}:${port}` })));
    socket.on("data", (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < 4 || got.length < 4 + got.readInt32BE(0)) return;
      clearTimeout(timer);
      socket.removeAllListeners("close");
      socket.destroy();
      try {
        const error = got.readInt16BE(8);
        if (error !== 0) throw new Error(`ApiVersions error code ${error}`);
        const n = got.readInt32BE(10);
        const out: ApiVersions = new Map();
        for (let i = 0, at = 14; i < n; i++, at += 6) out.set(got.readInt16BE(at), [got.readInt16BE(at + 2), got.readInt16BE(at + 4)]);
        resolve(out);
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}

function why(err: unknown): string {
  return toPublishError(err).message;
}

/** Runs every check; resolves within about `timeoutMs` whatever the brokers do. */
export async function checkConnect(config: AgentConfig, timeoutMs = 30_000): Promise<ConnectReport> {
  installKafkajsPatches(); // the idle-queue fix also keeps Bun's TimeoutNegativeWarning off stderr
  const lines: ConnectLine[] = [];
  const add = (ok: boolean, text: string) => lines.push({ ok, text });
  const k = config.kafka;
  const tls = tlsOptions(k);
  const perStep = Math.min(10_000, timeoutMs / 3);
  const kafka = new Kafka({
    clientId: `${k.client_id}-check`,
    brokers: k.brokers,
    logLevel: logLevel.NOTHING,
    ssl: tls,
    sasl: saslOptions(k),
    connectionTimeout: Math.min(5_000, perStep),
    requestTimeout: perStep,
    retry: { retries: 1, initialRetryTime: 200, maxRetryTime: 1_000 },
  });
  const admin = kafka.admin();
  const deadline = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), timeoutMs).unref());
  const run = async () => {
    // 1. The bootstrap brokers: TLS, SASL (kafkajs connects, authenticates and asks ApiVersions).
    try {
      await admin.connect();
      await admin.describeCluster(); // the first request that needs the connection authenticated
    } catch (err) {
      add(false, `connect to ${k.brokers.join(",")}: ${why(err)}`);
      return;
    }
    if (k.sasl) add(true, `SASL ${k.sasl.mechanism} as ${k.sasl.username}: authenticated`);
    // 2. Every broker of the cluster, directly.
    const cluster = await admin.describeCluster();
    const versions = await Promise.all(
      cluster.brokers.map(async (b) => {
        try {
          const v = await apiVersions(b.host, b.port, tls, perStep);
          const produce = v.get(API.Produce);
          const okProduce = produce !== undefined && produce[1] >= 3; // kafkajs sends Produce v3..v7
          add(okProduce, `broker ${b.nodeId} at ${b.host}:${b.port}: reached${tls ? " over TLS" : ""}; ${kafkaVersionRange(v)} (Produce v${produce?.[0]}–v${produce?.[1]}, ${v.size} APIs)`);
          return okProduce;
        } catch (err) {
          add(false, `broker ${b.nodeId} at ${b.host}:${b.port}: ${why(err)}`);
          return false;
        }
      }),
    );
    if (versions.some((ok) => !ok)) return;
    // 3. The topics: exist (partitions, leaders) or would be created on the first send.
    const topics = [...new Set([...(k.topic ? [k.topic] : []), ...config.inputs.map((i) => i.topic)])];
    const existing = new Set(await admin.listTopics());
    let autoCreate: string | undefined;
    const autoCreation = async () => {
      if (autoCreate !== undefined) return autoCreate;
      try {
        const res = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.BROKER, name: String(cluster.controller ?? cluster.brokers[0]!.nodeId), configNames: ["auto.create.topics.enable"] }] });
        autoCreate = res.resources[0]?.configEntries.find((e) => e.configName === "auto.create.topics.enable")?.configValue ?? "unknown";
      } catch (err) {
        autoCreate = `unknown (${why(err)})`;
      }
      return autoCreate;
    };
    for (const t of topics) {
      if (!existing.has(t)) {
        const ac = await autoCreation();
        if (ac === "true") add(true, `topic ${t}: does not exist yet; the broker creates it on the first send (auto.create.topics.enable=true)`);
        else if (ac === "false") add(false, `topic ${t}: does not exist (or may not be described by this user) and auto.create.topics.enable=false: create it`);
        else lines.push({ ok: true, warn: true, text: `topic ${t}: does not exist (or may not be described by this user); whether the broker creates it is not known: auto.create.topics.enable=${ac}` });
        continue;
      }
      try {
        const md = await admin.fetchTopicMetadata({ topics: [t] });
        const parts = md.topics[0]?.partitions ?? [];
        const leaderless = parts.filter((p) => p.leader < 0).length;
        add(leaderless === 0, `topic ${t}: exists, ${parts.length} partition${parts.length === 1 ? "" : "s"}${leaderless ? `, ${leaderless} without a leader` : ", every partition has a leader"}; write permission not checked (kafkajs' Metadata v6 does not report authorized operations)`);
      } catch (err) {
        add(false, `topic ${t}: ${why(err)}`);
      }
    }
  };
  const outcome = await Promise.race([run().then(() => "done" as const), deadline]);
  if (outcome === "timeout") add(false, `gave up after ${Math.round(timeoutMs / 1000)} s without an answer from ${k.brokers.join(",")}`);
  void admin.disconnect().catch(() => {});
  return { ok: lines.length > 0 && lines.every((l) => l.ok), lines };
}
