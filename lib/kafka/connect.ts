// `logship check --connect`, like `filebeat test output`: connects with the configured brokers
// and security and reports, one line each, what shipping needs: SASL, each broker reached
// (TLS, SASL, and the Kafka release its ApiVersions answer fits, releases.ts), and each
// configured topic (exists, partitions, leaders, whether this client may write to it, or
// whether the broker would create it). Nothing is produced. Bounded: about 30 s when no broker
// answers.
//
// kafkajs' admin client proves the bootstrap connection and SASL, and lists the cluster's
// brokers; each broker is then reached directly as kafkajs' producer would reach it (a kafkajs
// Broker: TLS, ApiVersions, SASL; metadata-v8.ts). Write permission comes from a Metadata v8
// request with include_topic_authorized_operations, sent to the first broker reached; a broker
// whose Metadata stops below v8 (Kafka older than 2.3) leaves it "unknown: broker too old".
// With kafka.idempotent, the first broker is asked for a producer id (InitProducerId), as
// `run` asks it: a principal without the right gets a FAIL with what to grant. Nothing here
// creates a topic: kafkajs' admin and the v8 request both send allow_auto_topic_creation=false.

import { ConfigResourceTypes, Kafka, logLevel } from "kafkajs";
import type { AgentConfig } from "../config.ts";
import { INIT_PRODUCER_ID, initProducerIdRequest, NO_INIT_PRODUCER_ID } from "./idempotence.ts";
import { connectBroker, mayWrite, type RawBroker, type TopicAccess } from "./metadata-v8.ts";
import { installKafkajsPatches } from "./patches/index.ts";
import { saslOptions, tlsOptions, toPublishError } from "./publish.ts";
import { kafkaRelease } from "./releases.ts";

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

const API = { Produce: 0, Metadata: 3 } as const;

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
  const sasl = saslOptions(k);
  const perStep = Math.min(10_000, timeoutMs / 3);
  const kafka = new Kafka({
    clientId: `${k.client_id}-check`,
    brokers: k.brokers,
    logLevel: logLevel.NOTHING,
    ssl: tls,
    sasl,
    connectionTimeout: Math.min(5_000, perStep),
    requestTimeout: perStep,
    retry: { retries: 1, initialRetryTime: 200, maxRetryTime: 1_000 },
  });
  const admin = kafka.admin();
  const opened: RawBroker[] = [];
  let finished = false;
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
    // 2. Every broker of the cluster, directly, as the producer reaches it.
    const cluster = await admin.describeCluster();
    const reached = await Promise.all(
      cluster.brokers.map(async (b) => {
        try {
          const broker = await connectBroker(b.host, b.port, { clientId: `${k.client_id}-check`, ssl: tls, sasl, timeoutMs: perStep });
          if (finished) void broker.close(); // reached after the deadline: nobody reads it
          else opened.push(broker);
          const v = broker.versions;
          const produce = v.get(API.Produce);
          const metadata = v.get(API.Metadata);
          const okProduce = produce !== undefined && produce[1] >= 3; // kafkajs sends Produce v3..v7
          add(okProduce, `broker ${b.nodeId} at ${b.host}:${b.port}: reached${tls ? " over TLS" : ""}${sasl ? ", SASL authenticated" : ""}; ${kafkaRelease(v)} (Produce v${produce?.[0]}–v${produce?.[1]}, Metadata v${metadata?.[0]}–v${metadata?.[1]}, ${v.size} APIs)`);
          return okProduce ? broker : undefined;
        } catch (err) {
          add(false, `broker ${b.nodeId} at ${b.host}:${b.port}: ${why(err)}`);
          return undefined;
        }
      }),
    );
    const first = reached[0];
    if (!first || reached.some((r) => r === undefined)) return;
    // The idempotent producer's id (kafka.idempotent): asked as `run` asks it; it writes nothing.
    if (k.idempotent) {
      const init = first.versions.get(INIT_PRODUCER_ID);
      if (!init) add(false, `idempotent producer: the broker ${NO_INIT_PRODUCER_ID}`);
      else {
        try {
          // A broker just started answers COORDINATOR_LOAD_IN_PROGRESS (retriable) for a while, as `run` would see.
          for (const until = Date.now() + perStep; ; await Bun.sleep(200)) {
            try {
              await first.send(initProducerIdRequest(Math.min(1, init[1])));
              break;
            } catch (err) {
              if (!(err as { retriable?: boolean }).retriable || Date.now() > until) throw err;
            }
          }
          add(true, "idempotent producer: a producer id was granted (InitProducerId)");
        } catch (err) {
          add(false, `idempotent producer: ${why(err)}`); // a refusal says what to grant (idempotence.ts)
        }
      }
    }
    // 3. The topics: exist (partitions, leaders, may this client write) or would be created on the first send.
    const topics = [...new Set([...(k.topic ? [k.topic] : []), ...config.inputs.map((i) => i.topic)])];
    let access: Map<string, TopicAccess> | undefined;
    let noAccess = "";
    const metadataMax = first.versions.get(API.Metadata)?.[1] ?? -1;
    if (metadataMax < 8) noAccess = `write permission unknown: broker too old (its Metadata stops at v${metadataMax}; authorized operations need v8, Kafka 2.3 or later)`;
    else {
      try {
        access = new Map((await first.topicAccess(topics)).map((t) => [t.name, t]));
      } catch (err) {
        noAccess = `write permission unknown: ${why(err)}`;
      }
    }
    const existing = access ? undefined : new Set(await admin.listTopics());
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
    const missing = async (t: string) => {
      const notThere = access ? "does not exist" : "does not exist (or may not be described by this user)";
      const ac = await autoCreation();
      if (ac === "true") add(true, `topic ${t}: does not exist yet; the broker creates it on the first send (auto.create.topics.enable=true)`);
      else if (ac === "false") add(false, `topic ${t}: ${notThere} and auto.create.topics.enable=false: create it`);
      else lines.push({ ok: true, warn: true, text: `topic ${t}: ${notThere}; whether the broker creates it is not known: auto.create.topics.enable=${ac}` });
    };
    const exists = (t: string, parts: { leader: number }[], write: boolean | undefined) => {
      const leaderless = parts.filter((p) => p.leader < 0).length;
      const where = `topic ${t}: exists, ${parts.length} partition${parts.length === 1 ? "" : "s"}${leaderless ? `, ${leaderless} without a leader` : ", every partition has a leader"}`;
      if (write === false) add(false, `${where}; may not write: the broker's ACLs deny WRITE to this client (shipping fails with TOPIC_AUTHORIZATION_FAILED)`);
      else if (write) add(leaderless === 0, `${where}; may write`);
      else lines.push({ ok: leaderless === 0, warn: leaderless === 0, text: `${where}; ${noAccess || "write permission unknown: the broker did not report authorized operations"}` });
    };
    for (const t of topics) {
      if (access) {
        const a = access.get(t);
        if (!a) add(false, `topic ${t}: the broker's Metadata answer does not mention it`);
        else if (a.errorCode === 0) exists(t, a.partitions, mayWrite(a.authorizedOperations));
        else if (a.error === "UNKNOWN_TOPIC_OR_PARTITION") await missing(t);
        else if (a.error === "TOPIC_AUTHORIZATION_FAILED") add(false, `topic ${t}: may not write: this client may not even describe it (TOPIC_AUTHORIZATION_FAILED)`);
        else add(false, `topic ${t}: ${a.error}`);
        continue;
      }
      if (!existing!.has(t)) {
        await missing(t);
        continue;
      }
      try {
        const md = await admin.fetchTopicMetadata({ topics: [t] });
        exists(t, md.topics[0]?.partitions ?? [], undefined);
      } catch (err) {
        add(false, `topic ${t}: ${why(err)}`);
      }
    }
  };
  const outcome = await Promise.race([run().then(() => "done" as const), deadline]);
  if (outcome === "timeout") add(false, `gave up after ${Math.round(timeoutMs / 1000)} s without an answer from ${k.brokers.join(",")}`);
  finished = true;
  void admin.disconnect().catch(() => {});
  for (const b of opened) void b.close();
  return { ok: lines.length > 0 && lines.every((l) => l.ok), lines };
}
