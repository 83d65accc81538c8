/**
 * `tuntap destroy`: removes TUN/TAP devices.
 *
 * @module
 */
import { TunError } from "../mod.ts";
import { destroyTunDevice } from "../src/device_info.ts";
import { parseCommandLine } from "./parse_args.ts";
import { escapeControl } from "../src/validate.ts";
import { UsageError } from "./usage_error.ts";

/** Usage text of `tuntap destroy`. */
export const destroyUsage = `Usage: tuntap destroy NAME… [--netns NS]

Removes the TUN/TAP devices named, as \`ip link del\` does: persistent or not,
and even while a program is attached to one (its reads then fail). A name that
is not a TUN/TAP device (lo, a veth, a NIC) or does not exist is refused with
an error and left alone; the others are still removed. Exit status 1 when any
name was refused. With --netns NS, the devices of the network namespace NS
(under /run/netns, as ip netns add makes) instead of the program's own.`;

/** Runs `tuntap destroy`; exit status 1 when any name failed. */
export function destroy(args: string[]): number {
  const { values, positionals } = parseCommandLine("destroy", args, {
    netns: { type: "string" },
  });
  if (positionals.length === 0) throw new UsageError("destroy takes at least one NAME", "destroy");
  let status = 0;
  for (const name of positionals) {
    try {
      destroyTunDevice(name, { netns: values.netns });
      console.log(`destroyed ${escapeControl(name)}`);
    } catch (error) {
      if (!(error instanceof TunError || error instanceof RangeError)) throw error;
      console.error(`tuntap: ${escapeControl(error.message)}`);
      status = 1;
    }
  }
  return status;
}
