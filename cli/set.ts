/**
 * `tuntap set`: change an existing device through the library, all or
 * nothing. Also the parsing of the configuration flags `tuntap create`
 * shares.
 *
 * @module
 */
import { TunError, TunInterface } from "../mod.ts";
import { addAddress, parseAddress, removeAddress } from "../src/address_config.ts";
import { readTunLink, type TunDeviceInfo, tunDeviceInfo } from "../src/device_info.ts";
import { setMac, setTxQueueLength } from "../src/link_config.ts";
import type { Link } from "../src/netlink.ts";
import { applyOpenConfig, parseOpenConfig, runUndo, type UndoSteps } from "../src/open_config.ts";
import {
  addRoute,
  listRoutes,
  parseRoute,
  removeRoute,
  type RouteSpec,
} from "../src/route_config.ts";
import { escapeControl, quote } from "../src/validate.ts";
import { formatIp } from "../packet/address.ts";
import { configOptions, parseConfigFlags, parseId, parseRouteFlag } from "./create.ts";
import { parseCommandLine } from "./parse_args.ts";
import { inNamespace } from "../src/netns.ts";
import { CommandError, UsageError } from "./usage_error.ts";

/**
 * Usage text of `tuntap set`.
 *
 * @example Print it
 * ```ts ignore
 * console.log(setUsage);
 * ```
 */
export const setUsage =
  `Usage: tuntap set NAME [--address CIDR]… [--peer ADDR] [--remove-address CIDR]…
                   [--route CIDR[,via=ADDR][,metric=N]]… [--remove-route CIDR[,…]]…
                   [--mtu N] [--txqueuelen N] [--up | --down] [--mac MAC]
                   [--carrier on|off] [--owner UID|NAME] [--group GID|NAME]
                   [--persist on|off] [--netns NS]

Changes the existing TUN/TAP device NAME. All or nothing: when a step fails,
what the earlier ones changed is put back, and the error says which failed.

Options:
  --address CIDR        add an address, e.g. 192.0.2.1/24 or 2001:db8::1/64; repeatable
  --peer ADDR           the far end of a point-to-point link, for each --address
  --remove-address CIDR remove an address; repeatable
  --route SPEC          add a route through the device, SPEC being
                        CIDR[,via=ADDR][,metric=N], e.g. 0.0.0.0/0,via=192.0.2.254;
                        repeatable
  --remove-route SPEC   remove such a route (without via= or metric=, the one
                        route to CIDR through the device); repeatable
  --mtu N               set the MTU
  --txqueuelen N        set the transmit queue length (packets)
  --up, --down          bring the device up or down
  --mac MAC             set the MAC address of a TAP device, e.g. 02:00:5e:10:00:01
  --carrier on|off      raise or drop the carrier
  --owner UID|NAME      that user may attach the device without root
  --group GID|NAME      members of that group may attach the device without root
  --persist on|off      keep the device when nothing holds it, or not: off on a
                        device nothing holds removes it
  --netns NS            the device is in the network namespace NS (under
                        /run/netns, as ip netns add makes), not the program's own

Removals come first, then the MTU, transmit queue length and MAC address,
then added addresses, the state, added routes (a gateway must be on a network
of the device, which must be up), and last --carrier, --owner, --group and
--persist. Those four need the device's file descriptor: set attaches the
device for a moment, which a single-queue device that another program holds
refuses (EBUSY). A TUN/TAP device has a carrier only while something is
attached, and the kernel drops it when the last holder lets go: --carrier
works on a multi-queue device that a program holds, and is refused on a
device nothing holds.`;

/** Parses `on` or `off`. */
function parseOnOff(text: string | undefined, option: string): boolean | undefined {
  if (text === undefined) return undefined;
  if (text === "on" || text === "off") return text === "on";
  throw new UsageError(`${option} takes on or off, not ${quote(text)}`, "set");
}

/**
 * Runs `tuntap set`: 0 when every change was made; a kernel refusal (after
 * undoing the changes before it) is thrown for the CLI to report.
 *
 * @example Give a device an address and a default route
 * ```ts ignore
 * set(["tun7", "--address", "192.0.2.1/24", "--up", "--route", "0.0.0.0/0,via=192.0.2.254"]);
 * ```
 */
export function set(args: string[]): number {
  const { values, positionals } = parseCommandLine("set", args, {
    ...configOptions,
    "remove-address": { type: "string", multiple: true, default: [] },
    "remove-route": { type: "string", multiple: true, default: [] },
    down: { type: "boolean" },
    carrier: { type: "string" },
    owner: { type: "string" },
    group: { type: "string" },
    persist: { type: "string" },
    netns: { type: "string" },
  });
  if (positionals.length !== 1) throw new UsageError("set takes one NAME", "set");
  const [name] = positionals;
  if (values.up && values.down) throw new UsageError("--up and --down exclude each other", "set");
  const flags = parseConfigFlags(values, "set");
  const up = values.up ? true : values.down ? false : undefined;
  const config = parseOpenConfig({ ...flags, up });
  const removedAddresses = values["remove-address"].map((cidr) => parseAddress(cidr));
  const removedRoutes = values["remove-route"].map((spec) => {
    const { destination, ...options } = parseRouteFlag(spec, "--remove-route", "set");
    return parseRoute(destination, options);
  });
  const carrier = parseOnOff(values.carrier, "--carrier");
  const persist = parseOnOff(values.persist, "--persist");
  const owner = values.owner === undefined
    ? undefined
    : parseId(values.owner, "user", "--owner", "set");
  const group = values.group === undefined
    ? undefined
    : parseId(values.group, "group", "--group", "set");
  const needsFd = carrier !== undefined || owner !== undefined || group !== undefined ||
    persist !== undefined;
  if (
    !needsFd && up === undefined && flags.addresses.length === 0 && flags.routes.length === 0 &&
    flags.mtu === undefined && flags.txQueueLength === undefined && flags.mac === undefined &&
    removedAddresses.length === 0 && removedRoutes.length === 0
  ) {
    throw new UsageError("set needs something to change, e.g. --address CIDR or --up", "set");
  }

  const action = `change TUN/TAP device "${name}"`;
  // In another namespace, every request goes through that namespace's socket.
  return inNamespace({ netns: values.netns }, action, () => {
    const before = readTunLink(name, action);
    const info = tunDeviceInfo(name);
    if (flags.mac !== undefined && info.mode !== "tap") {
      throw new UsageError(
        `--mac: ${name} is a TUN device, which carries IP packets without an Ethernet ` +
          `header and has no MAC address (only TAP devices do)`,
        "set",
      );
    }
    if (carrier !== undefined && info.queues === 0) {
      // set would raise it on its own queue, and it would drop as set lets go.
      throw new CommandError(
        `Cannot set the carrier of ${name}: nothing is attached to it (or its holder dropped ` +
          `the carrier), and the kernel drops the carrier when the last holder lets go: ` +
          `set it from the program that holds the device`,
      );
    }
    // No handle: requests go by the index just read, as tunDeviceDetails does.
    const link: Link = {
      index: before.index,
      device: `${info.mode.toUpperCase()} device "${name}"`,
      closed: false,
    };
    const undo: UndoSteps = [];
    try {
      for (const wanted of removedRoutes) {
        // The route as the kernel has it, so that undoing restores its gateway and metric.
        const route = findRoute(link, wanted) ?? wanted;
        removeRoute(link, route);
        undo.push(() => addRoute(link, route));
      }
      for (const address of removedAddresses) {
        removeAddress(link, address);
        // The peer of a point-to-point address is not known here: it comes back without.
        undo.push(() => addAddress(link, address));
      }
      if (flags.txQueueLength !== undefined && flags.txQueueLength !== before.txQueueLength) {
        setTxQueueLength(link, flags.txQueueLength);
        undo.push(() => setTxQueueLength(link, before.txQueueLength));
      }
      if (flags.mac !== undefined && !sameBytes(flags.mac, before.mac)) {
        setMac(link, flags.mac);
        const old = before.mac;
        if (old) undo.push(() => setMac(link, old));
      }
      applyOpenConfig(link, config, undo);
      if (needsFd) {
        // Attached last: open() undoes its own steps when one fails, and the
        // owner, group and persistence cannot be put back from here.
        const tun = attach(name, info, link.device, { owner, group, persist, netns: values.netns });
        try {
          if (carrier !== undefined) tun.setCarrier(carrier);
        } finally {
          tun.close();
        }
      }
    } catch (error) {
      runUndo(undo);
      throw error;
    }
    if (persist === false && info.queues === 0) {
      console.error(
        `${escapeControl(name)} is no longer persistent and nothing held it: it is gone`,
      );
    }
    console.log(`changed ${info.mode} device ${escapeControl(name)}`);
    return 0;
  });
}

/** The one route through the device that `wanted` names; undefined when none or several. */
function findRoute(link: Link, wanted: RouteSpec): RouteSpec | undefined {
  const destination = `${formatIp(wanted.destination)}/${wanted.prefixLength}`;
  const via = wanted.via && formatIp(wanted.via);
  const found = listRoutes(link).filter((route) =>
    route.destination === destination &&
    (via === undefined || route.via === via) &&
    (wanted.metric === undefined || route.metric === wanted.metric)
  );
  return found.length === 1 ? parseRoute(found[0].destination, found[0]) : undefined;
}

/**
 * Attaches the device with its own flags, as `capture` does, setting owner,
 * group and persistence on the way; EBUSY (another program holds a
 * single-queue device) is explained.
 */
function attach(
  name: string,
  info: TunDeviceInfo,
  device: string,
  settings: { owner?: number; group?: number; persist?: boolean; netns?: string },
): TunInterface {
  try {
    return TunInterface.open({
      name,
      mode: info.mode,
      packetInfo: info.pi,
      vnetHeader: info.vnetHdr,
      multiQueue: info.multiQueue,
      ...settings,
    });
  } catch (error) {
    if (!(error instanceof TunError && error.code === "EBUSY")) throw error;
    throw new TunError({
      errno: error.errno,
      syscall: error.syscall,
      action: `attach ${device}`,
      hint: "another program holds it, and a single-queue device has one holder: " +
        "--carrier, --owner, --group and --persist need the device's file descriptor, so " +
        "make those changes from that program or once it has let go (nothing was changed)",
    });
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((byte, i) => byte === b[i]);
}
