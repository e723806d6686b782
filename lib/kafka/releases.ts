// Which Apache Kafka release a broker is, from its ApiVersions answer (`check --connect`).
// Pure: a table and a match, no I/O.
//
// The table holds, per release, the highest stable version a broker advertises of 25
// client-facing APIs (Produce, Fetch, Metadata, ...). It was read from Apache Kafka's own
// message definitions: clients/src/main/resources/common/message/*Request.json at the release
// tags 2.2.0 … 3.8.0 (validVersions, less the last one when latestVersionUnstable), and
// ApiKeys.latestVersion(false) of the broker-listener APIs in kafka-clients 3.9.1, 4.0.1 and
// 4.1.2. Patch releases never change API versions, so a row stands for a minor release.
// Invariant: a row is what that release's brokers advertise; two releases with the same row
// (3.3/3.4, 3.5/3.6) cannot be told apart, and the answer then names both.

/** What a broker's ApiVersions answer says: api key → [min, max]. */
export type ApiVersions = Map<number, [number, number]>;

/** The API keys of the table's columns. */
const KEYS = [0, 1, 2, 3, 8, 9, 10, 11, 15, 16, 19, 20, 22, 29, 32, 33, 36, 37, 42, 44, 47, 50, 60, 61, 75];
// Produce Fetch ListOffsets Metadata OffsetCommit OffsetFetch FindCoordinator JoinGroup DescribeGroups ListGroups
// CreateTopics DeleteTopics InitProducerId DescribeAcls DescribeConfigs AlterConfigs SaslAuthenticate CreatePartitions
// DeleteGroups IncrementalAlterConfigs OffsetDelete DescribeUserScramCredentials DescribeCluster DescribeProducers
// DescribeTopicPartitions; -1: the release does not have the API.

/** Oldest first. */
const RELEASES: [string, number[]][] = [
  ["2.2", [7, 10, 5, 7, 6, 5, 2, 4, 2, 2, 3, 3, 1, 1, 2, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1]],
  ["2.3", [7, 11, 5, 8, 7, 5, 2, 5, 3, 2, 3, 3, 1, 1, 2, 1, 1, 1, 1, 0, -1, -1, -1, -1, -1]],
  ["2.4", [8, 11, 5, 9, 8, 6, 3, 6, 5, 3, 5, 4, 2, 1, 2, 1, 1, 1, 2, 1, 0, -1, -1, -1, -1]],
  ["2.5", [8, 11, 5, 9, 8, 7, 3, 7, 5, 3, 5, 4, 3, 2, 2, 1, 2, 2, 2, 1, 0, -1, -1, -1, -1]],
  ["2.6", [8, 11, 5, 9, 8, 7, 3, 7, 5, 4, 5, 4, 3, 2, 3, 1, 2, 2, 2, 1, 0, -1, -1, -1, -1]],
  ["2.7", [8, 12, 5, 9, 8, 7, 3, 7, 5, 4, 6, 5, 4, 2, 3, 1, 2, 3, 2, 1, 0, 0, -1, -1, -1]],
  ["2.8", [9, 12, 6, 11, 8, 7, 3, 7, 5, 4, 7, 6, 4, 2, 4, 2, 2, 3, 2, 1, 0, 0, 0, -1, -1]],
  ["3.0", [9, 12, 7, 11, 8, 8, 4, 7, 5, 4, 7, 6, 4, 2, 4, 2, 2, 3, 2, 1, 0, 0, 0, 0, -1]],
  ["3.1", [9, 13, 7, 12, 8, 8, 4, 7, 5, 4, 7, 6, 4, 2, 4, 2, 2, 3, 2, 1, 0, 0, 0, 0, -1]],
  ["3.2", [9, 13, 7, 12, 8, 8, 4, 9, 5, 4, 7, 6, 4, 2, 4, 2, 2, 3, 2, 1, 0, 0, 0, 0, -1]],
  ["3.3", [9, 13, 7, 12, 8, 8, 4, 9, 5, 4, 7, 6, 4, 3, 4, 2, 2, 3, 2, 1, 0, 0, 0, 0, -1]],
  ["3.4", [9, 13, 7, 12, 8, 8, 4, 9, 5, 4, 7, 6, 4, 3, 4, 2, 2, 3, 2, 1, 0, 0, 0, 0, -1]],
  ["3.5", [9, 15, 8, 12, 8, 8, 4, 9, 5, 4, 7, 6, 4, 3, 4, 2, 2, 3, 2, 1, 0, 0, 0, 0, -1]],
  ["3.6", [9, 15, 8, 12, 8, 8, 4, 9, 5, 4, 7, 6, 4, 3, 4, 2, 2, 3, 2, 1, 0, 0, 0, 0, -1]],
  ["3.7", [10, 16, 8, 12, 9, 9, 4, 9, 5, 4, 7, 6, 4, 3, 4, 2, 2, 3, 2, 1, 0, 0, 1, 0, -1]],
  ["3.8", [11, 16, 8, 12, 9, 9, 5, 9, 5, 5, 7, 6, 5, 3, 4, 2, 2, 3, 2, 1, 0, 0, 1, 0, 0]],
  ["3.9", [11, 17, 9, 12, 9, 9, 6, 9, 5, 5, 7, 6, 5, 3, 4, 2, 2, 3, 2, 1, 0, 0, 1, 0, 0]],
  ["4.0", [12, 17, 10, 13, 9, 9, 6, 9, 6, 5, 7, 6, 5, 3, 4, 2, 2, 3, 2, 1, 0, 0, 2, 0, 0]],
  ["4.1", [13, 18, 10, 13, 9, 9, 6, 9, 6, 5, 7, 6, 5, 3, 4, 2, 2, 3, 2, 1, 0, 0, 2, 0, 0]],
];

/**
 * The Kafka release(s) an ApiVersions answer fits: "Kafka 4.1", "Kafka 3.3 or 3.4"; when it
 * matches no row exactly (a vendor's broker, a release newer than the table), the newest
 * release whose every API it supports at least as far: "Kafka 3.7 or later (...)".
 */
export function kafkaRelease(v: ApiVersions): string {
  const row = KEYS.map((k) => v.get(k)?.[1] ?? -1);
  const exact = RELEASES.filter(([, r]) => r.every((max, i) => max === row[i])).map(([name]) => name);
  if (exact.length > 0) return `Kafka ${exact.join(" or ")}`;
  let i = RELEASES.findLastIndex(([, r]) => r.every((max, j) => max <= row[j]!));
  if (i < 0) return "Kafka 2.1 or older (or not Apache Kafka)";
  if (i === RELEASES.length - 1) return `Kafka newer than ${RELEASES[i]![0]}`;
  while (i > 0 && RELEASES[i - 1]![1].join() === RELEASES[i]![1].join()) i--; // 3.4 covered: so is 3.3, the same row
  return `Kafka ${RELEASES[i]![0]} or later (its API versions match no Apache Kafka release exactly)`;
}
