// Tests for the test-cluster helpers: librdkafka mock cluster over bun:ffi,
// kcat read-back, the eventually() poller and the out-of-process mock.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { Kafka, KafkaJSProtocolError, logLevel, Partitioners, type Message, type Producer } from "kafkajs";
import { consumeAll, listTopics } from "./helpers/consume.ts";
import { eventually } from "./helpers/eventually.ts";
import { ApiKey, KafkaErr, startMockCluster, type MockCluster } from "./helpers/mockCluster.ts";
import { spawnMockCluster } from "./helpers/mockProcess.ts";

const NASTY_VALUE = Buffer.concat([
  Buffer.from("line one\r\nline two\0after-nul "),
  Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3]), // invalid UTF-8
  Buffer.from(' "quoted" \\ \t end'),
]);

/** A kafkajs producer that fails fast: no retries, short timeouts. */
async function connectProducer(bootstraps: string): Promise<Producer> {
  const kafka = new Kafka({
    clientId: "mock-cluster-test",
    brokers: bootstraps.split(","),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 300,
    requestTimeout: 1000,
    retry: { retries: 0 },
  });
  const producer = kafka.producer({ retry: { retries: 0 }, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  return producer;
}

async function send(producer: Producer, topic: string, messages: Message[]): Promise<void> {
  await producer.send({ topic, acks: -1, timeout: 1000, messages });
}

/** Resolves with the rejection reason, fails the test if `p` resolves. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected the promise to reject");
}

describe("startMockCluster (in process)", () => {
  // One cluster per describe: closing a librdkafka 2.0.2 mock can block up to
  // 1 s (see mockCluster.ts), so tests share it and use their own topics.
  let cluster: MockCluster; // 3 brokers
  let single: MockCluster; // 1 broker, for broker-level faults
  let producer: Producer | undefined;

  beforeAll(() => {
    cluster = startMockCluster({ brokers: 3 });
    single = startMockCluster({ brokers: 1 });
  });
  afterAll(() => {
    cluster.close();
    single.close();
  });
  afterEach(async () => {
    await producer?.disconnect();
    producer = undefined;
  });

  test("bootstraps lists one loopback address per broker", () => {
    expect(cluster.bootstraps).toMatch(/^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2}$/);
    expect(single.bootstraps).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  test("serves other clients while the JS thread is blocked", () => {
    cluster.createTopic("blocked-js");
    const proc = Bun.spawnSync(["kcat", "-L", "-J", "-q", "-b", cluster.bootstraps, "-m", "5"]);
    expect(proc.exitCode).toBe(0);
    const topics = (JSON.parse(proc.stdout.toString()) as { topics: { topic: string }[] }).topics;
    expect(topics.map((t) => t.topic)).toContain("blocked-js");
  });

  test("kafkajs produces with headers; consumeAll reads back byte-exactly", async () => {
    cluster.createTopic("exact", 3);
    producer = await connectProducer(cluster.bootstraps);
    const messages: Message[] = Array.from({ length: 12 }, (_, i) => ({
      key: `key-${i}`,
      value: i === 5 ? NASTY_VALUE : `value ${i}`,
      partition: i % 3,
      headers: { seq: String(i), "odd,name=x": "v,a=l\nue é", nul: "a\0b" },
    }));
    await send(producer, "exact", messages);

    const records = await consumeAll(cluster.bootstraps, "exact");
    expect(records.map((r) => [r.partition, r.offset])).toEqual(
      [0, 1, 2].flatMap((p) => [0, 1, 2, 3].map((o) => [p, o])),
    );
    for (const r of records) {
      const i = Number(r.headers.seq);
      const sent = messages[i]!;
      expect(r.partition).toBe(i % 3);
      expect(r.key).toBe(`key-${i}`);
      expect(r.value.equals(Buffer.from(sent.value as string | Buffer))).toBe(true);
      expect(r.headers).toEqual({ seq: String(i), "odd,name=x": "v,a=l\nue é", nul: "a\0b" });
    }
    expect(records.find((r) => r.headers.seq === "5")!.value).toEqual(NASTY_VALUE);
  });

  test("consumeAll returns [] for a missing topic without creating it", async () => {
    expect(await consumeAll(cluster.bootstraps, "never-written")).toEqual([]);
    expect(await listTopics(cluster.bootstraps)).not.toContain("never-written");
  });

  test("brokerDown fails a send, brokerUp lets it succeed", async () => {
    single.createTopic("flaky");
    producer = await connectProducer(single.bootstraps);
    await send(producer, "flaky", [{ value: "before" }]);
    single.brokerDown(1);
    try {
      expect(await rejection(send(producer, "flaky", [{ value: "while down" }]))).toBeInstanceOf(Error);
    } finally {
      single.brokerUp(1);
    }
    await eventually(async () => (await send(producer!, "flaky", [{ value: "after" }]), true), {
      timeoutMs: 3000,
      message: "send after brokerUp",
    });
    const values = (await consumeAll(single.bootstraps, "flaky")).map((r) => r.value.toString());
    expect(values).toEqual(["before", "after"]);
  });

  test("pushRequestErrors(Produce, [MSG_SIZE_TOO_LARGE]) fails exactly one send", async () => {
    cluster.createTopic("big");
    producer = await connectProducer(cluster.bootstraps);
    cluster.pushRequestErrors(ApiKey.Produce, [KafkaErr.MSG_SIZE_TOO_LARGE]);
    const err = await rejection(send(producer, "big", [{ value: "rejected" }]));
    expect(err).toBeInstanceOf(KafkaJSProtocolError);
    expect((err as KafkaJSProtocolError).type).toBe("MESSAGE_TOO_LARGE");
    await send(producer, "big", [{ value: "accepted" }]);
    const values = (await consumeAll(cluster.bootstraps, "big")).map((r) => r.value.toString());
    expect(values).toEqual(["accepted"]);
  });

  test("clearRequestErrors drops pending injected errors", async () => {
    cluster.createTopic("cleared");
    producer = await connectProducer(cluster.bootstraps);
    cluster.pushRequestErrors(ApiKey.Produce, [KafkaErr.NOT_ENOUGH_REPLICAS, KafkaErr.NOT_ENOUGH_REPLICAS]);
    cluster.clearRequestErrors(ApiKey.Produce);
    await send(producer, "cleared", [{ value: "ok" }]);
    expect((await consumeAll(cluster.bootstraps, "cleared")).length).toBe(1);
  });

  test("setRtt delays responses", async () => {
    single.createTopic("slow");
    producer = await connectProducer(single.bootstraps);
    single.setRtt(1, 200);
    try {
      const t0 = performance.now();
      await send(producer, "slow", [{ value: "x" }]);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(180);
    } finally {
      single.setRtt(1, 0);
    }
  });

  test("setTopicError fails metadata for that topic", async () => {
    cluster.createTopic("forbidden");
    cluster.setTopicError("forbidden", KafkaErr.TOPIC_AUTHORIZATION_FAILED);
    producer = await connectProducer(cluster.bootstraps);
    const err = await rejection(send(producer, "forbidden", [{ value: "y" }]));
    expect(String(err)).toMatch(/authoriz/i);
  });

  test("broker id and duplicate topic errors throw; close is idempotent", () => {
    cluster.createTopic("dup");
    expect(() => cluster.createTopic("dup")).toThrow(/TOPIC_ALREADY_EXISTS/);
    expect(() => cluster.brokerDown(42)).toThrow(/brokerDown\(42\)/);
    const other = startMockCluster();
    other.close();
    other.close();
    expect(() => other.brokerDown(1)).toThrow(/closed/);
  });
});

describe("eventually", () => {
  test("returns the first truthy value, retrying throws and falsy values", async () => {
    let calls = 0;
    const value = await eventually(
      () => {
        calls++;
        if (calls === 1) throw new Error("not yet");
        return calls >= 3 ? `done after ${calls}` : 0;
      },
      { intervalMs: 5 },
    );
    expect(value).toBe("done after 3");
  });

  test("throws with message and last error on timeout", async () => {
    const err = await rejection(
      eventually(
        () => {
          throw new Error("still broken");
        },
        { timeoutMs: 60, intervalMs: 10, message: "widget ready" },
      ),
    );
    expect(String(err)).toContain("widget ready");
    expect(String(err)).toContain("still broken");
  });
});

describe("spawnMockCluster (separate process)", () => {
  test("serves kafkajs, answers fault-injection commands, exits on close", async () => {
    const mock = await spawnMockCluster({ brokers: 1, topics: ["remote:2"] });
    let producer: Producer | undefined;
    try {
      expect(mock.bootstraps).toMatch(/^127\.0\.0\.1:\d+$/);
      producer = await connectProducer(mock.bootstraps);
      await send(producer, "remote", [{ value: "p0", partition: 0 }, { value: "p1", partition: 1 }]);
      expect((await consumeAll(mock.bootstraps, "remote")).map((r) => [r.partition, r.value.toString()])).toEqual([
        [0, "p0"],
        [1, "p1"],
      ]);

      expect(await mock.command("errors Produce MSG_SIZE_TOO_LARGE")).toBe("ok");
      const err = await rejection(send(producer, "remote", [{ value: "no" }]));
      expect((err as KafkaJSProtocolError).type).toBe("MESSAGE_TOO_LARGE");

      expect(await mock.command("down 1")).toBe("ok");
      expect(await rejection(send(producer, "remote", [{ value: "down" }]))).toBeInstanceOf(Error);
      expect(await mock.command("up 1")).toBe("ok");
      await eventually(async () => (await send(producer!, "remote", [{ value: "up", partition: 0 }]), true), {
        timeoutMs: 3000,
      });

      expect(await mock.command("rtt 1 0")).toBe("ok");
      expect(await mock.command("clear 0")).toBe("ok");
      expect(await mock.command("down 9")).toMatch(/^error: /);
      expect(await mock.command("frobnicate")).toMatch(/^error: unknown command/);
    } finally {
      await producer?.disconnect();
      await mock.close();
    }
    const [host, port] = mock.bootstraps.split(":");
    const connect = Bun.connect({ hostname: host!, port: Number(port), socket: { data() {} } });
    expect(await rejection(connect)).toBeInstanceOf(Error); // listener is gone
  });
});
