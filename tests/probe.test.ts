// A broker address that is not Kafka (issue 11, item 22): kafkajs says only "Broker not
// connected" or "Closed connection"; the publisher's error then names what answered there.
// Servers on loopback stand in for an HTTP server, an SSH server and a Kafka broker.
import { afterAll, expect, test } from "bun:test";
import { DEFAULTS, type KafkaConfig } from "../lib/config.ts";
import { describeAnswer, probe } from "../lib/kafka/probe.ts";
import { KafkaPublisher } from "../lib/kafka/publish.ts";
import type { Chunk } from "../lib/kafka/pack.ts";

const http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("hello") });
const httpPort = http.port!;
const ssh = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => void s.write("SSH-2.0-OpenSSH_9.6\r\n"), data: () => {} } });
// Answers a Kafka request's header like a broker: size, then the request's correlation id.
const kafkaLike = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    data: (s, b) => {
      const reply = Buffer.alloc(10);
      reply.writeInt32BE(6, 0);
      reply.writeInt32BE(Buffer.from(b).readInt32BE(8), 4);
      s.write(reply);
    },
  },
});
afterAll(() => {
  http.stop(true);
  ssh.stop(true);
  kafkaLike.stop(true);
});

const chunk: Chunk = { source: { file: "f", path: "/var/log/a.log", topic: "logs", host: "h" }, value: Buffer.from("a line\n"), start: 0, end: 7, lines: 1, size: 200 };

async function sendError(port: number): Promise<string> {
  const p = new KafkaPublisher({ ...DEFAULTS.kafka, brokers: [`127.0.0.1:${port}`], topic: "logs", request_timeout: 2_000 } as KafkaConfig);
  try {
    await p.send([chunk]);
  } catch (err) {
    return (err as Error).message;
  } finally {
    await p.close();
  }
  throw new Error("the send succeeded");
}

test("a send to an HTTP or an SSH port says that the address is not a Kafka broker and what answered", async () => {
  // kafkajs' message names the broker since kafka/publish.ts' error mapping ("… (broker HOST:PORT)"); the probe's finding follows.
  expect(await sendError(httpPort)).toMatch(new RegExp(`^(Closed connection|Broker not connected|Connection closed)( \\(broker 127\\.0\\.0\\.1:${httpPort}\\))? \\(127\\.0\\.0\\.1:${httpPort} is not a Kafka broker: it answered like an HTTP server \\("HTTP/1\\.1 400`));
  expect(await sendError(ssh.port)).toMatch(new RegExp(`^(Closed connection|Broker not connected|Connection closed)( \\(broker 127\\.0\\.0\\.1:${ssh.port}\\))? \\(127\\.0\\.0\\.1:${ssh.port} is not a Kafka broker: it answered like an SSH server \\("SSH-2\\.0-OpenSSH_9\\.6"\\)\\)$`));
}, 30_000);

test("probe: a Kafka-like answer is no finding; refused connections are left to kafkajs' message", async () => {
  expect(await probe(`127.0.0.1:${kafkaLike.port}`)).toBeNull();
  expect(await probe("127.0.0.1:1")).toBeNull();
  expect(describeAnswer(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]))).toBe("it answered with a TLS alert: it expects TLS");
  expect(describeAnswer(Buffer.alloc(0))).toBe("it closed the connection without answering a Kafka request");
});
