/**
 * The one place the CLI takes its argument parser from. The design names
 * `@std/cli`, which lives on JSR and cannot be reached from this build
 * environment; `node:util`'s `parseArgs` stands in until then.
 * {@linkcode parseCommandLine} wraps it so that every mistake is one
 * {@linkcode UsageError} line, with a suggestion where one is close.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { closestName } from "../src/suggest.ts";
import { quote } from "../src/validate.ts";
import { UsageError } from "./usage_error.ts";

export { parseArgs };

/** The options a command takes, as `parseArgs` describes them. */
export type CommandOptions = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses `args` for `command` with positionals allowed. A value that starts
 * with "-" and a digit (`--timeout -1`) is taken as the value, so that the
 * command's own check refuses it in one line; any other parser complaint
 * becomes a {@linkcode UsageError}: `unknown option "--moed"; did you mean
 * --mode?`.
 *
 * @example Parse the options of a command
 * ```ts ignore
 * const { values, positionals } = parseCommandLine("list", Deno.args, {
 *   json: { type: "boolean", default: false },
 * });
 * ```
 */
export function parseCommandLine<const T extends CommandOptions>(
  command: string,
  args: string[],
  options: T,
): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true }>> {
  try {
    return parseArgs({
      args: joinNegativeValues(args, options),
      options,
      allowPositionals: true,
    });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== "string" || !code.startsWith("ERR_PARSE_ARGS")) throw error;
    throw new UsageError(describeParseError(error as Error, code, options), command);
  }
}

/** An unknown option, with the closest known one when there is one. */
export function unknownOption(option: string, known: readonly string[]): string {
  const suggestion = closestName(option, known);
  return `unknown option ${quote(option)}` +
    (suggestion === undefined ? "" : `; did you mean ${suggestion}?`);
}

/** `--name` for each long option and `-x` for each short one. */
function optionNames(options: CommandOptions): string[] {
  const names = Object.keys(options).map((name) => `--${name}`);
  for (const spec of Object.values(options)) if (spec.short) names.push(`-${spec.short}`);
  return [...names, "--help"];
}

function describeParseError(error: Error, code: string, options: CommandOptions): string {
  // The parser quotes the option it stumbled on: "Unknown option '--moed'. To …".
  const option = /'(-[^' ]*)/.exec(error.message)?.[1] ?? "";
  const spec = Object.entries(options).find(([name, spec]) =>
    option === `--${name}` || option === `-${spec.short}`
  );
  const name = spec ? `--${spec[0]}` : option;
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION": {
      // "--mode=tun" arrives whole; suggest on the part before "=".
      const [bare] = option.split("=");
      return unknownOption(bare, optionNames(options));
    }
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      if (spec?.[1].type === "boolean") return `${name} takes no value`;
      return `${name} needs a value`;
  }
  return error.message.split("\n")[0];
}

/**
 * `--timeout -1` as `--timeout=-1`: the parser would otherwise call "-1" an
 * ambiguous option and explain it in three lines.
 */
function joinNegativeValues(args: string[], options: CommandOptions): string[] {
  const takesValue = new Set<string>();
  for (const [name, spec] of Object.entries(options)) {
    if (spec.type !== "string") continue;
    takesValue.add(`--${name}`);
    if (spec.short) takesValue.add(`-${spec.short}`);
  }
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      joined.push(...args.slice(i));
      break;
    }
    const next = args[i + 1];
    if (takesValue.has(arg) && next !== undefined && /^-[\d.]/.test(next)) {
      joined.push(`${arg.startsWith("--") ? arg : longName(arg, options)}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

function longName(short: string, options: CommandOptions): string {
  const found = Object.entries(options).find(([, spec]) => `-${spec.short}` === short);
  return found ? `--${found[0]}` : short;
}
