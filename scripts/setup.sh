#!/usr/bin/env bash
# Installs what logship's demo, tests and benchmark need on a fresh Debian machine with
# Node/npm: the npm packages (Bun, kafkajs, yaml, TypeScript) and the Debian packages
# librdkafka1 (its mock Kafka cluster is the test cluster) and kcat (reads topics back), and
# the tools of the operations tests (below).
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
ldconfig -p 2>/dev/null | grep -q 'librdkafka\.so\.1' || missing+=(librdkafka1)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
[ -x /usr/bin/time ] || missing+=(time)   # the benchmark reads CPU and peak RSS from it
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
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || ops+=(prometheus)
command -v lintian >/dev/null 2>&1 || ops+=(lintian)
command -v systemd-analyze >/dev/null 2>&1 || ops+=(systemd)
command -v qemu-aarch64-static >/dev/null 2>&1 || ops+=(qemu-user-static)
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || ops+=(libc6-arm64-cross)
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
