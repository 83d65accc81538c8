/**
 * `tuntap show`: one TUN/TAP device with its addresses, routes and counters.
 *
 * @module
 */
import {
  type TunDeviceDetails,
  tunDeviceDetails,
  type TunDeviceStats,
  tunDeviceStats,
} from "../mod.ts";
import { type Cell, dim, onOff, printJson, stateCell, table } from "./output.ts";
import { escapeControl } from "../src/validate.ts";
import { parseCommandLine } from "./parse_args.ts";
import { UsageError } from "./usage_error.ts";

/** Usage text of `tuntap show`. */
export const showUsage = `Usage: tuntap show NAME [--json] [--netns NS]

Shows one TUN/TAP device: what \`tuntap list\` shows, and its index, MTU, MAC
address (TAP), addresses and routes (the main table's, through the device),
operational state and traffic counters, read over rtnetlink without
attaching it.

The counters are the kernel's (what \`ip -s -s link show\` prints), counted
from its side: "tx" is what the kernel sent into the device, which the
program attached to it reads; "rx" is what the program wrote.

With --json, one JSON object, keys in this order:
  { "name": string, "mode": "tun" | "tap", "pi": boolean, "vnetHdr": boolean,
    "multiQueue": boolean, "persist": boolean, "owner": number | null,
    "group": number | null, "queues": number, "up": boolean,
    "carrier": boolean, "operState": string,
    "index": number, "mtu": number, "mac": string | null,
    "addresses": string[],
    "routes": { "destination": string, "via"?: string, "metric"?: number }[],
    "stats": { "rxPackets": number, "txPackets": number, "rxBytes": number,
      "txBytes": number, "rxErrors": number, "txErrors": number,
      "rxDropped": number, "txDropped": number, "multicast": number,
      "collisions": number, "rxLengthErrors": number, "rxOverErrors": number,
      "rxCrcErrors": number, "rxFrameErrors": number, "rxFifoErrors": number,
      "rxMissedErrors": number, "txAbortedErrors": number,
      "txCarrierErrors": number, "txFifoErrors": number,
      "txHeartbeatErrors": number, "txWindowErrors": number,
      "rxCompressed": number, "txCompressed": number, "rxNohandler": number,
      "rxOtherhostDropped": number } }
"carrier" and "operState" are as in \`tuntap list --json\`; "mac" is null for
a TUN device; addresses are in CIDR form ("192.0.2.1/24", "2001:db8::1/64");
a route has "via" only through a gateway and "metric" only when the kernel
reports one.

With --netns NS, the device is looked up in the network namespace NS (under
/run/netns, as ip netns add makes) instead of the program's own.`;

/** What `tuntap show --json` prints: the device's details and its counters. */
export interface ShownDevice extends TunDeviceDetails {
  /** The kernel's link counters. */
  stats: TunDeviceStats;
}

/** Runs `tuntap show`. */
export function show(args: string[]): number {
  const { values, positionals } = parseCommandLine("show", args, {
    json: { type: "boolean", default: false },
    netns: { type: "string" },
  });
  if (positionals.length !== 1) throw new UsageError("show takes one NAME", "show");
  const where = { netns: values.netns };
  const details = tunDeviceDetails(positionals[0], where);
  const device: ShownDevice = { ...details, stats: tunDeviceStats(positionals[0], where) };
  if (values.json) printJson(device);
  else console.log(showText(device));
  return 0;
}

// The counters worth a person's attention besides packets, bytes, errors
// and drops, printed only when not zero, by the name `ip -s -s` gives them.
const RX_DETAILS: [keyof TunDeviceStats, string][] = [
  ["multicast", "multicast"],
  ["rxLengthErrors", "length errors"],
  ["rxOverErrors", "over errors"],
  ["rxCrcErrors", "crc errors"],
  ["rxFrameErrors", "frame errors"],
  ["rxFifoErrors", "fifo errors"],
  ["rxMissedErrors", "missed"],
  ["rxCompressed", "compressed"],
  ["rxNohandler", "nohandler"],
  ["rxOtherhostDropped", "otherhost dropped"],
];
const TX_DETAILS: [keyof TunDeviceStats, string][] = [
  ["collisions", "collisions"],
  ["txAbortedErrors", "aborted"],
  ["txCarrierErrors", "carrier errors"],
  ["txFifoErrors", "fifo errors"],
  ["txHeartbeatErrors", "heartbeat errors"],
  ["txWindowErrors", "window errors"],
  ["txCompressed", "compressed"],
];

function counters(
  stats: TunDeviceStats,
  direction: "rx" | "tx",
  details: [keyof TunDeviceStats, string][],
): string {
  const count = (key: string) => stats[`${direction}${key}` as keyof TunDeviceStats];
  return [
    `${count("Packets")} packets`,
    `${count("Bytes")} bytes`,
    `${count("Errors")} errors`,
    `${count("Dropped")} dropped`,
    ...details.filter(([key]) => stats[key] !== 0).map(([key, label]) => `${stats[key]} ${label}`),
  ].join(", ");
}

/** The person-readable form of `tuntap show`: one aligned "key  value" line each. */
export function showText(device: ShownDevice): string {
  const none = { text: "-", paint: dim };
  const rows: Cell[][] = [
    ["name", escapeControl(device.name)],
    ["index", String(device.index)],
    ["mode", device.mode],
    ["state", stateCell(device)],
    ["operstate", device.operState],
    ["queues", String(device.queues)],
    ["mtu", String(device.mtu)],
    ["mac", device.mac ?? none],
    ["persist", onOff(device.persist)],
    ["owner", device.owner === null ? none : String(device.owner)],
    ["group", device.group === null ? none : String(device.group)],
    ["pi", onOff(device.pi)],
    ["vnet_hdr", onOff(device.vnetHdr)],
    ["multi_queue", onOff(device.multiQueue)],
  ];
  const addresses = device.addresses.length ? device.addresses : ["-"];
  addresses.forEach((address, i) => rows.push([i === 0 ? "addresses" : "", address]));
  const routes = device.routes.map(({ destination, via, metric }) =>
    destination + (via === undefined ? "" : ` via ${via}`) +
    (metric === undefined ? "" : ` metric ${metric}`)
  );
  (routes.length ? routes : ["-"]).forEach((route, i) =>
    rows.push([i === 0 ? "routes" : "", route])
  );
  rows.push(["rx", counters(device.stats, "rx", RX_DETAILS)]);
  rows.push(["", { text: "(written by the program)", paint: dim }]);
  rows.push(["tx", counters(device.stats, "tx", TX_DETAILS)]);
  rows.push(["", { text: "(read by the program)", paint: dim }]);
  return table(rows);
}
