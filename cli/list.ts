/**
 * `tuntap list`: every TUN/TAP device of the network namespace.
 *
 * @module
 */
import { listTunDevices, type TunDeviceInfo } from "../mod.ts";
import { type Cell, dim, onOff, printJson, stateCell, table } from "./output.ts";
import { escapeControl } from "../src/validate.ts";
import { parseCommandLine } from "./parse_args.ts";
import { UsageError } from "./usage_error.ts";

/** Usage text of `tuntap list`. */
export const listUsage = `Usage: tuntap list [--json] [--netns NS]

Lists every TUN/TAP device of this network namespace, whoever made it, as the
kernel reports it over rtnetlink (what \`ip -d link show\` reads). No device is
attached and no privilege is needed.

Columns: NAME, MODE (tun or tap), STATE (down, up, or "up, no carrier" for a
device that is up with nothing attached: ip's NO-CARRIER), QUEUES (attached
file descriptors), PERSIST, OWNER and GROUP (uid and gid allowed to attach
without root, - when unset), PI (packet-information header), VNET_HDR,
MULTI_QUEUE.

With --json, one JSON array, one object per device, keys in this order:
  { "name": string, "mode": "tun" | "tap", "pi": boolean, "vnetHdr": boolean,
    "multiQueue": boolean, "persist": boolean, "owner": number | null,
    "group": number | null, "queues": number, "up": boolean,
    "carrier": boolean, "operState": string }
"up" is IFF_UP (administratively up); "carrier" is the kernel's carrier
(IFLA_CARRIER), which a TUN/TAP device has while something is attached, up
or down; "operState" is the operational state as ip prints it after "state":
"UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT" or
"UP" (an attached TUN/TAP device that is up reads "UP" or "UNKNOWN"; the
kernel settles it up to a second after the carrier changes).

QUEUES of a single-queue device is 1 while something is attached and 0
otherwise, read from its carrier (the kernel raises it on attach and drops it
on detach); one whose holder dropped the carrier itself shows 0.

With --netns NS, the devices of the network namespace NS (under /run/netns,
as ip netns add makes) instead of the program's own.`;

/** Runs `tuntap list`. */
export function list(args: string[]): number {
  const { values, positionals } = parseCommandLine("list", args, {
    json: { type: "boolean", default: false },
    netns: { type: "string" },
  });
  if (positionals.length > 0) {
    throw new UsageError(
      `list takes no NAME (did you mean: tuntap show ${positionals[0]})`,
      "list",
    );
  }
  const devices = listTunDevices({ netns: values.netns });
  if (values.json) {
    printJson(devices);
  } else if (devices.length === 0) {
    console.log("no TUN/TAP devices in this network namespace");
  } else {
    console.log(listTable(devices));
  }
  return 0;
}

/** The aligned table of `tuntap list`, header first. */
export function listTable(devices: readonly TunDeviceInfo[]): string {
  const header = [
    "NAME",
    "MODE",
    "STATE",
    "QUEUES",
    "PERSIST",
    "OWNER",
    "GROUP",
    "PI",
    "VNET_HDR",
    "MULTI_QUEUE",
  ];
  const rows = devices.map((device): Cell[] => [
    escapeControl(device.name),
    device.mode,
    stateCell(device),
    String(device.queues),
    onOff(device.persist),
    device.owner === null ? { text: "-", paint: dim } : String(device.owner),
    device.group === null ? { text: "-", paint: dim } : String(device.group),
    onOff(device.pi),
    onOff(device.vnetHdr),
    onOff(device.multiQueue),
  ]);
  return table([header, ...rows]);
}
