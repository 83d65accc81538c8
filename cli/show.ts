/**
 * `tuntap show`: one TUN/TAP device with its addresses and routes.
 *
 * @module
 */
import { type TunDeviceDetails, tunDeviceDetails } from "../mod.ts";
import { type Cell, dim, green, onOff, printJson, table } from "./output.ts";
import { escapeControl } from "../src/validate.ts";
import { parseCommandLine } from "./parse_args.ts";
import { UsageError } from "./usage_error.ts";

/** Usage text of `tuntap show`. */
export const showUsage = `Usage: tuntap show NAME [--json]

Shows one TUN/TAP device: what \`tuntap list\` shows, and its index, MTU, MAC
address (TAP), addresses and routes (the main table's, through the device),
read over rtnetlink without attaching it.

With --json, one JSON object, keys in this order:
  { "name": string, "mode": "tun" | "tap", "pi": boolean, "vnetHdr": boolean,
    "multiQueue": boolean, "persist": boolean, "owner": number | null,
    "group": number | null, "queues": number, "up": boolean,
    "index": number, "mtu": number, "mac": string | null,
    "addresses": string[],
    "routes": { "destination": string, "via"?: string, "metric"?: number }[] }
"mac" is null for a TUN device; addresses are in CIDR form
("192.0.2.1/24", "2001:db8::1/64"); a route has "via" only through a gateway
and "metric" only when the kernel reports one.`;

/** Runs `tuntap show`. */
export function show(args: string[]): number {
  const { values, positionals } = parseCommandLine("show", args, {
    json: { type: "boolean", default: false },
  });
  if (positionals.length !== 1) throw new UsageError("show takes one NAME", "show");
  const device = tunDeviceDetails(positionals[0]);
  if (values.json) printJson(device);
  else console.log(showText(device));
  return 0;
}

/** The person-readable form of `tuntap show`: one aligned "key  value" line each. */
export function showText(device: TunDeviceDetails): string {
  const none = { text: "-", paint: dim };
  const rows: Cell[][] = [
    ["name", escapeControl(device.name)],
    ["index", String(device.index)],
    ["mode", device.mode],
    ["state", device.up ? { text: "up", paint: green } : { text: "down", paint: dim }],
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
  return table(rows);
}
