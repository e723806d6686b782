// Reading config values: the generic half of config.ts' Validator. Converts the nodes of a
// section by the kinds of options.ts' spec tables (durations, sizes, lists, ...), expands
// ${ENV} references, reports unknown keys with a suggestion, and words every problem as
// FILE:LINE: field: what is wrong (got VALUE), showing a value from ${ENV} as written, never
// expanded (the environment may hold secrets). config.ts holds what each section means.

import { isAbsolute, resolve } from "node:path";
import { isMap, isScalar, isSeq, type LineCounter, type Node, type Pair, type YAMLMap } from "yaml";
import * as ev from "./config-events.ts";
import type { ConfigProblem } from "./errors.ts";
import type { KindRule, Spec } from "./options.ts";
import { editDistance, parseDuration, parseListen, parseSize } from "./values.ts";

export type Fields = Map<string, { node: Node | null; pair: Pair }>;

export abstract class Reader {
  readonly problems: ConfigProblem[] = [];
  protected readonly fromEnv = new Map<string, string>(); // field → its value as written, for values that came from ${ENV}
  protected readonly ctx: ev.Ctx = { fail: (n, field, message, got) => this.fail(n, field, message, got), text: (n, field) => this.str(n, field) };

  constructor(
    protected readonly file: string,
    protected readonly lines: LineCounter,
    protected readonly env: Record<string, string | undefined>,
    protected readonly baseDir: string,
  ) {}

  /**
   * Converts the keys of one section by its spec table, in the table's order: a key that is
   * absent or invalid is undefined (an invalid or missing required one has its problem).
   * Values that came from ${ENV} are noted by field, as written, for asWritten().
   */
  protected options<T>(f: Fields, at: string, spec: Spec<T>, parent: Node | null): Partial<T> {
    const out: Partial<T> = {};
    for (const key of Object.keys(spec) as (keyof T & string)[]) {
      const row = spec[key];
      const field = at ? `${at}.${key}` : key;
      const convert = (n: Node, p: string) => this.convert(row.kind, n, p) as T[typeof key] | undefined;
      const value = row.required ? this.required(f, key, field, parent, convert) : this.optional(f, key, field, convert);
      if (value === undefined) continue;
      out[key] = value;
      const written = writtenWithEnv(f.get(key)?.node ?? null);
      if (written !== undefined) this.fromEnv.set(field, written);
    }
    return out;
  }

  protected convert(k: KindRule, n: Node, field: string): unknown {
    switch (k.kind) {
      case "duration":
        return this.duration(n, field, k.min);
      case "size":
        return this.size(n, field, k.min, k.max);
      case "int":
        return this.int(n, field, k.min);
      case "bool":
        return this.bool(n, field);
      case "enum":
        return this.oneOf(n, field, k.values);
      case "string":
        return this.str(n, field);
      case "topic":
        return this.topicName(n, field);
      case "listen":
        return this.listenAddress(n, field);
      case "list":
        return this.strList(n, field, k.nonEmpty);
      default:
        return ev.convert(k.kind, this.ctx, n, field); // the event options (config-events.ts)
    }
  }

  /** Another field's value, for a message: its text as written when it came from ${ENV}. */
  protected asWritten(field: string, value: string): string {
    return this.fromEnv.get(field) ?? value;
  }

  // --- structure ---------------------------------------------------------------------

  /** The keys of a mapping; unknown keys are reported with a suggestion. */
  protected fields(map: YAMLMap, at: string, known: string[]): Fields {
    const out: Fields = new Map();
    for (const pair of map.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (at === "" && key.startsWith("x-")) continue; // a top-level x-… key holds anchors for aliases (as in docker compose)
      if (!known.includes(key)) {
        // A key that is not a plain word (spaces, a complex key) is named in the message, not the field path.
        const plain = /^[A-Za-z0-9_-]+$/.test(key);
        const field = plain ? (at ? `${at}.${key}` : key) : at || "(root)";
        const near = known.find((k) => editDistance(k, key) <= 2);
        this.fail(pair.key as Node, field, `unknown key${plain ? "" : ` ${quoted(key)}`}${near ? ` (did you mean "${near}"?)` : ""}; known keys: ${known.join(", ")}`);
        continue;
      }
      out.set(key, { node: (pair.value as Node | null) ?? null, pair });
    }
    return out;
  }

  protected optional<T>(f: Fields, key: string, field: string, convert: (n: Node, field: string) => T | undefined): T | undefined {
    const entry = f.get(key);
    if (!entry) return undefined;
    if (entry.node === null || (isScalar(entry.node) && entry.node.value === null)) {
      return void this.fail((entry.pair.key as Node) ?? null, field, "has no value: give one or remove the key");
    }
    return convert(entry.node, field);
  }

  protected required<T>(f: Fields, key: string, field: string, parent: Node | null, convert: (n: Node, field: string) => T | undefined): T | undefined {
    if (!f.has(key)) return void this.fail(parent, field, "missing: this key is required");
    return this.optional(f, key, field, convert);
  }

  protected item(node: Node | null | undefined, i: number): Node | null {
    return isSeq(node) ? ((node.items[i] as Node) ?? node) : (node ?? null);
  }

  // --- scalars -----------------------------------------------------------------------

  protected scalarText(n: Node, field: string): string | undefined {
    if (!isScalar(n) || n.value === null || typeof n.value === "object") return void this.fail(n, field, "must be a single value", shown(n));
    const raw = String(n.value);
    if (typeof n.value !== "string") return raw;
    return this.expandEnv(raw, n, field);
  }

  protected expandEnv(raw: string, n: Node, field: string): string | undefined {
    let ok = true;
    const out = raw.replace(new RegExp(ENV_REF.source, "g"), (_m, name: string, fallback: string | undefined) => {
      const value = env(this.env, name) ?? fallback;
      if (value === undefined) {
        ok = false;
        this.fail(n, field, `environment variable ${name} is not set (set it, or write \${${name}:-default})`, raw);
        return "";
      }
      return value;
    });
    return ok ? out : undefined;
  }

  protected str(n: Node, field: string): string | undefined {
    const s = this.scalarText(n, field);
    if (s === undefined) return undefined;
    if (s.trim() === "") return void this.fail(n, field, "must not be empty", s);
    return s;
  }

  protected topicName(n: Node, field: string): string | undefined {
    const s = this.str(n, field);
    if (s === undefined) return undefined;
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(s)) return void this.fail(n, field, "must be a Kafka topic name: letters, digits, '.', '_', '-'", s);
    return s;
  }

  /** HOST:PORT, [IPv6]:PORT or PORT alone (then loopback: 127.0.0.1); PORT 0 takes any free port. */
  protected listenAddress(n: Node, field: string): string | undefined {
    const s = this.scalarText(n, field);
    if (s === undefined) return undefined;
    const parsed = parseListen(s.trim());
    if (typeof parsed === "string") return void this.fail(n, field, parsed, s);
    return parsed.host.includes(":") ? `[${parsed.host}]:${parsed.port}` : `${parsed.host}:${parsed.port}`;
  }

  protected oneOf<T extends string>(n: Node, field: string, allowed: readonly T[]): T | undefined {
    const s = this.scalarText(n, field);
    if (s === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(s)) return void this.fail(n, field, `must be one of ${allowed.join(" | ")}`, s);
    return s as T;
  }

  protected int(n: Node, field: string, min: number): number | undefined {
    const s = this.scalarText(n, field);
    if (s === undefined) return undefined;
    if (!/^\d+$/.test(s.trim())) return void this.fail(n, field, "must be a whole number", s);
    const v = Number(s);
    if (v < min) return void this.fail(n, field, `must be at least ${min}`, s);
    return v;
  }

  protected bool(n: Node, field: string): boolean | undefined {
    const s = this.scalarText(n, field);
    if (s === undefined) return undefined;
    if (s !== "true" && s !== "false") return void this.fail(n, field, "must be true or false", s);
    return s === "true";
  }

  protected size(n: Node, field: string, min: number, max?: number): number | undefined {
    const s = this.scalarText(n, field);
    if (s === undefined) return undefined;
    const v = parseSize(s);
    if (v === undefined) return void this.fail(n, field, "must be a size in bytes, e.g. 1000000, 512KiB, 1MiB, 1MB", s);
    if (v < min) return void this.fail(n, field, `must be at least ${min} bytes`, s);
    if (max !== undefined && v > max) return void this.fail(n, field, `must be at most ${max} bytes (${max / 1024 / 1024}MiB)`, s);
    return v;
  }

  protected duration(n: Node, field: string, minMs: number): number | undefined {
    const s = this.scalarText(n, field);
    if (s === undefined) return undefined;
    const v = parseDuration(s);
    if (v === undefined) return void this.fail(n, field, "must be a duration with a unit, e.g. 500ms, 10s, 5m, 1h, 7d", s);
    if (v < minMs) return void this.fail(n, field, `must be at least ${minMs} ms`, s);
    return v;
  }

  protected strList(n: Node, field: string, nonEmpty: boolean): string[] | undefined {
    if (isScalar(n) && typeof n.value === "string") {
      const s = this.str(n, field);
      return s === undefined ? undefined : [s];
    }
    if (!isSeq(n)) return void this.fail(n, field, "must be a list of strings", shown(n));
    if (nonEmpty && n.items.length === 0) return void this.fail(n, field, "must list at least one entry");
    const out: string[] = [];
    n.items.forEach((item, i) => {
      const s = this.str(item as Node, `${field}[${i}]`);
      if (s !== undefined) out.push(s);
    });
    return out.length === n.items.length ? out : undefined;
  }

  protected absolute(p: string): string {
    return isAbsolute(p) ? p : resolve(this.baseDir, p);
  }

  fail(n: Node | null, field: string, message: string, got?: unknown): undefined {
    const offset = n?.range?.[0];
    const line = offset === undefined ? 0 : this.lines.linePos(offset).line;
    // Never echo the environment (it may hold secrets): a value from ${ENV} is shown as written.
    const shown = got === undefined ? undefined : (writtenWithEnv(n) ?? got);
    this.problems.push({ file: this.file, line, field, message: shown === undefined ? message : `${message} (got ${quoted(shown)})` });
    return undefined;
  }
}

/**
 * A value as a problem shows it: a string in plain double quotes, anything else as JSON.
 * Not JSON-escaped: the printer escapes the whole line (lib/text.ts), and escaping twice
 * would show a backslash as four. (So a '"' inside shows as it is; the text is for people.)
 */
export function quoted(v: unknown): string {
  return typeof v === "string" ? `"${v}"` : JSON.stringify(v);
}

/** kafka.sasl.password when the file holds the password itself (an env reference is kept as written). */
export const LITERAL_PASSWORD = "(written in the config)";

/** ${NAME} or ${NAME:-default}. */
export const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/;

/** A string value's text before expansion, when it refers to the environment; else undefined. */
export function writtenWithEnv(n: Node | null): string | undefined {
  return isScalar(n) && typeof n.value === "string" && ENV_REF.test(n.value) ? n.value : undefined;
}

/** Every key of `spec`, in its order: the converted value, else the default (rows without one: undefined, for the caller to fill). */
export function withDefaults<T>(got: Partial<T>, spec: Spec<T>): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(spec) as (keyof T)[]) out[key] = got[key] ?? spec[key].default;
  return out;
}

export function env(e: Record<string, string | undefined>, name: string): string | undefined {
  const v = e[name];
  return v === undefined || v === "" ? undefined : v;
}

/** The key node of a field, to locate problems about the field as a whole. */
export function keyOf(entry: { node: Node | null; pair: Pair }): Node | null {
  return (entry.pair.key as Node | null) ?? entry.node;
}

/** A value as a problem names it: a scalar's value, else what it is. */
export function shown(n: Node): unknown {
  return isScalar(n) ? n.value : isSeq(n) ? "a list" : isMap(n) ? "a mapping" : String(n);
}
export const shownOrNull = (n: Node | null): unknown => (n === null ? null : shown(n));
