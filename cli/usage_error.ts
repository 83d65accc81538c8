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
