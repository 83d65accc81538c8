/**
 * The `tuntap` command: create, change, list, show, watch, capture on and
 * destroy TUN/TAP devices, with `--allow-ffi` only (and `--allow-write` for
 * `capture -w`).
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
import { escapeControl, quote } from "../src/validate.ts";
import { closestName } from "../src/suggest.ts";
import { unknownOption } from "./parse_args.ts";
import { set, setUsage } from "./set.ts";
import { show, showUsage } from "./show.ts";
import { watch, watchUsage } from "./watch.ts";
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
    summary: "show one device, its addresses, routes and counters (--json)",
    usage: showUsage,
    run: show,
  },
  set: { summary: "change a device: addresses, routes, MTU, state…", usage: setUsage, run: set },
  capture: {
    summary: "print and record the packets of a device",
    usage: captureUsage,
    run: capture,
  },
  watch: { summary: "a live view of every device's traffic", usage: watchUsage, run: watch },
};

const mainUsage = `Usage: tuntap COMMAND [OPTIONS]

Commands:
${Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`).join("\n")}
  help      show the usage of a command

Options:
  --help     show this help (after a command: that command's)
  --version  show the version

Run with --allow-ffi (and --allow-write for capture -w). create, set, destroy
and capture --attach need root or CAP_NET_ADMIN (attaching also works for the
device's owner or a member of its group); capture needs CAP_NET_RAW; list, show
and watch need no privilege.`;

/**
 * Runs the CLI with `args` and returns the exit status: 0, 1 for a kernel
 * refusal (the {@linkcode TunError} message on stderr), 2 for a usage error
 * or a missing `--allow-ffi` (one line on stderr, with a suggestion where a
 * known option or command is close). Control characters in anything printed
 * on stderr are escaped.
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
      const topic = rest[0] === undefined ? undefined : findCommand(rest[0]);
      console.log(topic?.usage ?? mainUsage);
      return 0;
    }
    if (name.startsWith("-")) {
      throw new UsageError(unknownOption(name, ["--help", "--version", "-h", "-V"]));
    }
    const command = findCommand(name);
    if (rest.includes("--help") || rest.includes("-h")) {
      console.log(command.usage);
      return 0;
    }
    return await command.run(rest);
  } catch (error) {
    return report(error, name);
  }
}

/** The command called `name`; a usage error naming the closest one if there is none. */
function findCommand(name: string): Command {
  if (Object.hasOwn(commands, name)) return commands[name];
  const suggestion = closestName(name, [...Object.keys(commands), "help"]);
  throw new UsageError(
    `unknown command ${quote(name)}` +
      (suggestion === undefined ? "" : `; did you mean ${suggestion}?`),
  );
}

function report(error: unknown, command: string | undefined): number {
  // Messages can quote device names and arguments, which may hold any byte
  // but "/", ":" and whitespace: escape them so that none reaches the terminal.
  const print = (message: string) => console.error(`tuntap: ${escapeControl(message)}`);
  if (error instanceof TunError || error instanceof CommandError) {
    print(error.message);
    return 1;
  }
  if (error instanceof Deno.errors.NotCapable) {
    // "Requires ffi access to "libc.so.6", run again with the --allow-ffi flag"
    const flag = /--allow-[a-z-]+/.exec(error.message)?.[0] ?? "--allow-ffi";
    print(
      `run with ${flag}: the tuntap command talks to the kernel through libc ` +
        `(deno run ${flag} …, or deno task tuntap)`,
    );
    return 2;
  }
  // The library throws TypeError/RangeError for bad names and numbers, the
  // commands UsageError: all are the caller's to fix: exit 2, one line.
  if (error instanceof UsageError || error instanceof TypeError || error instanceof RangeError) {
    const topic = error instanceof UsageError && error.command
      ? error.command
      : command !== undefined && Object.hasOwn(commands, command)
      ? command
      : undefined;
    print(`${error.message} (see: tuntap help${topic ? ` ${topic}` : ""})`);
    return 2;
  }
  throw error;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
