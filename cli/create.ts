/**
 * `tuntap create`: a persistent device, configured through the library.
 *
 * @module
 */
import { lookupId } from "../ffi/libc.ts";
import { TunInterface } from "../mod.ts";
import { parseCommandLine } from "./parse_args.ts";
import { escapeControl } from "../src/validate.ts";
import { UsageError } from "./usage_error.ts";

/** Usage text of `tuntap create`. */
export const createUsage =
  `Usage: tuntap create NAME [--mode tun|tap] [--user UID|NAME] [--group GID|NAME]
                      [--pi] [--vnet-hdr] [--multi-queue]
                      [--address CIDR]… [--mtu N] [--up]

Creates a persistent TUN (default) or TAP device named NAME; it fails if NAME
exists. It stays until \`tuntap destroy NAME\`.

Options:
  --mode tun|tap      IP packets (tun, the default) or Ethernet frames (tap)
  --user UID|NAME     that user may attach the device without root
  --group GID|NAME    members of that group may attach the device without root
  --pi                packets carry the 4-byte packet-information header
  --vnet-hdr          packets carry a 10-byte struct virtio_net_hdr (IFF_VNET_HDR)
  --multi-queue       several programs may attach it at once (IFF_MULTI_QUEUE)
  --address CIDR      add an address, e.g. 192.0.2.1/24 or 2001:db8::1/64; repeatable
  --mtu N             set the MTU
  --up                bring the device up

Whoever attaches the device later must ask for the same --pi, --vnet-hdr and
--multi-queue settings. User and group names are looked up through libc, so
--allow-ffi is all this needs.`;

/** Runs `tuntap create`. */
export function create(args: string[]): number {
  const { values, positionals } = parseCommandLine("create", args, {
    mode: { type: "string", default: "tun" },
    user: { type: "string" },
    group: { type: "string" },
    pi: { type: "boolean", default: false },
    "vnet-hdr": { type: "boolean", default: false },
    "multi-queue": { type: "boolean", default: false },
    address: { type: "string", multiple: true, default: [] },
    mtu: { type: "string" },
    up: { type: "boolean" },
  });
  if (positionals.length !== 1) throw new UsageError("create takes one NAME", "create");
  const mode = values.mode;
  if (mode !== "tun" && mode !== "tap") {
    throw new UsageError(`--mode must be tun or tap, not "${mode}"`, "create");
  }
  const tun = TunInterface.open({
    name: positionals[0],
    mode,
    persist: true,
    exclusive: true,
    packetInfo: values.pi,
    vnetHeader: values["vnet-hdr"],
    multiQueue: values["multi-queue"],
    owner: values.user === undefined ? undefined : parseId(values.user, "user"),
    group: values.group === undefined ? undefined : parseId(values.group, "group"),
    addresses: values.address,
    mtu: values.mtu === undefined ? undefined : parseCount(values.mtu, "--mtu", "create"),
    up: values.up,
  });
  console.log(`created ${mode} device ${escapeControl(tun.name)}`);
  tun.close();
  return 0;
}

/**
 * A uid or gid given as digits, or a user or group name looked up with
 * `getpwnam`/`getgrnam`; a name that does not exist is a usage error.
 */
export function parseId(text: string, kind: "user" | "group"): number {
  const option = `--${kind}`;
  if (/^-?\d+$/.test(text)) {
    const id = Number(text);
    if (id < 0 || id > 0xfffffffe) {
      throw new UsageError(`${option} takes an id from 0 to 4294967294, not ${text}`, "create");
    }
    return id;
  }
  if (text === "" || text.includes("\0")) {
    throw new UsageError(`${option} takes a number or a ${kind} name`, "create");
  }
  const id = lookupId(kind, text);
  if (id === undefined) throw new UsageError(`${option}: there is no ${kind} "${text}"`, "create");
  return id;
}

/** A whole number given as digits (a count, an MTU). */
export function parseCount(text: string, option: string, command: string): number {
  if (!/^\d+$/.test(text)) {
    throw new UsageError(`${option} takes a whole number, not "${text}"`, command);
  }
  return Number(text);
}
