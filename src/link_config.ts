/**
 * Link settings of a device by index: administrative state, MTU, MAC
 * address and transmit queue length, read with `RTM_GETLINK` and changed
 * with `RTM_SETLINK`; devices looked up by name or listed with an
 * `RTM_GETLINK` dump, and deleted with `RTM_DELLINK`. Every link message is
 * decoded by {@linkcode decodeLink} and nowhere else.
 *
 * @module
 */
import { IFF_LOWER_UP, IFF_UP } from "../ffi/constants.ts";
import { EEXIST, EINVAL, ENODEV, EPERM } from "../ffi/errno.ts";
import { cstring } from "../ffi/libc.ts";
import {
  decode_ifinfomsg,
  encode_ifinfomsg,
  get_string,
  get_u32,
  get_u8,
  IFLA_ADDRESS,
  IFLA_CARRIER,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_MTU,
  IFLA_NET_NS_FD,
  IFLA_OPERSTATE,
  IFLA_STATS64,
  IFLA_TXQLEN,
  type NetlinkMessage,
  type rtattr,
  rtattrs,
  RTM_DELLINK,
  RTM_GETLINK,
  RTM_NEWLINK,
  RTM_SETLINK,
  sizeof_ifinfomsg,
  u32,
} from "../ffi/netlink.ts";
import { formatMac, parseMac } from "../packet/address.ts";
import { type Link, netlinkDump, netlinkRequest } from "./netlink.ts";
import { TunError } from "./tun_error.ts";
import { validateInteger } from "./validate.ts";

/** What {@linkcode readLink} reports. */
export interface LinkState {
  /** Whether `IFF_UP` is set. */
  up: boolean;
  /** The MTU. */
  mtu: number;
  /** The hardware address: 6 bytes on a TAP device, absent on a TUN device. */
  mac?: Uint8Array;
  /** The transmit queue length. */
  txQueueLength: number;
}

/** Everything tuntap reads from one `RTM_NEWLINK` message. */
export interface LinkInfo extends LinkState {
  /** The interface index. */
  index: number;
  /** The interface name. */
  name: string;
  /**
   * Whether the link has a carrier: `IFLA_CARRIER`, which holds whether or
   * not the device is up, or `IFF_LOWER_UP` (up and a carrier) from kernels
   * too old to send it.
   */
  carrier: boolean;
  /** `IFLA_OPERSTATE`: an `IF_OPER_*` number, 0 (`IF_OPER_UNKNOWN`) when absent. */
  operState: number;
  /** `IFLA_STATS64`: the undecoded `struct rtnl_link_stats64`, when the kernel sent it. */
  stats64?: Uint8Array;
  /** `IFLA_INFO_KIND`, e.g. `"tun"` for every TUN/TAP device; absent for `lo` and the like. */
  kind?: string;
  /** The kind's own attributes (`IFLA_INFO_DATA`), by type. */
  kindData: Map<number, Uint8Array>;
}

// What one RTM_SETLINK changes; absent settings stay as they are.
interface LinkChange {
  /** Sets or clears `IFF_UP`. */
  up?: boolean;
  /** The new MTU. */
  mtu?: number;
  /** The new hardware address. */
  mac?: Uint8Array;
  /** The new transmit queue length. */
  txQueueLength?: number;
}

// KMALLOC_MAX_SIZE / sizeof(void *) with 4 KiB pages: the longest ring
// tun_queue_resize can allocate there.
const TUN_TXQLEN_LIMIT_4K = 2 ** 19;

/** The largest `u32`: the limit of netlink's 32-bit metrics and lengths. */
export const U32_MAX = 0xffffffff;

/** Checks an MTU; the device's own limits are left to the kernel to enforce. */
export function validateMtu(value: unknown): number {
  return validateInteger(value, "MTU", 1, 65535);
}

/** Checks a transmit queue length. */
export function validateTxQueueLength(value: unknown): number {
  return validateInteger(value, "Transmit queue length", 0, U32_MAX);
}

/**
 * Parses a MAC address a device can take: the kernel refuses a multicast or
 * all-zero one with a bare EADDRNOTAVAIL, so say why before asking it.
 */
export function parseDeviceMac(text: unknown): Uint8Array {
  const mac = parseMac(text as string);
  if (mac[0] & 1) {
    throw new RangeError(
      `MAC address "${text}" is a multicast address (the lowest bit of "${
        (text as string).slice(0, 2)
      }" is set); a device needs a unicast one`,
    );
  }
  if (mac.every((byte) => byte === 0)) {
    throw new RangeError(`MAC address "${text}" is all zeros; a device needs a unicast one`);
  }
  return mac;
}

/** The one decoder of an `RTM_NEWLINK` message: header, attributes and link info. */
export function decodeLink(payload: Uint8Array): LinkInfo {
  const { index, flags } = decode_ifinfomsg(payload);
  const attributes = rtattrs(payload, sizeof_ifinfomsg);
  const number = (type: number) => {
    const data = attributes.get(type);
    return data === undefined ? 0 : get_u32(data);
  };
  const mac = attributes.get(IFLA_ADDRESS);
  const name = attributes.get(IFLA_IFNAME);
  const carrier = attributes.get(IFLA_CARRIER);
  const operState = attributes.get(IFLA_OPERSTATE);
  const linkInfo = attributes.get(IFLA_LINKINFO);
  const nested = linkInfo ? rtattrs(linkInfo, 0) : new Map<number, Uint8Array>();
  const kind = nested.get(IFLA_INFO_KIND);
  const kindData = nested.get(IFLA_INFO_DATA);
  return {
    index,
    name: name ? get_string(name) : "",
    up: (flags & IFF_UP) !== 0,
    mtu: number(IFLA_MTU),
    mac: mac?.length ? mac : undefined,
    txQueueLength: number(IFLA_TXQLEN),
    carrier: carrier ? get_u8(carrier) !== 0 : (flags & IFF_LOWER_UP) !== 0,
    operState: operState ? get_u8(operState) : 0,
    stats64: attributes.get(IFLA_STATS64),
    kind: kind ? get_string(kind) : undefined,
    kindData: kindData ? rtattrs(kindData, 0) : new Map(),
  };
}

function linkReply(replies: NetlinkMessage[], action: string): LinkInfo {
  const [reply] = replies;
  if (reply?.type !== RTM_NEWLINK) {
    throw new Error(`The kernel answered RTM_GETLINK without the link: cannot ${action}`);
  }
  return decodeLink(reply.payload);
}

/** Reads the device's link settings in one `RTM_GETLINK`. */
export function readLink(link: Link, action: string): LinkInfo {
  const replies = netlinkRequest({
    link,
    type: RTM_GETLINK,
    body: encode_ifinfomsg({ family: 0, index: link.index, flags: 0, change: 0 }),
    action,
  });
  return linkReply(replies, action);
}

/**
 * A request about a device known only by name: index 0 tells the kernel to
 * go by `IFLA_IFNAME` instead.
 */
function byName(name: string): Link {
  return { index: 0, device: `device "${name}"`, closed: false };
}

/**
 * Reads an interface by name in one `RTM_GETLINK`; a name that does not
 * exist fails with `ENODEV`.
 */
export function readLinkByName(name: string, action: string): LinkInfo {
  const replies = netlinkRequest({
    link: byName(name),
    type: RTM_GETLINK,
    body: encode_ifinfomsg({ family: 0, index: 0, flags: 0, change: 0 }),
    attributes: [{ type: IFLA_IFNAME, data: cstring(name) }],
    action,
    hints: { [ENODEV]: "there is no interface of that name in this network namespace" },
  });
  return linkReply(replies, action);
}

/** Every interface of the network namespace, from one `RTM_GETLINK` dump. */
export function listLinks(action: string): LinkInfo[] {
  return netlinkDump({
    link: { index: 0, device: "every interface", closed: false },
    type: RTM_GETLINK,
    body: encode_ifinfomsg({ family: 0, index: 0, flags: 0, change: 0 }),
    action,
  }).filter((message) => message.type === RTM_NEWLINK)
    .map((message) => decodeLink(message.payload));
}

/** Deletes the interface with `link.index` (`RTM_DELLINK`, as `ip link del` does). */
export function deleteLink(link: Link, action: string): void {
  netlinkRequest({
    link,
    type: RTM_DELLINK,
    body: encode_ifinfomsg({ family: 0, index: link.index, flags: 0, change: 0 }),
    action,
    hints: { [ENODEV]: "the interface no longer exists" },
  });
}

/**
 * Moves the interface with `link.index` to the network namespace open as
 * `netnsFd` (`IFLA_NET_NS_FD`, as `ip link set … netns` does). It keeps its
 * name, and usually gets a new index there.
 */
export function moveLink(link: Link, netnsFd: number, action: string): void {
  netlinkRequest({
    link,
    type: RTM_NEWLINK,
    body: encode_ifinfomsg({ family: 0, index: link.index, flags: 0, change: 0 }),
    attributes: [{ type: IFLA_NET_NS_FD, data: u32(netnsFd) }],
    action,
    hints: {
      [EEXIST]: "the target namespace has an interface of that name",
      [EINVAL]: "the fd is not a network namespace",
    },
  });
}

/** Sets or clears `IFF_UP`. */
export function setUp(link: Link, up: boolean): void {
  changeLink(link, { up }, `bring ${link.device} ${up ? "up" : "down"}`);
}

/** Sets the MTU (checked by {@linkcode validateMtu}). */
export function setMtu(link: Link, mtu: number): void {
  changeLink(link, { mtu }, `set the MTU of ${link.device} to ${mtu}`);
}

/** Sets the hardware address (parsed by {@linkcode parseDeviceMac}). */
export function setMac(link: Link, mac: Uint8Array): void {
  changeLink(link, { mac }, `set the MAC address of ${link.device} to ${formatMac(mac)}`);
}

/**
 * Sets the transmit queue length (checked by {@linkcode validateTxQueueLength}).
 * A length the device cannot take is a RangeError, and the device keeps its
 * old length.
 */
export function setTxQueueLength(link: Link, length: number): void {
  const action = `set the transmit queue length of ${link.device} to ${length}`;
  try {
    changeLink(link, { txQueueLength: length }, action);
  } catch (error) {
    if (!(error instanceof TunError && error.errno === EPERM)) throw error;
    // A TUN/TAP device sizes a ring of that many packets for each attached
    // queue; when the kernel cannot allocate it (above KMALLOC_MAX_SIZE / 8
    // entries, 2^19 with 4 KiB pages, more with larger pages), the device's
    // notifier refuses, the kernel rolls back, and the refusal reaches us as
    // EPERM. Setting the current length again takes the same privilege and
    // allocates nothing: if that passes, the length was the problem.
    try {
      const { txQueueLength } = readLink(link, action);
      changeLink(link, { txQueueLength }, action);
    } catch {
      throw error;
    }
    throw new RangeError(
      `Transmit queue length ${length} is more than ${link.device} can take: the kernel ` +
        `could not allocate a ring of that many packets per queue (its limit is ` +
        `KMALLOC_MAX_SIZE / 8, which is ${TUN_TXQLEN_LIMIT_4K} with 4 KiB pages)`,
    );
  }
}

// The one RTM_SETLINK: ifi_change names the flag bits to touch, so a request
// that does not set `up` leaves the device's flags as they are.
function changeLink(link: Link, change: LinkChange, action: string): void {
  const attributes: rtattr[] = [];
  if (change.mtu !== undefined) attributes.push({ type: IFLA_MTU, data: u32(change.mtu) });
  if (change.mac !== undefined) attributes.push({ type: IFLA_ADDRESS, data: change.mac });
  if (change.txQueueLength !== undefined) {
    attributes.push({ type: IFLA_TXQLEN, data: u32(change.txQueueLength) });
  }
  netlinkRequest({
    link,
    type: RTM_SETLINK,
    body: encode_ifinfomsg({
      family: 0,
      index: link.index,
      flags: change.up ? IFF_UP : 0,
      change: change.up === undefined ? 0 : IFF_UP,
    }),
    attributes,
    action,
  });
}
