// The few error classes logship throws on purpose. Each exists because a caller treats it
// differently: ConfigError ends the process with exit code 2 before anything starts,
// StateError refuses to start with advice on recovering the offsets database, and
// PublishError tells the sender whether a retry can help. Programming mistakes use the
// built-in errors.

/** One problem in a configuration file, located for a human: FILE:LINE: field: what (got VALUE). */
export interface ConfigProblem {
  file: string;
  line: number; // 1-based; 0 when the problem has no single line (e.g. a missing key)
  field: string; // dotted path, e.g. "kafka.max_message_bytes" or "inputs[0].paths"
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}: ${p.field}: ${p.message}`;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** The offsets database cannot be used; the message says what the operator can do. */
export class StateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StateError";
  }
}

/** Kafka did not acknowledge a send. `retriable` says whether trying again may succeed. */
export class PublishError extends Error {
  readonly retriable: boolean;
  readonly code: string; // Kafka error type, e.g. "MESSAGE_TOO_LARGE", or "UNKNOWN"
  constructor(message: string, opts: { retriable: boolean; code: string; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.name = "PublishError";
    this.retriable = opts.retriable;
    this.code = opts.code;
  }
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
