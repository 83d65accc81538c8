/**
 * IPv4 and IPv6 addresses of a device: parsed and checked before any
 * syscall, then added, removed and listed with `RTM_NEWADDR`,
 * `RTM_DELADDR` and an `RTM_GETADDR` dump.
 *
 * @module
 */
import { AF_INET, AF_INET6 } from "../ffi/constants.ts";
import { EACCES, EADDRNOTAVAIL, EEXIST, EINVAL } from "../ffi/errno.ts";
import {
  decode_ifaddrmsg,
  encode_ifaddrmsg,
  IFA_ADDRESS,
  IFA_F_NODAD,
  IFA_LOCAL,
  NLM_F_CREATE,
  NLM_F_EXCL,
  RT_SCOPE_HOST,
  RT_SCOPE_UNIVERSE,
  rtattrs,
  RTM_DELADDR,
  RTM_GETADDR,
  RTM_NEWADDR,
  sizeof_ifaddrmsg,
} from "../ffi/netlink.ts";
import { formatIp, parseCidr, parseIp } from "../packet/address.ts";
import { type Link, netlinkDump, netlinkRequest } from "./netlink.ts";
import { describe } from "./validate.ts";

/**
 * Options for {@linkcode TunInterface.addAddress}.
 *
 * @example A point-to-point address
 * ```ts ignore
 * import { TunInterface } from "@tuntap/tuntap";
 *
 * using tun = TunInterface.open();
 * tun.addAddress("192.0.2.1/32", { peer: "192.0.2.2" });
 * ```
 */
export interface TunAddressOptions {
  /**
   * The far end of a point-to-point link, e.g. `"192.0.2.2"`: the kernel
   * then routes the peer (with the prefix given) through the device rather
   * than the local address's network. Same family as the address.
   */
  peer?: string;
}

/**
 * An entry of {@linkcode TunOpenOptions.addresses} with a peer.
 *
 * @example Open a point-to-point TUN device
 * ```ts ignore
 * import { TunInterface } from "@tuntap/tuntap";
 *
 * using tun = TunInterface.open({
 *   addresses: [{ address: "192.0.2.1/32", peer: "192.0.2.2" }],
 *   up: true,
 * });
 * ```
 */
export interface TunAddress extends TunAddressOptions {
  /** The local address in CIDR form, e.g. `"192.0.2.1/32"`. */
  address: string;
}

/** An address parsed and checked, ready for the kernel. */
export interface InterfaceAddress {
  /** 4 for IPv4, 6 for IPv6. */
  family: 4 | 6;
  /** The local address. */
  local: Uint8Array;
  /** The prefix length. */
  prefixLength: number;
  /** The peer of a point-to-point address. */
  peer?: Uint8Array;
  /** The canonical CIDR form, e.g. `"2001:db8::1/64"`, for messages. */
  text: string;
}

/**
 * Parses `cidr` (without a prefix it is a host address: /32 or /128) and
 * the peer option; throws TypeError or RangeError naming the bad part.
 */
export function parseAddress(cidr: string, options: TunAddressOptions = {}): InterfaceAddress {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Address options must be an object, got ${describe(options)}`);
  }
  const { address, prefixLength, family } = parseCidr(cidr);
  let peer: Uint8Array | undefined;
  if (options.peer !== undefined) {
    peer = parseIp(options.peer);
    if (peer.length !== address.length) {
      throw new TypeError(
        `Peer "${options.peer}" is an IPv${peer.length === 4 ? 4 : 6} address ` +
          `but "${cidr}" is IPv${family}; they must be of the same family`,
      );
    }
  }
  const text = `${formatIp(address)}/${prefixLength}`;
  return {
    family,
    local: address,
    prefixLength,
    peer,
    text: peer ? `${text} peer ${formatIp(peer)}` : text,
  };
}

/** Parses an entry of the `addresses` open option: a CIDR string or `{ address, peer? }`. */
export function parseAddressEntry(entry: unknown): InterfaceAddress {
  if (typeof entry === "string") return parseAddress(entry);
  if (typeof entry === "object" && entry !== null && "address" in entry) {
    const { address, peer } = entry as TunAddress;
    return parseAddress(address, { peer });
  }
  throw new TypeError(
    `Each address must be a CIDR string or { address, peer? }, got ${describe(entry)}`,
  );
}

function addressMessage(
  link: Link,
  address: InterfaceAddress,
  flags: number,
  peer = address.peer,
) {
  const v4 = address.family === 4;
  return {
    body: encode_ifaddrmsg({
      family: v4 ? AF_INET : AF_INET6,
      prefixlen: address.prefixLength,
      flags,
      // As `ip` does: 127/8 is host-scoped; IPv6 scopes the kernel derives itself.
      scope: v4 && address.local[0] === 127 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE,
      index: link.index,
    }),
    // IFA_LOCAL is this end; IFA_ADDRESS is the peer, or this end again.
    attributes: [
      { type: IFA_LOCAL, data: address.local },
      { type: IFA_ADDRESS, data: peer ?? address.local },
    ],
  };
}

/**
 * Adds the address; an IPv6 one with `IFA_F_NODAD`, so it is usable at once
 * instead of staying tentative through duplicate address detection.
 */
export function addAddress(link: Link, address: InterfaceAddress): void {
  netlinkRequest({
    link,
    type: RTM_NEWADDR,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    ...addressMessage(link, address, address.family === 6 ? IFA_F_NODAD : 0),
    action: `add address ${address.text} to ${link.device}`,
    hints: {
      [EEXIST]: `the device already has ${address.text.split(" ")[0]}`,
      ...(address.family === 6 && {
        [EINVAL]: "IPv6 is off on a device whose MTU is below 1280",
        [EACCES]: "IPv6 is disabled on the device (net.ipv6.conf.DEV.disable_ipv6)",
      }),
    },
  });
}

/** Removes the address with this local address and prefix length, whatever its peer. */
export function removeAddress(link: Link, address: InterfaceAddress): void {
  // IPv4 compares the prefix length only together with IFA_ADDRESS, which
  // must then lie in the entry's peer network: take the peer from the kernel.
  // (IPv6 matches on IFA_LOCAL and the prefix length alone.)
  let peer = address.peer;
  if (address.family === 4 && peer === undefined) {
    peer = dumpAddresses(link).find((entry) =>
      entry.family === AF_INET && entry.prefixLength === address.prefixLength &&
      entry.local.every((byte, i) => byte === address.local[i])
    )?.address;
  }
  netlinkRequest({
    link,
    type: RTM_DELADDR,
    ...addressMessage(link, address, 0, peer),
    action: `remove address ${address.text} from ${link.device}`,
    hints: { [EADDRNOTAVAIL]: `the device has no address ${address.text}` },
  });
}

/** The device's addresses of both families in CIDR form, in the kernel's order. */
export function listAddresses(link: Link): string[] {
  return dumpAddresses(link).map(({ local, prefixLength }) => `${formatIp(local)}/${prefixLength}`);
}

interface AddressEntry {
  family: number;
  prefixLength: number;
  local: Uint8Array;
  /** The peer of a point-to-point address, else the local address again. */
  address: Uint8Array;
}

function dumpAddresses(link: Link): AddressEntry[] {
  const messages = netlinkDump({
    link,
    type: RTM_GETADDR,
    // With strict checking the kernel filters by ifa_index; the check below
    // is for kernels that send every device's addresses.
    body: encode_ifaddrmsg({ family: 0, prefixlen: 0, flags: 0, scope: 0, index: link.index }),
    action: `list the addresses of ${link.device}`,
  });
  const entries: AddressEntry[] = [];
  for (const { type, payload } of messages) {
    if (type !== RTM_NEWADDR) continue;
    const header = decode_ifaddrmsg(payload);
    if (header.index !== link.index) continue;
    if (header.family !== AF_INET && header.family !== AF_INET6) continue;
    const attributes = rtattrs(payload, sizeof_ifaddrmsg);
    // IPv6 sends IFA_LOCAL only for a point-to-point address; then IFA_ADDRESS is the peer.
    const address = attributes.get(IFA_ADDRESS);
    const local = attributes.get(IFA_LOCAL) ?? address;
    if (!local) continue;
    entries.push({
      family: header.family,
      prefixLength: header.prefixlen,
      local,
      address: address ?? local,
    });
  }
  return entries;
}
