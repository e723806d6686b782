// The config file as YAML: read with a bound (a config is a few KiB; `--config /dev/zero`
// must not fill memory), and its anchors, aliases and merge keys resolved in place, each
// shared node visited once (an alias bomb costs nothing). config.ts validates what is left.

import { closeSync, openSync, readSync } from "node:fs";
import { isAlias, isMap, isNode, isScalar, isSeq, visit, type Document, type Node, type Pair } from "yaml";

/** The largest config file read: a config is a few KiB; `--config /dev/zero` must not fill memory. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** A file's text, read `limit` bytes at most: a RangeError when it holds more (also a device that never ends). */
export function readBounded(file: string, limit: number): string {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(limit + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > limit) throw new RangeError("config too large");
    }
    return buf.toString("utf8", 0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces YAML aliases (`*name`) by the node their anchor (`&name`) names, and applies merge
 * keys (`<<: *base`, or a list of them): the merged mapping's keys are added where the mapping
 * does not set them itself. In place; shared nodes are visited once (an alias bomb costs
 * nothing), and problems inside an aliased value point at the anchor's lines.
 */
export function resolveAliases(n: Node | null, doc: Document, done: Set<Node>, v: { fail(n: Node | null, field: string, message: string): unknown }): Node | null {
  if (n === null) return null;
  if (isAlias(n)) {
    const target = anchored(doc, n.source, n.range?.[0] ?? Infinity);
    if (!target) {
      v.fail(n, "(yaml)", `alias *${n.source} names no anchor`);
      return null;
    }
    return resolveAliases(target, doc, done, v);
  }
  if (done.has(n)) return n;
  done.add(n);
  if (isSeq(n)) n.items = n.items.map((item) => resolveAliases(item as Node, doc, done, v));
  if (isMap(n)) {
    const merged: Pair[] = [];
    const own: Pair[] = [];
    for (const pair of n.items) {
      pair.value = resolveAliases(pair.value as Node | null, doc, done, v);
      if (!(isScalar(pair.key) && pair.key.value === "<<")) {
        own.push(pair);
        continue;
      }
      const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
      for (const src of sources) {
        const from = resolveAliases(src as Node | null, doc, done, v);
        if (isMap(from)) merged.push(...(from.items as Pair[]));
        else v.fail(from ?? (pair.key as Node), "<<", "a merge key takes a mapping (`<<: *name`) or a list of them");
      }
    }
    const keyOfPair = (p: Pair) => (isScalar(p.key) ? String(p.key.value) : String(p.key));
    const have = new Set(own.map(keyOfPair));
    for (const p of merged) {
      if (have.has(keyOfPair(p))) continue;
      have.add(keyOfPair(p));
      own.push(p);
    }
    n.items = own;
  }
  return n;
}

const anchorsOf = new WeakMap<Document, { name: string; node: Node; at: number }[]>();

/**
 * The node an alias at offset `at` names: the last anchor of that name before it. (yaml's own
 * Alias.resolve counts the alias' expansion, which is exponential for nested aliases.)
 */
function anchored(doc: Document, name: string, at: number): Node | undefined {
  let anchors = anchorsOf.get(doc);
  if (!anchors) {
    const found: { name: string; node: Node; at: number }[] = [];
    visit(doc, (_key, node) => {
      const a = (node as { anchor?: string } | null)?.anchor; // an empty value visits as null
      if (a && isNode(node)) found.push({ name: a, node, at: node.range?.[0] ?? 0 });
    });
    anchorsOf.set(doc, (anchors = found));
  }
  let best: Node | undefined;
  for (const a of anchors) if (a.name === name && a.at < at) best = a.node;
  return best;
}
