/**
 * `tuntap destroy`: removes TUN/TAP devices.
 *
 * @module
 */
import { TunError, TunInterface } from "../mod.ts";
import { parseCommandLine } from "./parse_args.ts";
import { escapeControl } from "../src/validate.ts";
import { UsageError } from "./usage_error.ts";

/** Usage text of `tuntap destroy`. */
export const destroyUsage = `Usage: tuntap destroy NAME…

Removes the TUN/TAP devices named, as \`ip link del\` does: persistent or not,
and even while a program is attached to one (its reads then fail). A name that
is not a TUN/TAP device (lo, a veth, a NIC) or does not exist is refused with
an error and left alone; the others are still removed. Exit status 1 when any
name was refused.`;

/** Runs `tuntap destroy`; exit status 1 when any name failed. */
export function destroy(args: string[]): number {
  const { positionals } = parseCommandLine("destroy", args, {});
  if (positionals.length === 0) throw new UsageError("destroy takes at least one NAME", "destroy");
  let status = 0;
  for (const name of positionals) {
    try {
      TunInterface.destroy(name);
      console.log(`destroyed ${escapeControl(name)}`);
    } catch (error) {
      if (!(error instanceof TunError || error instanceof RangeError)) throw error;
      console.error(`tuntap: ${escapeControl(error.message)}`);
      status = 1;
    }
  }
  return status;
}
