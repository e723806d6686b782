// Polling assertion helper for tests: retries a check until it yields a truthy
// value without throwing, or gives up after a deadline with the last failure.

export interface EventuallyOptions {
  timeoutMs?: number;
  intervalMs?: number;
  message?: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function describeLast(last: unknown): string {
  if (last instanceof Error) return `last error: ${last.message}`;
  const hint = last === undefined ? " (assertion-style checks must return true)" : "";
  return `last value: ${String(last)}${hint}`;
}

/**
 * Calls `fn` every `intervalMs` (default 50) until it returns a truthy value
 * (which is returned) or `timeoutMs` (default 5000) passes; then throws an
 * Error carrying `message` and the last thrown error or falsy value as cause.
 * A throw counts as "not yet", and so does any falsy return, `undefined`
 * included: assertion-style checks (`expect(...)` inside) must `return true`.
 */
export async function eventually<T>(fn: () => T | Promise<T>, opts: EventuallyOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.max(0, Math.min(intervalMs, deadline - Date.now())));
  }
  const message = opts.message ?? "condition not met";
  throw new Error(`eventually: ${message} (after ${timeoutMs} ms; ${describeLast(last)})`, { cause: last });
}
