// The syntax of config values that are not plain YAML: sizes ("512KiB"), durations ("10s"),
// listen addresses ("127.0.0.1:9570"), and the edit distance behind "did you mean". Pure
// functions; config.ts and options.ts read values through them.

/**
 * A listen address: "HOST:PORT", "[V6]:PORT" or "PORT" (loopback). HOST is an IPv4 or IPv6
 * literal or a host name. Returns the parts, or what is wrong with it.
 */
export function parseListen(s: string): { host: string; port: number } | string {
  let host = "127.0.0.1";
  let port = s;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(.*)$/.exec(s);
  if (v6) [host, port] = [v6[1]!, v6[2]!];
  else if (s.includes(":")) {
    const at = s.lastIndexOf(":");
    [host, port] = [s.slice(0, at), s.slice(at + 1)];
    if (host.includes(":")) return "must be HOST:PORT, [IPV6]:PORT or PORT (an IPv6 address goes in brackets)";
    if (!/^(\d{1,3}(\.\d{1,3}){3}|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)$/.test(host)) return "must be HOST:PORT with HOST an IP address or a host name";
    if (/^[\d.]+$/.test(host) && host.split(".").some((o) => Number(o) > 255)) return "must be HOST:PORT with HOST an IP address or a host name (an IPv4 octet is at most 255)";
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return "must be HOST:PORT, [IPV6]:PORT or PORT, with PORT from 0 to 65535 (0: any free port)";
  return { host, port: Number(port) };
}

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };

/** "1000000", "512KiB", "1MB" → bytes; undefined when not a size. */
export function parseSize(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s);
  if (!m) return undefined;
  const unit = SIZE_UNITS[(m[2] ?? "").toLowerCase()];
  if (unit === undefined) return undefined;
  const v = Math.floor(Number(m[1]) * unit);
  return Number.isSafeInteger(v) ? v : undefined;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "10s", "1m30s", "7d", "0" → milliseconds; undefined when not a duration. */
export function parseDuration(s: string): number | undefined {
  const t = s.trim();
  if (t === "0") return 0;
  if (!/^(\d+(?:\.\d+)?(ms|s|m|h|d))+$/.test(t)) return undefined;
  let total = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ""] ?? NaN);
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/** Levenshtein distance: how an unknown key finds the known one it was meant to be. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}
