/**
 * `tuntap create`: a persistent device, configured through the library; and
 * the parsing of the configuration flags `tuntap set` shares.
 *
 * @module
 */
import { lookupId } from "../ffi/libc.ts";
import { TunInterface } from "../mod.ts";
import type { TunAddress } from "../src/address_config.ts";
import {
  parseDeviceMac,
  setMac,
  setTxQueueLength,
  validateMtu,
  validateTxQueueLength,
} from "../src/link_config.ts";
import type { Link } from "../src/netlink.ts";
import { netnsSocket, validateNetns } from "../src/netns.ts";
import { destroyTunDevice } from "../src/device_info.ts";
import { parseRoute, type TunRoute } from "../src/route_config.ts";
import { closestName } from "../src/suggest.ts";
import { escapeControl, quote } from "../src/validate.ts";
import { type CommandOptions, parseCommandLine } from "./parse_args.ts";
import { UsageError } from "./usage_error.ts";

/** Usage text of `tuntap create`. */
export const createUsage =
  `Usage: tuntap create NAME [--mode tun|tap] [--user UID|NAME] [--group GID|NAME]
                      [--pi] [--vnet-hdr] [--multi-queue]
                      [--address CIDR]… [--peer ADDR] [--route CIDR[,via=ADDR][,metric=N]]…
                      [--mtu N] [--txqueuelen N] [--mac MAC] [--up] [--netns NS]

Creates a persistent TUN (default) or TAP device named NAME; it fails if NAME
exists. It stays until \`tuntap destroy NAME\`. When a setting fails, the
device is removed again.

Options:
  --mode tun|tap      IP packets (tun, the default) or Ethernet frames (tap)
  --user, --owner UID|NAME
                      that user may attach the device without root
  --group GID|NAME    members of that group may attach the device without root
  --pi                packets carry the 4-byte packet-information header
  --vnet-hdr          packets carry a 10-byte struct virtio_net_hdr (IFF_VNET_HDR)
  --multi-queue       several programs may attach it at once (IFF_MULTI_QUEUE)
  --address CIDR      add an address, e.g. 192.0.2.1/24 or 2001:db8::1/64; repeatable
  --peer ADDR         the far end of a point-to-point link, for each --address
  --route SPEC        add a route through the device, SPEC being
                      CIDR[,via=ADDR][,metric=N]; repeatable (IPv4 routes need --up)
  --mtu N             set the MTU
  --txqueuelen N      set the transmit queue length (packets)
  --mac MAC           set the MAC address (TAP), e.g. 02:00:5e:10:00:01
  --up                bring the device up
  --netns NS          create it in the network namespace NS (under /run/netns,
                      as ip netns add makes) instead of the program's own

Whoever attaches the device later must ask for the same --pi, --vnet-hdr and
--multi-queue settings. User and group names are looked up through libc, so
--allow-ffi is all this needs. \`tuntap set NAME\` changes it later.`;

/** Runs `tuntap create`. */
export function create(args: string[]): number {
  const { values, positionals } = parseCommandLine("create", args, {
    ...configOptions,
    mode: { type: "string", default: "tun" },
    user: { type: "string" },
    owner: { type: "string" },
    group: { type: "string" },
    pi: { type: "boolean", default: false },
    "vnet-hdr": { type: "boolean", default: false },
    "multi-queue": { type: "boolean", default: false },
    netns: { type: "string" },
  });
  if (positionals.length !== 1) throw new UsageError("create takes one NAME", "create");
  const mode = values.mode;
  if (mode !== "tun" && mode !== "tap") {
    throw new UsageError(`--mode must be tun or tap, not "${mode}"`, "create");
  }
  if (values.user !== undefined && values.owner !== undefined) {
    throw new UsageError("--user and --owner are the same option: give one", "create");
  }
  const user = values.user ?? values.owner;
  const flags = parseConfigFlags(values, "create");
  if (flags.mac !== undefined && mode !== "tap") {
    throw new UsageError("--mac needs --mode tap: a TUN device has no MAC address", "create");
  }
  const tun = TunInterface.open({
    name: positionals[0],
    mode,
    persist: true,
    exclusive: true,
    packetInfo: values.pi,
    vnetHeader: values["vnet-hdr"],
    multiQueue: values["multi-queue"],
    owner: user === undefined
      ? undefined
      : parseId(user, "user", values.user ? "--user" : "--owner"),
    group: values.group === undefined ? undefined : parseId(values.group, "group"),
    addresses: flags.addresses,
    routes: flags.routes,
    mtu: flags.mtu,
    up: values.up,
    netns: values.netns,
  });
  try {
    // What open() does not take, through the handle's index as `set` does.
    const link: Link = {
      index: tun.index,
      device: `${tun.mode.toUpperCase()} device "${tun.name}"`,
      closed: false,
      netlink: values.netns === undefined
        ? undefined
        : netnsSocket(validateNetns(values.netns), `configure ${tun.name}`),
    };
    if (flags.txQueueLength !== undefined) setTxQueueLength(link, flags.txQueueLength);
    if (flags.mac !== undefined) setMac(link, flags.mac);
  } catch (error) {
    // The device is new and already persistent: remove it, as a failed open() would.
    tun.close();
    destroyTunDevice(positionals[0], { netns: values.netns });
    throw error;
  }
  console.log(`created ${mode} device ${escapeControl(tun.name)}`);
  tun.close();
  return 0;
}

/**
 * The configuration flags `create` and `set` share, as `parseArgs` takes them.
 *
 * @example Take them beside a command's own
 * ```ts ignore
 * const { values } = parseCommandLine("set", args, { ...configOptions, down: { type: "boolean" } });
 * const flags = parseConfigFlags(values, "set");
 * ```
 */
export const configOptions = {
  address: { type: "string", multiple: true, default: [] as string[] },
  peer: { type: "string" },
  route: { type: "string", multiple: true, default: [] as string[] },
  mtu: { type: "string" },
  txqueuelen: { type: "string" },
  mac: { type: "string" },
  up: { type: "boolean" },
} satisfies CommandOptions;

/**
 * What the shared configuration flags ask for: addresses and routes in the
 * form the `addresses` and `routes` options of `TunInterface.open()` take
 * (and check), the rest checked.
 *
 * @example Hand them to open()
 * ```ts ignore
 * const { addresses, routes, mtu } = parseConfigFlags(values, "create");
 * TunInterface.open({ name: "tun7", persist: true, addresses, routes, mtu });
 * ```
 */
export interface ConfigFlags {
  /** Addresses to add, each with `--peer` when given. */
  addresses: TunAddress[];
  /** Routes to add. */
  routes: TunRoute[];
  /** The MTU. */
  mtu?: number;
  /** The transmit queue length. */
  txQueueLength?: number;
  /** The MAC address. */
  mac?: Uint8Array;
}

/**
 * Parses the flags of {@linkcode configOptions}; a bad value is a
 * UsageError, TypeError or RangeError: one line, exit status 2.
 *
 * @example Parse `--mtu 1400 --address 192.0.2.1/32 --peer 192.0.2.2`
 * ```ts ignore
 * parseConfigFlags({ address: ["192.0.2.1/32"], peer: "192.0.2.2", route: [], mtu: "1400" }, "set");
 * // { addresses: [{ address: "192.0.2.1/32", peer: "192.0.2.2" }], routes: [], mtu: 1400, … }
 * ```
 */
export function parseConfigFlags(
  values: {
    address: string[];
    peer?: string;
    route: string[];
    mtu?: string;
    txqueuelen?: string;
    mac?: string;
  },
  command: string,
): ConfigFlags {
  if (values.peer !== undefined && values.address.length === 0) {
    throw new UsageError("--peer applies to --address: give the address too", command);
  }
  return {
    addresses: values.address.map((address) => ({ address, peer: values.peer })),
    routes: values.route.map((spec) => parseRouteFlag(spec, "--route", command)),
    mtu: values.mtu === undefined
      ? undefined
      : validateMtu(parseCount(values.mtu, "--mtu", command)),
    txQueueLength: values.txqueuelen === undefined
      ? undefined
      : validateTxQueueLength(parseCount(values.txqueuelen, "--txqueuelen", command)),
    mac: values.mac === undefined ? undefined : parseDeviceMac(values.mac),
  };
}

/**
 * Parses `CIDR[,via=ADDR][,metric=N]`, as `--route` and `--remove-route`
 * take it, into the form of the `routes` open option; the parts are checked
 * as `TunInterface.addRoute()` checks them.
 *
 * @example A default route through a gateway
 * ```ts ignore
 * parseRouteFlag("0.0.0.0/0,via=192.0.2.254,metric=5", "--route", "set");
 * // { destination: "0.0.0.0/0", via: "192.0.2.254", metric: 5 }
 * ```
 */
export function parseRouteFlag(text: string, option: string, command: string): TunRoute {
  const [destination, ...parts] = text.split(",");
  const route: TunRoute = { destination };
  for (const part of parts) {
    const equals = part.indexOf("=");
    const key = equals < 0 ? part : part.slice(0, equals);
    const value = part.slice(equals + 1);
    if (equals < 0 || (key !== "via" && key !== "metric") || key in route) {
      const suggestion = key in route ? undefined : closestName(key, ["via", "metric"]);
      throw new UsageError(
        `${option} takes CIDR[,via=ADDR][,metric=N], not ${quote(text)}` +
          (suggestion === undefined ? "" : `; did you mean ${suggestion}=?`),
        command,
      );
    }
    if (key === "via") route.via = value;
    else route.metric = parseCount(value, `${option} …,metric=`, command);
  }
  parseRoute(destination, route);
  return route;
}

/**
 * A uid or gid given as digits, or a user or group name looked up with
 * `getpwnam`/`getgrnam`; a name that does not exist is a usage error.
 */
export function parseId(
  text: string,
  kind: "user" | "group",
  option = `--${kind}`,
  command = "create",
): number {
  if (/^-?\d+$/.test(text)) {
    const id = Number(text);
    if (id < 0 || id > 0xfffffffe) {
      throw new UsageError(`${option} takes an id from 0 to 4294967294, not ${text}`, command);
    }
    return id;
  }
  if (text === "" || text.includes("\0")) {
    throw new UsageError(`${option} takes a number or a ${kind} name`, command);
  }
  const id = lookupId(kind, text);
  if (id === undefined) throw new UsageError(`${option}: there is no ${kind} "${text}"`, command);
  return id;
}

/** A whole number given as digits (a count, an MTU). */
export function parseCount(text: string, option: string, command: string): number {
  if (!/^\d+$/.test(text)) {
    throw new UsageError(`${option} takes a whole number, not "${text}"`, command);
  }
  return Number(text);
}
