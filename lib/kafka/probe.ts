// What listens at a broker address that does not talk Kafka. kafkajs reports a port that
// is not Kafka's only as "Broker not connected" or "Closed connection"; probe() sends one
// Kafka ApiVersions request there and names what answered instead (an HTTP or SSH server,
// TLS, silence), so the operator learns that the address, not Kafka, is wrong.

import { connect } from "node:net";

const PROBE_MS = 2_000;
const CORRELATION = 0x6c6f6773; // "logs"

/** One ApiVersions v0 request: length, api key 18, version 0, correlation id, client id. */
function apiVersionsRequest(): Buffer {
  const client = Buffer.from("logship-probe");
  const body = Buffer.alloc(2 + 2 + 4 + 2 + client.length);
  body.writeInt16BE(18, 0);
  body.writeInt16BE(0, 2);
  body.writeInt32BE(CORRELATION, 4);
  body.writeInt16BE(client.length, 8);
  client.copy(body, 10);
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length, 0);
  return Buffer.concat([size, body]);
}

/** What `bytes` (the first answer of a server to a Kafka request) look like; null when it is a Kafka response. */
export function describeAnswer(bytes: Buffer): string | null {
  if (bytes.length >= 8 && bytes.readInt32BE(4) === CORRELATION && bytes.readInt32BE(0) > 0 && bytes.readInt32BE(0) < 64 * 1024 * 1024) return null;
  const text = bytes.subarray(0, 40).toString("latin1");
  const firstLine = JSON.stringify(text.split(/\r?\n/)[0]);
  if (text.startsWith("HTTP/")) return `it answered like an HTTP server (${firstLine})`;
  if (text.startsWith("SSH-")) return `it answered like an SSH server (${firstLine})`;
  if (bytes[0] === 0x15 && bytes[1] === 0x03) return "it answered with a TLS alert: it expects TLS";
  if (bytes.length === 0) return "it closed the connection without answering a Kafka request";
  return `it answered with bytes that are not a Kafka response (${bytes.subarray(0, 8).toString("hex")})`;
}

/** Why `broker` (HOST:PORT) is not a Kafka broker, or null when it answers like one (or cannot be reached at all). */
export function probe(broker: string): Promise<string | null> {
  const at = broker.lastIndexOf(":");
  const host = broker.slice(0, at).replace(/^\[|\]$/g, "");
  const port = Number(broker.slice(at + 1));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    let connected = false;
    const done = (why: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(connected ? `it accepted a connection but did not answer a Kafka request within ${PROBE_MS / 1000} s` : null), PROBE_MS);
    const socket = connect({ host, port }, () => {
      connected = true;
      socket.write(apiVersionsRequest());
    });
    socket.on("data", (b: Buffer) => {
      chunks.push(b);
      const all = Buffer.concat(chunks);
      if (all.length >= 8 || /^(HTTP\/|SSH-)/.test(all.toString("latin1"))) done(describeAnswer(all));
    });
    socket.on("end", () => done(describeAnswer(Buffer.concat(chunks))));
    socket.on("error", () => done(connected ? describeAnswer(Buffer.concat(chunks)) : null)); // refused, unreachable: kafkajs' message says so
  });
}
