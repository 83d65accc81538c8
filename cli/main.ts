/**
 * The `tuntap` command: create, list, show, capture on and destroy TUN/TAP
 * devices, with `--allow-ffi` only (and `--allow-write` for `capture -w`).
 *
 * @example Create a persistent TAP device that uid 1000 may attach
 * ```sh
 * deno run --allow-ffi jsr:@tuntap/tuntap/cli create tap7 --mode tap --user 1000
 * ```
 *
 * @example Install it as a command
 * ```sh
 * deno install -g --allow-ffi --allow-write -n tuntap jsr:@tuntap/tuntap/cli
 * tuntap list --json
 * ```
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import { TunError } from "../mod.ts";
import { capture, captureUsage } from "./capture.ts";
import { create, createUsage } from "./create.ts";
import { destroy, destroyUsage } from "./destroy.ts";
import { list, listUsage } from "./list.ts";
import { show, showUsage } from "./show.ts";
import { CommandError, UsageError } from "./usage_error.ts";

interface Command {
  summary: string;
  usage: string;
  run(args: string[]): number | Promise<number>;
}

const commands: Record<string, Command> = {
  create: { summary: "create a persistent device", usage: createUsage, run: create },
  destroy: { summary: "remove devices", usage: destroyUsage, run: destroy },
  list: { summary: "list the TUN/TAP devices (--json)", usage: listUsage, run: list },
  show: {
    summary: "show one device, its addresses and routes (--json)",
    usage: showUsage,
    run: show,
  },
  capture: {
    summary: "print and record the packets of a device",
    usage: captureUsage,
    run: capture,
  },
};

const mainUsage = `Usage: tuntap COMMAND [OPTIONS]

Commands:
${Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`).join("\n")}
  help      show the usage of a command

Options:
  --help     show this help (after a command: that command's)
  --version  show the version

Run with --allow-ffi (and --allow-write for capture -w). create, destroy and
capture need root or CAP_NET_ADMIN (capture also works for the device's owner
or a member of its group); list and show need no privilege.`;

/**
 * Runs the CLI with `args` and returns the exit status: 0, 1 for a kernel
 * refusal (the {@linkcode TunError} message on stderr), 2 for a usage error
 * (one line on stderr).
 *
 * @example Run a command from a script
 * ```ts ignore
 * import { main } from "jsr:@tuntap/tuntap/cli";
 *
 * const status = await main(["list", "--json"]);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  try {
    if (name === undefined || name === "--help" || name === "-h") {
      console.log(mainUsage);
      return name === undefined ? 2 : 0;
    }
    if (name === "--version" || name === "-V") {
      console.log(`tuntap ${denoJson.version}`);
      return 0;
    }
    if (name === "help") {
      const topic = rest[0] === undefined ? undefined : commands[rest[0]];
      if (rest[0] !== undefined && topic === undefined) {
        throw new UsageError(`unknown command "${rest[0]}"`);
      }
      console.log(topic?.usage ?? mainUsage);
      return 0;
    }
    const command = commands[name];
    if (command === undefined) throw new UsageError(`unknown command "${name}"`);
    if (rest.includes("--help") || rest.includes("-h")) {
      console.log(command.usage);
      return 0;
    }
    return await command.run(rest);
  } catch (error) {
    return report(error, name);
  }
}

function report(error: unknown, command: string | undefined): number {
  if (error instanceof TunError || error instanceof CommandError) {
    console.error(`tuntap: ${error.message}`);
    return 1;
  }
  // parseArgs throws TypeErrors (with an ERR_PARSE_ARGS_* code) for unknown
  // or malformed options; the library throws TypeError/RangeError for bad
  // names and numbers. All are the caller's to fix: exit 2, one line.
  if (error instanceof UsageError || error instanceof TypeError || error instanceof RangeError) {
    const parseArgsError = String((error as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS");
    const message = parseArgsError ? error.message.split(". ")[0] : error.message;
    const topic = error instanceof UsageError && error.command
      ? error.command
      : command !== undefined && command in commands
      ? command
      : undefined;
    console.error(`tuntap: ${message} (see: tuntap help${topic ? ` ${topic}` : ""})`);
    return 2;
  }
  throw error;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
