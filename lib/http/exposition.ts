// The Prometheus text exposition format (version 0.0.4, what Prometheus 2 and 3 scrape), written
// by hand: counters, gauges and one histogram, each with at most one label whose values are
// bounded. Why not prom-client: it is not a dependency yet, the agent needs a dozen series,
// and the hot path (one counter update per acknowledged send) must cost nothing measurable;
// README "Metrics" gives the measurement. Values are plain numbers in a Map, read only when
// /metrics is scraped.
//
// Invariants: a metric's name and help are fixed at creation; a labelled metric accepts at
// most `maxValues` distinct label values (more land in the value "other"), so a scrape's size
// is bounded whatever the agent meets; label values are escaped as the format requires.

/** What every metric can do: write its lines. */
interface Exposable {
  write(out: string[]): void;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function header(out: string[], name: string, help: string, type: string): void {
  out.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${name} ${type}`);
}

/** A label value as the format quotes it: backslash, double quote and newline escaped. */
export function labelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** A sample value: integers as they are, NaN and infinities by their names. */
export function sampleValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** A counter or gauge with one optional label; `values` maps the label value ("" without a label) to the number. */
class Sampled implements Exposable {
  protected readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly type: "counter" | "gauge",
    private readonly label: string | null,
    private readonly maxValues: number,
    initial: readonly string[],
  ) {
    if (!NAME.test(name) || (label !== null && !NAME.test(label))) throw new Error(`bad metric or label name: ${name} ${label}`);
    if (label === null) this.values.set("", 0);
    for (const v of initial) this.values.set(v, 0);
  }

  /** The key a label value is counted under: itself, or "other" once the other maxValues - 1 are in use. */
  protected key(labelValue: string): string {
    if (this.label === null) return "";
    // Room is kept for "other": at most maxValues series, whatever comes.
    if (this.values.has(labelValue) || this.values.size + (this.values.has("other") ? 0 : 1) < this.maxValues) return labelValue;
    return "other";
  }

  get(labelValue = ""): number {
    return this.values.get(labelValue) ?? 0;
  }

  write(out: string[]): void {
    header(out, this.name, this.help, this.type);
    for (const [lv, v] of this.values) {
      out.push(this.label === null ? `${this.name} ${sampleValue(v)}` : `${this.name}{${this.label}="${labelValue(lv)}"} ${sampleValue(v)}`);
    }
  }
}

export class Counter extends Sampled {
  constructor(name: string, help: string, opts: { label?: string; values?: readonly string[]; maxValues?: number } = {}) {
    if (!name.endsWith("_total")) throw new Error(`a counter's name ends in _total: ${name}`);
    super(name, help, "counter", opts.label ?? null, opts.maxValues ?? 32, opts.values ?? []);
  }

  inc(by = 1, labelValue = ""): void {
    const k = this.key(labelValue);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }

  /** For a total the operating system keeps (CPU seconds): the value as read. */
  setTotal(v: number): void {
    this.values.set("", v);
  }
}

export class Gauge extends Sampled {
  constructor(name: string, help: string, opts: { label?: string; values?: readonly string[]; maxValues?: number } = {}) {
    super(name, help, "gauge", opts.label ?? null, opts.maxValues ?? 32, opts.values ?? []);
  }

  set(v: number, labelValue = ""): void {
    this.values.set(this.key(labelValue), v);
  }
}

/** A histogram without labels: cumulative buckets (upper bounds, ascending), _sum and _count. */
export class Histogram implements Exposable {
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly bounds: readonly number[],
  ) {
    if (!NAME.test(name)) throw new Error(`bad metric name: ${name}`);
    for (let i = 1; i < bounds.length; i++) if (!(bounds[i]! > bounds[i - 1]!)) throw new Error("histogram bounds must ascend");
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }

  get observations(): number {
    return this.count;
  }

  write(out: string[]): void {
    header(out, this.name, this.help, "histogram");
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i]!;
      out.push(`${this.name}_bucket{le="${sampleValue(this.bounds[i]!)}"} ${cumulative}`);
    }
    out.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${sampleValue(this.sum)}`, `${this.name}_count ${this.count}`);
  }
}

/** Metrics in the order they are exposed. */
export class Registry {
  private readonly all: Exposable[] = [];
  add<M extends Exposable>(m: M): M {
    this.all.push(m);
    return m;
  }

  /** The whole exposition, ending with a newline. */
  expose(): string {
    const out: string[] = [];
    for (const m of this.all) m.write(out);
    return out.join("\n") + "\n";
  }
}

/** The Content-Type of the text format. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
