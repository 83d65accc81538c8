/**
 * The error for a command line the CLI cannot use: exit status 2, one line,
 * no stack trace.
 *
 * @module
 */

/** A wrong command line: an unknown option, a missing name, a bad value. */
export class UsageError extends Error {
  /** Wraps the message; `command` names the subcommand whose usage applies. */
  constructor(message: string, readonly command?: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * A failure outside the kernel that the CLI reports like a kernel error:
 * exit status 1, one line (a pcap file that cannot be written, say).
 */
export class CommandError extends Error {
  /** Wraps the message. */
  constructor(message: string) {
    super(message);
    this.name = "CommandError";
  }
}
