// logship's own stderr and stdout (issue 11, item 16): a broken pipe there (`logship ... 2>&1 |
// logger`, and the reader went away) must never stop shipping. Every log line goes through
// writeStderr; main.ts guards both streams at start.

let stdioGuarded = false;

/**
 * Writes to stderr; a broken or closed stderr (EPIPE: `logship ... 2>&1 | logger` and the
 * reader went away) is ignored, whether write() throws or the stream emits it as an error
 * event: losing the log never stops shipping. stdout (check's report) is guarded alike.
 */
export function writeStderr(text: string): void {
  guardStdio();
  try {
    process.stderr.write(text);
  } catch {
    // stderr is gone: nothing left to tell it to
  }
}

/** Makes write errors of stdout and stderr harmless (see writeStderr); idempotent. */
export function guardStdio(): void {
  if (stdioGuarded) return;
  stdioGuarded = true;
  process.stderr.on("error", () => {});
  process.stdout.on("error", () => {});
}
