// The per-input options that turn lines into events (format, fields, include_lines,
// exclude_lines, redact, key, topic templates): their conversion from YAML and the checks
// between them, for config.ts' Validator. Regexes are compiled here once, at load, so a
// pattern JavaScript cannot compile is a located problem (exit 2), never a runtime error.
// A leaf: imports no part.

import { isMap, isScalar, isSeq, type Node } from "yaml";
import type { InputConfig, MultilineConfig, RedactRule } from "./options.ts";
import { parseDuration, parseSize } from "./values.ts";

/** What the conversions need of the Validator: a located problem, and a value's text (env expanded, not blank). */
export interface Ctx {
  fail(n: Node | null, field: string, message: string, got?: unknown): undefined;
  text(n: Node, field: string): string | undefined;
}

/** Header and JSON names the records already carry: a static field may not take them. */
export const RESERVED_FIELDS = ["host", "path", "offset", "file", "@timestamp", "message", "message_base64", "invalid_utf8"];

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
/** ${fields.NAME} in a topic template. */
const FIELD_REF = /\$\{fields\.([A-Za-z_][A-Za-z0-9_.-]*)\}/g;

/** Converts a value of one of the event options' kinds. */
export function convert(kind: "topicTemplate" | "fields" | "regexes" | "redact" | "recordKey" | "multiline", ctx: Ctx, n: Node, field: string): unknown {
  const by = { topicTemplate, fields, regexes, redact: redactRules, recordKey, multiline };
  return by[kind](ctx, n, field);
}

export function regex(ctx: Ctx, n: Node, field: string, flags = ""): string | undefined {
  const s = ctx.text(n, field);
  if (s === undefined) return undefined;
  try {
    new RegExp(s, flags);
  } catch (err) {
    return ctx.fail(n, field, `is not a valid regular expression (JavaScript syntax): ${(err as Error).message}`, s);
  }
  return s;
}

export function regexes(ctx: Ctx, n: Node, field: string): string[] | undefined {
  if (isScalar(n) && typeof n.value === "string") {
    const one = regex(ctx, n, field);
    return one === undefined ? undefined : [one];
  }
  if (!isSeq(n)) return ctx.fail(n, field, "must be a list of regular expressions", isScalar(n) ? n.value : "a mapping");
  const out: string[] = [];
  n.items.forEach((item, i) => {
    const r = regex(ctx, item as Node, `${field}[${i}]`);
    if (r !== undefined) out.push(r);
  });
  return out.length === n.items.length ? out : undefined;
}

export function fields(ctx: Ctx, n: Node, field: string): Record<string, string> | undefined {
  if (!isMap(n)) return ctx.fail(n, field, "must be a mapping of names to values, e.g. { service: checkout }", isScalar(n) ? n.value : "a list");
  const out: Record<string, string> = {};
  let ok = true;
  for (const pair of n.items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const at = `${field}.${name}`;
    if (!FIELD_NAME.test(name)) ok = !!ctx.fail(pair.key as Node, field, "a field name is a letter or _, then letters, digits, '_', '.', '-' (at most 64)", name);
    else if (RESERVED_FIELDS.includes(name)) ok = !!ctx.fail(pair.key as Node, at, `is a name every record already carries (${RESERVED_FIELDS.join(", ")}); choose another`);
    const v = pair.value as Node | null;
    const s = v === null ? ctx.fail(pair.key as Node, at, "has no value: give one or remove the field") : ctx.text(v, at);
    if (s === undefined) ok = false;
    else out[name] = s;
  }
  return ok ? out : undefined;
}

export function redactRules(ctx: Ctx, n: Node, field: string): RedactRule[] | undefined {
  if (!isSeq(n)) return ctx.fail(n, field, "must be a list of { pattern, replace }", isScalar(n) ? n.value : "a mapping");
  const out: RedactRule[] = [];
  n.items.forEach((item, i) => {
    const at = `${field}[${i}]`;
    if (!isMap(item)) return void ctx.fail(item as Node, at, "must be a mapping { pattern, replace }", isScalar(item) ? item.value : "a list");
    const keys = item.items.map((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)));
    for (const k of keys) if (k !== "pattern" && k !== "replace") ctx.fail(item as Node, `${at}.${k}`, "unknown key; known keys: pattern, replace");
    const get = (k: string) => item.items.find((p) => isScalar(p.key) && p.key.value === k)?.value as Node | null | undefined;
    const p = get("pattern");
    const r = get("replace");
    if (p === undefined || p === null) return void ctx.fail(item as Node, `${at}.pattern`, "missing: the regular expression to replace");
    const pattern = regex(ctx, p, `${at}.pattern`, "g");
    // The replacement may be empty (delete the match); null or absent means empty too.
    const replace = r === undefined || r === null ? "" : isScalar(r) && typeof r.value === "string" && r.value === "" ? "" : ctx.text(r, `${at}.replace`);
    if (pattern !== undefined && replace !== undefined) out.push({ pattern, replace });
  });
  return out.length === n.items.length ? out : undefined;
}

const MULTILINE_KEYS = ["start", "continue", "max_lines", "max_bytes", "timeout"];
/** multiline's defaults: what Filebeat and Fluent Bit use, about. */
export const MULTILINE_DEFAULTS = { max_lines: 500, max_bytes: 1024 * 1024, timeout: 1000 };

export function multiline(ctx: Ctx, n: Node, field: string): MultilineConfig | undefined {
  if (!isMap(n)) return ctx.fail(n, field, "must be a mapping, e.g. { start: '^\\d{4}-', max_lines: 500, timeout: 1s }", isScalar(n) ? n.value : "a list");
  let ok = true;
  const get = (k: string) => n.items.find((p) => isScalar(p.key) && p.key.value === k)?.value as Node | null | undefined;
  for (const p of n.items) {
    const k = isScalar(p.key) ? String(p.key.value) : String(p.key);
    if (!MULTILINE_KEYS.includes(k)) ok = !!ctx.fail(p.key as Node, `${field}.${k}`, `unknown key; known keys: ${MULTILINE_KEYS.join(", ")}`);
  }
  const out: MultilineConfig = { ...MULTILINE_DEFAULTS };
  for (const k of ["start", "continue"] as const) {
    const v = get(k);
    if (v === undefined) continue;
    const r = v === null ? undefined : regex(ctx, v, `${field}.${k}`);
    if (r === undefined) ok = false;
    else out[k] = r;
  }
  if ((get("start") === undefined) === (get("continue") === undefined)) ok = !!ctx.fail(n, field, "needs exactly one of start (a line matching it starts an event) and continue (a line matching it continues the one before)");
  const num = (k: "max_lines" | "max_bytes" | "timeout", parse: (s: string) => number | undefined, min: number, what: string) => {
    const v = get(k);
    if (v === undefined) return;
    const s = v === null ? undefined : ctx.text(v, `${field}.${k}`);
    const x = s === undefined ? undefined : parse(s);
    if (x === undefined || x < min) ok = !!ctx.fail(v ?? n, `${field}.${k}`, `must be ${what}`, s);
    else out[k] = x;
  };
  num("max_lines", (s) => (/^\d+$/.test(s) ? Number(s) : undefined), 1, "a whole number, at least 1");
  num("max_bytes", parseSize, 1, "a size in bytes, e.g. 1MiB, at least 1");
  num("timeout", parseDuration, 10, "a duration with a unit, e.g. 1s, at least 10ms");
  return ok ? out : undefined;
}

export function recordKey(ctx: Ctx, n: Node, field: string): string | undefined {
  const s = ctx.text(n, field);
  if (s === undefined) return undefined;
  if (s === "path" || s === "none" || /^field:[A-Za-z_][A-Za-z0-9_.-]*$/.test(s)) return s;
  return ctx.fail(n, field, "must be path | none | field:NAME", s);
}

/** A topic that may hold ${fields.NAME}: checked as a topic name with every reference taken as one letter. */
export function topicTemplate(ctx: Ctx, n: Node, field: string): string | undefined {
  const s = ctx.text(n, field);
  if (s === undefined) return undefined;
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(s.replace(FIELD_REF, "x"))) return ctx.fail(n, field, `must be a Kafka topic name: letters, digits, '.', '_', '-'${s.includes("${") ? " (and ${fields.NAME})" : ""}`, s);
  return s;
}

/** The checks between an input's event options, once each is converted; returns the resolved topic. `node(key)` locates a key. */
export function checkInput(ctx: Ctx, input: Partial<InputConfig>, at: string, node: (key: string) => Node | null): string | undefined {
  const f = input.fields ?? {};
  if ((input.format ?? "packed") === "packed") {
    for (const key of ["fields", "include_lines", "exclude_lines", "redact", "key", "multiline"] as const) {
      const v = input[key];
      const set = key === "multiline" ? v !== undefined : key === "key" ? v !== undefined && v !== "path" : key === "fields" ? Object.keys(f).length > 0 : Array.isArray(v) && v.length > 0;
      if (set) ctx.fail(node(key), `${at}.${key}`, "needs format: line or json (format: packed ships the file's bytes as they are)");
    }
  }
  const k = input.key;
  if (k?.startsWith("field:") && !(k.slice(6) in f)) ctx.fail(node("key"), `${at}.key`, `names no field of ${at}.fields${Object.keys(f).length ? ` (${Object.keys(f).join(", ")})` : ""}`, k);
  const topic = input.topic;
  if (topic === undefined) return undefined;
  let ok = true;
  const resolved = topic.replace(FIELD_REF, (_m, name: string) => {
    if (name in f) return f[name]!;
    ok = false;
    ctx.fail(node("topic"), `${at}.topic`, `\${fields.${name}} names no field of ${at}.fields`, topic);
    return "";
  });
  if (!ok) return undefined;
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(resolved)) return ctx.fail(node("topic"), `${at}.topic`, `becomes "${resolved}" with the fields, not a Kafka topic name: letters, digits, '.', '_', '-'`, topic);
  return resolved;
}
