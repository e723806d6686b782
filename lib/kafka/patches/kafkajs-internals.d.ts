// The shapes of the kafkajs 2.2.4 internals logship's patches (and check --connect's raw
// Metadata v8 request, lib/kafka/metadata-v8.ts) reach into, declared once.
// kafkajs ships types for its public API only; these modules are CommonJS classes under
// kafkajs/src/. Each declaration lists just the fields and methods the patches (and their
// tests) read, replace or call, as kafkajs 2.2.4 defines them. Invariant: a field appears
// here only if kafkajs itself has it; what logship adds to an object (the rope's parts, say)
// is declared beside the patch that adds it. installKafkajsPatches() refuses any other
// kafkajs version, so a change of version brings the reader back here.

declare module "kafkajs/src/protocol/encoder.js" {
  /** kafkajs' wire encoder: a growable buffer written from the front (src/protocol/encoder.js). */
  class Encoder {
    /** Sizes a new encoder's first buffer: constructor allocates nextPowerOfTwo(initialSize) zeroed bytes. */
    static nextPowerOfTwo(value: number): number;
    constructor(initialSize?: number);
    /** The bytes written so far are buf[0, offset). */
    buf: Buffer;
    offset: number;
    /** The bytes written, as one buffer. */
    readonly buffer: Buffer;
    size(): number;
    ensureAvailable(length: number): void;
    writeBufferInternal(buffer: Buffer): void;
    writeInt8(value: number): this;
    writeInt16(value: number): this;
    writeInt32(value: number): this;
    writeBoolean(value: boolean): this;
    /** A length-prefixed UTF-8 string; null is length -1. */
    writeString(value: string | null): this;
    /** Int32 count, then each element (numbers as Int32, strings as writeString). */
    writeArray(array: unknown[], type?: "int32" | "number" | "string" | "object"): this;
    writeBuffer(value: Buffer | string): this;
    /** A length-prefixed value: a Buffer, null (length -1), or anything else as its String(). */
    writeBytes(value: unknown): this;
    writeEncoder(value: unknown): this;
    writeEncoderArray(value: unknown): this;
    writeVarInt(value: number): this;
    writeUVarInt(value: number): this;
    /** A number or a Long (kafkajs' 64-bit integers). */
    writeVarLong(value: unknown): this;
  }
  export default Encoder;
}

declare module "kafkajs/src/protocol/decoder.js" {
  /** kafkajs' wire decoder (src/protocol/decoder.js): reads from the front of a buffer. */
  class Decoder {
    constructor(buffer: Buffer);
    readInt16(): number;
    readInt32(): number;
    /** A Long (kafkajs' long.js); toString() gives its decimal digits. */
    readInt64(): { toString(): string };
    readBoolean(): boolean;
    /** A length-prefixed string; null when the length is -1. */
    readString(): string | null;
    /** Int32 count, then `reader` per element; [] for a null array. */
    readArray<T>(reader: (d: Decoder) => T): T[];
  }
  export default Decoder;
}

declare module "kafkajs/src/protocol/error.js" {
  /** The KafkaJSProtocolError of a Kafka error code: `type` (e.g. TOPIC_AUTHORIZATION_FAILED) and message. */
  export function createErrorFromCode(code: number): Error & { type: string; code: number; retriable: boolean };
  /** Whether an error means the metadata is out of date (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_LEADER_FOR_PARTITION); cluster-send.ts. */
  export function staleMetadata(e: unknown): boolean;
}

declare module "kafkajs/src/loggers/index.js" {
  export const LEVELS: { NOTHING: 0; ERROR: 1; WARN: 2; INFO: 4; DEBUG: 5 };
  export function createLogger(opts: { level: number; logCreator: (level: number) => (entry: unknown) => void }): unknown;
}

declare module "kafkajs/src/network/socketFactory.js" {
  /** kafkajs' default socket factory: net.connect, or tls.connect with `ssl` as its options. */
  const socketFactory: () => unknown;
  export default socketFactory;
}

declare module "kafkajs/src/network/connectionPool.js" {
  /** A broker's connections (src/network/connectionPool.js): each connects, asks ApiVersions and authenticates (SASL) on first use. */
  class ConnectionPool {
    constructor(opts: {
      host: string; port: number; logger: unknown; socketFactory: unknown; clientId: string;
      requestTimeout: number; connectionTimeout: number; ssl?: unknown; sasl?: unknown;
    });
    /** Sends one request on the pool's first connection; resolves with response.parse(response.decode(payload)). */
    send<T>(protocolRequest: {
      request: { apiKey: number; apiVersion: number; apiName: string; encode(): Promise<unknown> };
      response: { decode(payload: Buffer): Promise<unknown>; parse(decoded: unknown): Promise<T> };
      requestTimeout?: number;
    }): Promise<T>;
    destroy(): Promise<void>;
  }
  export default ConnectionPool;
}

declare module "kafkajs/src/broker/index.js" {
  /** One broker (src/broker/index.js): connect() opens a connection, asks ApiVersions and runs SASL. */
  class Broker {
    constructor(opts: { connectionPool: import("kafkajs/src/network/connectionPool.js").default; logger: unknown; authenticationTimeout?: number; allowAutoTopicCreation?: boolean });
    connectionPool: import("kafkajs/src/network/connectionPool.js").default;
    /** After connect(): api key → the versions the broker supports. */
    versions: Record<number, { minVersion: number; maxVersion: number }> | null;
    connect(): Promise<void>;
    disconnect(): Promise<void>;
    nodeId: number;
    /** Picks the highest version of `definition` the broker supports (after connect()); cluster-send.ts' Produce. */
    lookupRequest<R>(apiKey: number, definition: { versions: string[]; protocol: (a: { version: number }) => R }): R;
  }
  export default Broker;
}

declare module "kafkajs/src/network/requestQueue/index.js" {
  /** kafkajs' per-connection queue of requests waiting to be written (src/network/requestQueue/index.js). */
  class RequestQueue {
    /** Date.now() until which the broker asked for no requests; -1 when never throttled. */
    throttledUntil: number;
    /** The timer armed by scheduleCheckPendingRequests, or null. */
    throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
    /** Requests not yet written to the socket. */
    pending: unknown[];
    checkPendingRequests(): void;
    scheduleCheckPendingRequests(): void;
  }
  export default RequestQueue;
}

/** A built-in SASL authenticator (src/broker/saslAuthenticator/*.js): kafka.sasl wraps it (publish.ts). */
type SaslAuthenticatorProvider = (sasl: { username: string; password: string }) => (args: { host: string; port: number; logger: unknown; saslAuthenticate: unknown }) => { authenticate(): Promise<void> };
declare module "kafkajs/src/broker/saslAuthenticator/plain.js" {
  const provider: SaslAuthenticatorProvider;
  export default provider;
}
declare module "kafkajs/src/broker/saslAuthenticator/scram256.js" {
  const provider: SaslAuthenticatorProvider;
  export default provider;
}
declare module "kafkajs/src/broker/saslAuthenticator/scram512.js" {
  const provider: SaslAuthenticatorProvider;
  export default provider;
}

// The pure-JS codecs of codecs.ts and lz4.ts ship no types; just what they call.
declare module "snappyjs" {
  const snappy: { compress(input: Uint8Array): Uint8Array; uncompress(input: Uint8Array): Uint8Array };
  export default snappy;
}
declare module "lz4js" {
  export function decompress(src: Uint8Array, maxSize?: number): Uint8Array;
}
declare module "lz4js/xxh32.js" {
  export function hash(seed: number, src: Uint8Array, index: number, length: number): number;
}

// What cluster-send.ts uses to send Produce requests of its own over kafkajs' connections.
declare module "kafkajs/src/cluster/index.js" {
  import type { PartitionMetadata } from "kafkajs";
  import type Broker from "kafkajs/src/broker/index.js";
  /** kafkajs' cluster (src/cluster/index.js): seed connection, metadata, the broker pool. */
  class Cluster {
    connect(): Promise<void>;
    disconnect(): Promise<void>;
    isConnected(): boolean;
    removeBroker(a: { host: string; port: number }): void;
    refreshMetadata(): Promise<void>;
    refreshMetadataIfNecessary(): Promise<void>;
    addMultipleTargetTopics(topics: string[]): Promise<void>;
    findTopicPartitionMetadata(topic: string): PartitionMetadata[];
    findBroker(a: { nodeId: number }): Promise<Broker>;
  }
  export default Cluster;
}

declare module "kafkajs/src/errors.js" {
  export class KafkaJSMetadataNotLoaded extends Error {
    constructor(message: string);
  }
}
