/**
 * What the kernel says about the TUN/TAP devices of the network namespace,
 * from rtnetlink (`RTM_GETLINK`: `IFLA_LINKINFO` of kind `"tun"`), the
 * source `ip -d link show` reads too: no attach, no `/sys`, no `ip`.
 * Deleting a device by index (`RTM_DELLINK`) lives here as well, since it
 * first checks that the name is a TUN/TAP device.
 *
 * @module
 */
import { EINVAL } from "../ffi/errno.ts";
import {
  get_u32,
  get_u8,
  IFLA_TUN_GROUP,
  IFLA_TUN_MULTI_QUEUE,
  IFLA_TUN_NUM_QUEUES,
  IFLA_TUN_OWNER,
  IFLA_TUN_PERSIST,
  IFLA_TUN_PI,
  IFLA_TUN_TYPE,
  IFLA_TUN_VNET_HDR,
} from "../ffi/netlink.ts";
import { formatMac } from "../packet/address.ts";
import { listAddresses } from "./address_config.ts";
import { deleteLink, type LinkInfo, listLinks, readLinkByName } from "./link_config.ts";
import type { Link } from "./netlink.ts";
import { inNamespace } from "./netns.ts";
import { listRoutes, type TunRoute } from "./route_config.ts";
import { TunError } from "./tun_error.ts";
import type { TunMode } from "./tun_mode.ts";
import { validateInterfaceName } from "./validate.ts";

/**
 * One TUN/TAP device as {@linkcode listTunDevices} reports it (and
 * `tuntap list --json` prints it).
 *
 * @example Print the devices no process is attached to
 * ```ts ignore
 * import { listTunDevices } from "@tuntap/tuntap";
 *
 * for (const device of listTunDevices()) {
 *   if (device.queues === 0) console.log(`${device.name} is idle`);
 * }
 * ```
 */
export interface TunDeviceInfo {
  /** The interface name. */
  name: string;
  /** `"tun"` (IP packets) or `"tap"` (Ethernet frames). */
  mode: TunMode;
  /** Whether packets carry the 4-byte packet-information header (`IFF_NO_PI` clear). */
  pi: boolean;
  /** Whether packets carry a `struct virtio_net_hdr` (`IFF_VNET_HDR`). */
  vnetHdr: boolean;
  /** Whether it is a multi-queue device (`IFF_MULTI_QUEUE`). */
  multiQueue: boolean;
  /** Whether it outlives the last handle (`TUNSETPERSIST`). */
  persist: boolean;
  /** The uid that may attach it without CAP_NET_ADMIN, `null` when none is set. */
  owner: number | null;
  /** The gid whose members may attach it without CAP_NET_ADMIN, `null` when none is set. */
  group: number | null;
  /**
   * How many file descriptors are attached: for a multi-queue device the
   * kernel's count of enabled queues (`IFLA_TUN_NUM_QUEUES`). A single-queue
   * device has no such count; the kernel raises its carrier on attach and
   * drops it on detach, so it is 1 with the carrier and 0 without, and a
   * holder that dropped the carrier itself (`setCarrier(false)`) counts as 0.
   */
  queues: number;
  /** Whether the device is administratively up (`IFF_UP`), as `ip link set DEV up` makes it. */
  up: boolean;
  /**
   * Whether the link has a carrier (`IFLA_CARRIER`). A TUN/TAP device has
   * one while a file descriptor is attached (unless its holder dropped it
   * with `setCarrier(false)`), whether it is up or down; `ip` prints
   * `NO-CARRIER` for a device that is up without one.
   */
  carrier: boolean;
  /**
   * The operational state (`IFLA_OPERSTATE`) as `ip link` prints it after
   * `state`: `"DOWN"` for a device that is down or has no carrier; `"UP"`
   * or `"UNKNOWN"` for one that is up with a carrier (a TUN/TAP device
   * reports no state of its own, so which depends on the order it was
   * attached and brought up). The kernel settles it up to a second after
   * the carrier changes.
   */
  operState: TunOperState;
}

/**
 * An operational state as `ip link` prints it (RFC 2863's `ifOperStatus`,
 * the kernel's `IF_OPER_*`).
 *
 * @example Tell whether packets can flow
 * ```ts ignore
 * import { type TunOperState, tunDeviceInfo } from "@tuntap/tuntap";
 *
 * const state: TunOperState = tunDeviceInfo("tun0").operState;
 * if (state === "DOWN") console.log("down, or nothing attached");
 * ```
 */
export type TunOperState =
  | "UNKNOWN"
  | "NOTPRESENT"
  | "DOWN"
  | "LOWERLAYERDOWN"
  | "TESTING"
  | "DORMANT"
  | "UP";

// IF_OPER_UNKNOWN (0) to IF_OPER_UP (6), in the kernel's order.
const OPER_STATES: readonly TunOperState[] = [
  "UNKNOWN",
  "NOTPRESENT",
  "DOWN",
  "LOWERLAYERDOWN",
  "TESTING",
  "DORMANT",
  "UP",
];

/**
 * One TUN/TAP device as {@linkcode tunDeviceDetails} reports it (and
 * `tuntap show --json` prints it): {@linkcode TunDeviceInfo} and its index,
 * MTU, MAC address, addresses and routes.
 *
 * @example Print the addresses of a device
 * ```ts ignore
 * import { tunDeviceDetails } from "@tuntap/tuntap";
 *
 * const { addresses, routes } = tunDeviceDetails("tun0");
 * console.log(addresses, routes.map((route) => route.destination));
 * ```
 */
export interface TunDeviceDetails extends TunDeviceInfo {
  /** The interface index. */
  index: number;
  /** The MTU. */
  mtu: number;
  /** The MAC address of a TAP device, e.g. `"02:00:5e:10:00:01"`; `null` for a TUN device. */
  mac: string | null;
  /** Its addresses of both families in CIDR form, as `ip addr show dev DEV` lists them. */
  addresses: string[];
  /** The main table's unicast routes through it, as `ip route show dev DEV` lists them. */
  routes: TunRoute[];
}

// INVALID_UID / INVALID_GID: what "no owner" would be if the kernel sent it.
const INVALID_ID = 0xffffffff;
// IFLA_TUN_TYPE holds the IFF_TUN or IFF_TAP bit.
const TUN_TYPE_TAP = 2;
const TUN_KIND = "tun";

/**
 * Every TUN/TAP device of this network namespace, in index order, from one
 * `RTM_GETLINK` dump: whoever created them and whether or not anything is
 * attached; with `netns`, of that namespace instead (a name under `/run/netns`
 * or an fd of a namespace; reading another namespace needs `CAP_SYS_ADMIN`).
 * Needs `--allow-ffi` only, and no privileges in the program's own namespace.
 *
 * @example List the devices
 * ```ts ignore
 * import { listTunDevices } from "@tuntap/tuntap";
 *
 * for (const { name, mode, persist, queues } of listTunDevices()) {
 *   console.log(name, mode, persist ? "persistent" : "", `${queues} attached`);
 * }
 * ```
 *
 * @example List the devices of the namespace `ip netns add blue` made
 * ```ts ignore
 * import { listTunDevices } from "@tuntap/tuntap";
 *
 * console.log(listTunDevices({ netns: "blue" }).map((device) => device.name));
 * ```
 */
export function listTunDevices(options: { netns?: string | number } = {}): TunDeviceInfo[] {
  const list = () =>
    listLinks("list the TUN/TAP devices").filter((link) => link.kind === TUN_KIND).map(tunInfo);
  return inNamespace(options, "list the TUN/TAP devices", list);
}

/**
 * One TUN/TAP device by name, in one `RTM_GETLINK`. A name that does not
 * exist fails with a {@linkcode TunError} `ENODEV`, one that is not a
 * TUN/TAP device (`lo`, a veth) with `EINVAL`.
 *
 * @example Check how a device is set up before attaching it
 * ```ts ignore
 * import { TunInterface, tunDeviceInfo } from "@tuntap/tuntap";
 *
 * const info = tunDeviceInfo("tun0");
 * using tun = TunInterface.open({
 *   name: info.name,
 *   mode: info.mode,
 *   packetInfo: info.pi,
 *   vnetHeader: info.vnetHdr,
 *   multiQueue: info.multiQueue,
 * });
 * ```
 */
export function tunDeviceInfo(name: string): TunDeviceInfo {
  return tunInfo(readTunLink(name, `read TUN/TAP device "${name}"`));
}

/**
 * One TUN/TAP device by name with its index, MTU, MAC address, addresses
 * and routes, read over rtnetlink without attaching it. Fails as
 * {@linkcode tunDeviceInfo} does.
 *
 * @example Print what `tuntap show` prints
 * ```ts ignore
 * import { tunDeviceDetails } from "@tuntap/tuntap";
 *
 * console.log(JSON.stringify(tunDeviceDetails("tap0"), null, 2));
 * ```
 */
export function tunDeviceDetails(
  name: string,
  options: { netns?: string | number } = {},
): TunDeviceDetails {
  return inNamespace(options, `read TUN/TAP device "${name}"`, () => deviceDetails(name));
}

function deviceDetails(name: string): TunDeviceDetails {
  const link = readTunLink(name, `read TUN/TAP device "${name}"`);
  const info = tunInfo(link);
  const handle: Link = {
    index: link.index,
    device: `${info.mode.toUpperCase()} device "${link.name}"`,
    closed: false,
  };
  return {
    ...info,
    index: link.index,
    mtu: link.mtu,
    mac: info.mode === "tap" && link.mac ? formatMac(link.mac) : null,
    addresses: listAddresses(handle),
    routes: listRoutes(handle),
  };
}

/**
 * Deletes a TUN/TAP device by index with `RTM_DELLINK`, whether or not it
 * is persistent and whether or not something is attached (those handles'
 * reads then fail with `EBADFD`). A name that is not a TUN/TAP device is
 * refused with `EINVAL` before anything is deleted.
 */
export function destroyTunDevice(name: string, options: { netns?: string | number } = {}): void {
  const action = `destroy device "${name}"`;
  inNamespace(options, action, () => {
    const link = readTunLink(name, action);
    deleteLink({ index: link.index, device: `device "${name}"`, closed: false }, action);
  });
}

/**
 * Reads a TUN/TAP device by name: the name checked as
 * {@linkcode tunDeviceInfo} checks it, then `ENODEV` when it does not
 * exist and `EINVAL` when it is not a TUN/TAP device.
 */
export function readTunLink(name: string, action: string): LinkInfo {
  validateInterfaceName(name, "Device name");
  if (name.includes("%")) {
    throw new RangeError(`Device name "${name}" is a template; name one device`);
  }
  const link = readLinkByName(name, action);
  if (link.kind !== TUN_KIND) {
    throw new TunError({
      errno: EINVAL,
      syscall: "netlink(RTM_GETLINK)",
      action,
      hint: `it is not a TUN/TAP device (${
        link.kind ? `its kind is "${link.kind}"` : "it has no link kind, like lo or a NIC"
      })`,
    });
  }
  return link;
}

// The one decoder of IFLA_INFO_DATA for kind "tun".
function tunInfo(link: LinkInfo): TunDeviceInfo {
  const data = link.kindData;
  const flag = (type: number) => {
    const value = data.get(type);
    return value !== undefined && get_u8(value) !== 0;
  };
  const id = (type: number) => {
    const value = data.get(type);
    if (value === undefined) return null;
    const number = get_u32(value);
    return number === INVALID_ID ? null : number;
  };
  const type = data.get(IFLA_TUN_TYPE);
  const multiQueue = flag(IFLA_TUN_MULTI_QUEUE);
  const numQueues = data.get(IFLA_TUN_NUM_QUEUES);
  return {
    name: link.name,
    mode: type !== undefined && get_u8(type) === TUN_TYPE_TAP ? "tap" : "tun",
    pi: flag(IFLA_TUN_PI),
    vnetHdr: flag(IFLA_TUN_VNET_HDR),
    multiQueue,
    persist: flag(IFLA_TUN_PERSIST),
    owner: id(IFLA_TUN_OWNER),
    group: id(IFLA_TUN_GROUP),
    queues: numQueues !== undefined ? get_u32(numQueues) : link.carrier ? 1 : 0,
    up: link.up,
    carrier: link.carrier,
    // A state newer than this table is one tuntap cannot name.
    operState: OPER_STATES[link.operState] ?? "UNKNOWN",
  };
}
