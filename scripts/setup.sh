#!/usr/bin/env bash
# Installs what logship's demo, tests and benchmark need on a fresh Debian machine with
# Node/npm: the npm packages (Bun, kafkajs, yaml, TypeScript) and the Debian packages
# librdkafka1 (its mock Kafka cluster is the demo's and the fault tests' cluster) and kcat
# (reads topics back): all the demo needs. With --real-kafka (npm run bench) also what the
# real-broker tests need: a JRE (17 or later), Maven, openssl and unzip, and the pinned Apache
# Kafka jars (scripts/kafka/pom.xml) copied once from Maven Central into .kafka/libs (ignored
# by git). With --tests (npm test) that and the operations tests' tools (below).
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
real_kafka=0   # --real-kafka (npm run bench) or --tests: Java, Maven and the Kafka jars
tests=0        # --tests (npm test): also the operations and packaging tests' tools
for arg in "$@"; do
  case "$arg" in
    --real-kafka) real_kafka=1 ;;
    --tests) real_kafka=1 tests=1 ;;
    *) echo "setup: unknown option $arg (--real-kafka, --tests)" >&2; exit 2 ;;
  esac
done

missing=()
ldconfig -p 2>/dev/null | grep -q 'librdkafka\.so\.1' || missing+=(librdkafka1)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
[ -x /usr/bin/time ] || missing+=(time)   # the benchmark reads CPU and peak RSS from it
if [ "$real_kafka" = 1 ]; then
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)   # certificates of the TLS tests
  # The real Kafka broker needs Java 17 or later; Maven fetches its jars.
  java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1 || true)
  [ "${java_major:-0}" -ge 17 ] 2>/dev/null || missing+=(default-jre-headless)   # Java 17 on Debian 12, 21 on 13
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  command -v unzip >/dev/null 2>&1 || missing+=(unzip)   # checks the jars hold the main classes
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi
# The operations and packaging tests' tools, without recommends (e.g. prometheus' node
# exporter, which no test uses): prometheus and promtool (tests/e2e-http.test.ts), lintian and
# systemd-analyze (tests/package.test.ts), qemu user emulation and the arm64 C library
# (tests/arm64.test.ts runs the cross-compiled binary).
ops=()
if [ "$tests" = 1 ]; then
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || ops+=(prometheus)
command -v lintian >/dev/null 2>&1 || ops+=(lintian)
command -v systemd-analyze >/dev/null 2>&1 || ops+=(systemd)
command -v qemu-aarch64-static >/dev/null 2>&1 || ops+=(qemu-user-static)
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || ops+=(libc6-arm64-cross)
fi
if [ ${#ops[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${ops[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${ops[@]}" >&2
fi

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi

[ "$real_kafka" = 1 ] || exit 0

# The pinned Kafka broker jars, fetched once per version of scripts/kafka/pom.xml.
kafka_libs=.kafka/libs
pom_sum=$(sha256sum scripts/kafka/pom.xml | cut -d' ' -f1)
if [ "$(cat "$kafka_libs/.pom.sha256" 2>/dev/null || true)" != "$pom_sum" ]; then
  echo "setup: fetching the Apache Kafka jars (scripts/kafka/pom.xml) into $kafka_libs" >&2
  rm -rf "$kafka_libs"
  mvn -B -q -f scripts/kafka/pom.xml \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DoutputDirectory="$PWD/$kafka_libs" -DincludeScope=runtime >&2
  # The main classes the tests run: fail here, loudly, if a Kafka version moved them.
  jar=$(ls "$kafka_libs"/kafka_2.13-*.jar)
  for cls in kafka/Kafka.class kafka/tools/StorageTool.class; do
    unzip -l "$jar" | grep " $cls\$" >/dev/null || { echo "setup: $cls is not in $jar" >&2; exit 1; }
  done
  echo "$pom_sum" > "$kafka_libs/.pom.sha256"
fi
