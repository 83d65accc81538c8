/**
 * IPv6 neighbour discovery (RFC 4861) messages, for a TAP device that has
 * to answer "who has" questions and announce routers the way an Ethernet
 * host or router does.
 *
 * Every builder returns the IPv6 packet with hop limit 255 (receivers drop
 * discovery messages with any other, which proves they came from the
 * link) and the ICMPv6 checksum filled in. A TAP device takes Ethernet
 * frames: wrap the packet with `buildEthernet` and `EtherType.IPV6`, sent
 * to the MAC address that {@linkcode ipv6MulticastMac} maps a multicast
 * destination to (`33:33` and the address's last 4 bytes), or to the
 * neighbour's own MAC address for a unicast one.
 *
 * @module
 */

import { formatIp, parseCidr } from "./address.ts";
import { write16, write32 } from "./bytes.ts";
import { icmpPacket, type IpAddress, type MacAddress } from "./build.ts";
import {
  addressOption,
  booleanOption,
  integerOption,
  macOption,
  optionsObject,
} from "./options.ts";

/** Options of {@linkcode buildNeighborSolicitation}. */
export interface NeighborSolicitationOptions {
  /**
   * Sender's address, or `"::"` for duplicate address detection (RFC 4862
   * §5.4.2), which then must go without `sourceMac`.
   */
  source: IpAddress;
  /** The unicast address whose link-layer address is asked for. */
  target: IpAddress;
  /**
   * Sender's MAC address, sent as the source link-layer address option so
   * the answer needs no discovery of its own. Defaults to none.
   */
  sourceMac?: MacAddress;
  /**
   * Where the solicitation goes. Defaults to the target's solicited-node
   * multicast address `ff02::1:ffXX:XXXX` (address resolution); the
   * target itself makes a reachability probe. A solicitation from `"::"`
   * must go to the solicited-node address.
   */
  destination?: IpAddress;
}

/** Options of {@linkcode buildNeighborAdvertisement}. */
export interface NeighborAdvertisementOptions {
  /** Sender's unicast address, usually `target` itself. */
  source: IpAddress;
  /**
   * Where the advertisement goes: the soliciting node's address, or
   * `"ff02::1"` (all nodes) for an unsolicited one or one answering a
   * solicitation from `"::"`.
   */
  destination: IpAddress;
  /** The address being advertised. */
  target: IpAddress;
  /** The target's MAC address, sent as the target link-layer address option. */
  targetMac: MacAddress;
  /**
   * The S flag: this answers a solicitation. Defaults to false; a multicast
   * advertisement must not set it (RFC 4861 §7.2.4).
   */
  solicited?: boolean;
  /**
   * The O flag: replace a cached link-layer address. Defaults to true, as
   * RFC 4861 §7.2.4 asks except for anycast and proxied addresses.
   */
  override?: boolean;
  /** The R flag: the sender is a router. Defaults to false. */
  router?: boolean;
}

/** Options of {@linkcode buildRouterSolicitation}. */
export interface RouterSolicitationOptions {
  /** Sender's address, or `"::"` before it has one (then without `sourceMac`). */
  source: IpAddress;
  /** Sender's MAC address, as the source link-layer address option. Defaults to none. */
  sourceMac?: MacAddress;
  /** Where the solicitation goes. Defaults to `"ff02::2"` (all routers). */
  destination?: IpAddress;
}

/** A prefix information option of {@linkcode buildRouterAdvertisement}. */
export interface RouterAdvertisementPrefix {
  /**
   * The prefix in CIDR form, such as `"2001:db8:1::/64"`; bits after the
   * prefix length are sent as zero. Stateless autoconfiguration on
   * Ethernet needs a /64.
   */
  prefix: string;
  /** The L flag: addresses in the prefix are on the link. Defaults to true. */
  onLink?: boolean;
  /** The A flag: hosts may form addresses in it (SLAAC). Defaults to true. */
  autonomous?: boolean;
  /**
   * Seconds the prefix stays valid, 0xffffffff for ever. Defaults to
   * 2592000 (30 days, RFC 4861 §6.2.1).
   */
  validLifetime?: number;
  /**
   * Seconds addresses formed from it stay preferred, at most
   * `validLifetime`. Defaults to 604800 (7 days), or `validLifetime` if
   * that is shorter.
   */
  preferredLifetime?: number;
}

/** Options of {@linkcode buildRouterAdvertisement}. */
export interface RouterAdvertisementOptions {
  /**
   * The router's link-local address (`fe80::/10`); hosts ignore
   * advertisements from any other (RFC 4861 §6.1.2).
   */
  source: IpAddress;
  /**
   * Where the advertisement goes. Defaults to `"ff02::1"` (all nodes); the
   * soliciting host's address answers a solicitation directly.
   */
  destination?: IpAddress;
  /** The router's MAC address, as the source link-layer address option. Defaults to none. */
  sourceMac?: MacAddress;
  /** The link MTU to announce in an MTU option, 1280..2^32-1. Defaults to none. */
  mtu?: number;
  /** Prefix information options, in order. Defaults to none. */
  prefixes?: RouterAdvertisementPrefix[];
  /**
   * Seconds hosts may use this router as a default router, 0..65535; 0
   * says it is not one. Defaults to 1800 (RFC 4861 §6.2.1).
   */
  routerLifetime?: number;
  /** Hop limit hosts should use, 0 for unspecified. Defaults to 64. */
  curHopLimit?: number;
  /** The M flag: addresses come from DHCPv6. Defaults to false. */
  managed?: boolean;
  /** The O flag: other configuration comes from DHCPv6. Defaults to false. */
  other?: boolean;
  /** Reachable time in milliseconds, 0 for unspecified. Defaults to 0. */
  reachableTime?: number;
  /** Retransmission timer in milliseconds, 0 for unspecified. Defaults to 0. */
  retransTimer?: number;
}

const ICMPV6_ROUTER_SOLICITATION = 133;
const ICMPV6_ROUTER_ADVERTISEMENT = 134;
const ICMPV6_NEIGHBOR_SOLICITATION = 135;
const ICMPV6_NEIGHBOR_ADVERTISEMENT = 136;
const OPTION_SOURCE_LINK_LAYER = 1;
const OPTION_TARGET_LINK_LAYER = 2;
const OPTION_PREFIX_INFORMATION = 3;
const OPTION_MTU = 5;
/** RFC 4861 §3.1: the hop limit that proves a message was not forwarded. */
const HOP_LIMIT = 255;
const ALL_NODES = new Uint8Array([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const ALL_ROUTERS = new Uint8Array([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);

const isUnspecified = (address: Uint8Array) => address.every((byte) => byte === 0);
const isMulticast = (address: Uint8Array) => address[0] === 0xff;

/** Refuses a multicast address where only a unicast one makes sense. */
function unicast(address: Uint8Array, what: string, unspecifiedAllowed = false): Uint8Array {
  if (isMulticast(address) || (!unspecifiedAllowed && isUnspecified(address))) {
    throw new RangeError(`${what} must be a unicast address, got ${formatIp(address)}`);
  }
  return address;
}

/** The solicited-node multicast address of `address` (RFC 4291 §2.7.1). */
function solicitedNode(address: Uint8Array): Uint8Array {
  const group = new Uint8Array([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0]);
  group.set(address.subarray(13, 16), 13);
  return group;
}

/** Writes a link-layer address option (8 bytes for a MAC address) at `offset`. */
function writeLinkLayerOption(message: Uint8Array, offset: number, type: number, mac: Uint8Array) {
  message[offset] = type;
  message[offset + 1] = 1; // length in units of 8 bytes
  message.set(mac, offset + 2);
}

/**
 * Refuses a source link-layer address on a message from `::`, which
 * receivers must drop (RFC 4861 §6.1.1, §7.1.1): a node without an
 * address must not make others cache its MAC address.
 */
function sourceMacOption(value: unknown, source: Uint8Array): Uint8Array | undefined {
  if (value === undefined) return undefined;
  const mac = macOption(value, "sourceMac");
  if (isUnspecified(source)) {
    throw new RangeError(
      "Cannot send a source link-layer address from the unspecified address :: (RFC 4861 §7.1.1)",
    );
  }
  return mac;
}

/**
 * Builds a neighbour solicitation (ICMPv6 type 135): "who has `target`?".
 * It goes to the target's solicited-node multicast address unless
 * `destination` says otherwise. With `source` `"::"` it is a duplicate
 * address detection probe; a `sourceMac` is then refused with a
 * `RangeError`, since receivers must drop such a message.
 *
 * @example Ask for a neighbour's MAC address on a TAP device
 * ```ts
 * import {
 *   buildEthernet,
 *   buildNeighborSolicitation,
 *   EtherType,
 *   ipv6MulticastMac,
 * } from "@tuntap/tuntap/packet";
 *
 * const packet = buildNeighborSolicitation({
 *   source: "2001:db8::2",
 *   target: "2001:db8::1",
 *   sourceMac: "02:00:00:00:00:02",
 * });
 * const frame = buildEthernet({
 *   destination: ipv6MulticastMac(packet.subarray(24, 40)), // 33:33:ff:00:00:01
 *   source: "02:00:00:00:00:02",
 *   etherType: EtherType.IPV6,
 *   payload: packet,
 * });
 * // await tap.write(frame);
 * ```
 *
 * @param options Addresses and the sender's MAC address.
 * @returns The complete IPv6 packet.
 * @throws {TypeError} If an option has the wrong type or an address is not
 *   IPv6.
 * @throws {RangeError} If the target or a non-`::` source is not unicast,
 *   or a solicitation from `::` carries a MAC address or goes elsewhere
 *   than to the solicited-node address.
 */
export function buildNeighborSolicitation(
  options: NeighborSolicitationOptions,
): Uint8Array<ArrayBuffer> {
  optionsObject(options, "Neighbor solicitation options");
  const source = unicast(addressOption(options.source, "source", 6), "source", true);
  const target = unicast(addressOption(options.target, "target", 6), "target");
  const group = solicitedNode(target);
  const destination = options.destination === undefined
    ? group
    : addressOption(options.destination, "destination", 6);
  if (isUnspecified(source) && formatIp(destination) !== formatIp(group)) {
    throw new RangeError(
      `A neighbor solicitation from :: must go to ${formatIp(group)}, not ${
        formatIp(destination)
      } (RFC 4861 §7.1.1)`,
    );
  }
  const mac = sourceMacOption(options.sourceMac, source);
  const message = new Uint8Array(24 + (mac === undefined ? 0 : 8));
  message[0] = ICMPV6_NEIGHBOR_SOLICITATION;
  message.set(target, 8);
  if (mac !== undefined) writeLinkLayerOption(message, 24, OPTION_SOURCE_LINK_LAYER, mac);
  return icmpPacket(source, destination, message, HOP_LIMIT);
}

/**
 * Builds a neighbour advertisement (ICMPv6 type 136): "`target` is at
 * `targetMac`", with the target link-layer address option. Answering a
 * solicitation, send it to the solicitation's source with `solicited:
 * true` (to `"ff02::1"` without it if that source was `"::"`).
 *
 * @example Answer a neighbour solicitation read from a TAP device
 * ```ts
 * import { buildEthernet, buildNeighborAdvertisement, EtherType } from "@tuntap/tuntap/packet";
 *
 * const answer = buildEthernet({
 *   destination: "02:00:00:00:00:01", // the solicitation's Ethernet source
 *   source: "02:00:00:00:00:02",
 *   etherType: EtherType.IPV6,
 *   payload: buildNeighborAdvertisement({
 *     source: "2001:db8::2",
 *     destination: "2001:db8::1",
 *     target: "2001:db8::2",
 *     targetMac: "02:00:00:00:00:02",
 *     solicited: true,
 *   }),
 * });
 * ```
 *
 * @param options Addresses, the target's MAC address and the flags.
 * @returns The complete IPv6 packet.
 * @throws {TypeError} If an option has the wrong type or an address is not
 *   IPv6.
 * @throws {RangeError} If the source or target is not unicast, or a
 *   multicast advertisement is marked solicited.
 */
export function buildNeighborAdvertisement(
  options: NeighborAdvertisementOptions,
): Uint8Array<ArrayBuffer> {
  optionsObject(options, "Neighbor advertisement options");
  const source = unicast(addressOption(options.source, "source", 6), "source");
  const destination = addressOption(options.destination, "destination", 6);
  const target = unicast(addressOption(options.target, "target", 6), "target");
  const mac = macOption(options.targetMac, "targetMac");
  const solicited = booleanOption(options.solicited, "solicited", false);
  const override = booleanOption(options.override, "override", true);
  const router = booleanOption(options.router, "router", false);
  if (solicited && isMulticast(destination)) {
    throw new RangeError(
      `A neighbor advertisement to ${
        formatIp(destination)
      } cannot be solicited: the S flag is for unicast answers (RFC 4861 §7.2.4)`,
    );
  }
  const message = new Uint8Array(32);
  message[0] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
  message[4] = (router ? 0x80 : 0) | (solicited ? 0x40 : 0) | (override ? 0x20 : 0);
  message.set(target, 8);
  writeLinkLayerOption(message, 24, OPTION_TARGET_LINK_LAYER, mac);
  return icmpPacket(source, destination, message, HOP_LIMIT);
}

/**
 * Builds a router solicitation (ICMPv6 type 133), asking routers to
 * advertise at once. From `"::"` it must go without `sourceMac` (refused
 * with a `RangeError`).
 *
 * @example Ask for router advertisements
 * ```ts
 * import { buildRouterSolicitation } from "@tuntap/tuntap/packet";
 *
 * const packet = buildRouterSolicitation({
 *   source: "fe80::2",
 *   sourceMac: "02:00:00:00:00:02",
 * });
 * // to ff02::2; in a frame to ipv6MulticastMac("ff02::2"), 33:33:00:00:00:02
 * ```
 *
 * @param options Sender, its MAC address and the destination.
 * @returns The complete IPv6 packet.
 * @throws {TypeError} If an option has the wrong type or an address is not
 *   IPv6.
 * @throws {RangeError} If the source is multicast, or `::` with a MAC
 *   address.
 */
export function buildRouterSolicitation(
  options: RouterSolicitationOptions,
): Uint8Array<ArrayBuffer> {
  optionsObject(options, "Router solicitation options");
  const source = unicast(addressOption(options.source, "source", 6), "source", true);
  const destination = options.destination === undefined
    ? ALL_ROUTERS
    : addressOption(options.destination, "destination", 6);
  const mac = sourceMacOption(options.sourceMac, source);
  const message = new Uint8Array(8 + (mac === undefined ? 0 : 8));
  message[0] = ICMPV6_ROUTER_SOLICITATION;
  if (mac !== undefined) writeLinkLayerOption(message, 8, OPTION_SOURCE_LINK_LAYER, mac);
  return icmpPacket(source, destination, message, HOP_LIMIT);
}

/**
 * Builds a router advertisement (ICMPv6 type 134) with, in this order, the
 * source link-layer address, MTU and prefix information options that are
 * asked for. Defaults follow RFC 4861 §6.2.1: router lifetime 1800 s,
 * current hop limit 64, prefixes on-link and autonomous, valid 30 days and
 * preferred 7 days.
 *
 * @example Announce a prefix and an MTU to a host behind a TAP device
 * ```ts
 * import {
 *   buildEthernet,
 *   buildRouterAdvertisement,
 *   EtherType,
 *   ipv6MulticastMac,
 * } from "@tuntap/tuntap/packet";
 *
 * const frame = buildEthernet({
 *   destination: ipv6MulticastMac("ff02::1"), // 33:33:00:00:00:01
 *   source: "02:00:00:00:00:fe",
 *   etherType: EtherType.IPV6,
 *   payload: buildRouterAdvertisement({
 *     source: "fe80::fe",
 *     sourceMac: "02:00:00:00:00:fe",
 *     mtu: 1400,
 *     prefixes: [{ prefix: "2001:db8:1::/64" }],
 *   }),
 * });
 * ```
 *
 * @param options Sender, destination, header fields and options.
 * @returns The complete IPv6 packet.
 * @throws {TypeError} If an option has the wrong type, an address is not
 *   IPv6 or a prefix is not an IPv6 CIDR.
 * @throws {RangeError} If the source is not link-local, a number is out of
 *   range, a preferred lifetime exceeds its valid lifetime, or the packet
 *   would be too big.
 */
export function buildRouterAdvertisement(
  options: RouterAdvertisementOptions,
): Uint8Array<ArrayBuffer> {
  optionsObject(options, "Router advertisement options");
  const source = addressOption(options.source, "source", 6);
  if (source[0] !== 0xfe || (source[1] & 0xc0) !== 0x80) {
    throw new RangeError(
      `A router advertisement must come from a link-local address (fe80::/10), got ${
        formatIp(source)
      } (RFC 4861 §6.1.2)`,
    );
  }
  const destination = options.destination === undefined
    ? ALL_NODES
    : addressOption(options.destination, "destination", 6);
  const mac = options.sourceMac === undefined
    ? undefined
    : macOption(options.sourceMac, "sourceMac");
  const mtu = options.mtu === undefined
    ? undefined
    : integerOption(options.mtu, "mtu", 1280, 0xffffffff);
  const prefixes = options.prefixes ?? [];
  if (!Array.isArray(prefixes)) throw new TypeError("prefixes must be an array");
  const routerLifetime = integerOption(options.routerLifetime ?? 1800, "routerLifetime", 0, 0xffff);
  const curHopLimit = integerOption(options.curHopLimit ?? 64, "curHopLimit", 0, 255);
  const managed = booleanOption(options.managed, "managed", false);
  const other = booleanOption(options.other, "other", false);
  const reachableTime = integerOption(options.reachableTime ?? 0, "reachableTime", 0, 0xffffffff);
  const retransTimer = integerOption(options.retransTimer ?? 0, "retransTimer", 0, 0xffffffff);

  const length = 16 + (mac === undefined ? 0 : 8) + (mtu === undefined ? 0 : 8) +
    32 * prefixes.length;
  const message = new Uint8Array(length);
  message[0] = ICMPV6_ROUTER_ADVERTISEMENT;
  message[4] = curHopLimit;
  message[5] = (managed ? 0x80 : 0) | (other ? 0x40 : 0);
  write16(message, 6, routerLifetime);
  write32(message, 8, reachableTime);
  write32(message, 12, retransTimer);
  let at = 16;
  if (mac !== undefined) {
    writeLinkLayerOption(message, at, OPTION_SOURCE_LINK_LAYER, mac);
    at += 8;
  }
  if (mtu !== undefined) {
    message[at] = OPTION_MTU;
    message[at + 1] = 1;
    write32(message, at + 4, mtu);
    at += 8;
  }
  prefixes.forEach((prefix, i) => {
    writePrefixOption(message, at, prefix, `prefixes[${i}]`);
    at += 32;
  });
  return icmpPacket(source, destination, message, HOP_LIMIT);
}

/** Writes a 32-byte prefix information option (RFC 4861 §4.6.2) at `offset`. */
function writePrefixOption(
  message: Uint8Array,
  offset: number,
  option: RouterAdvertisementPrefix,
  what: string,
): void {
  optionsObject(option, `${what} options`);
  if (typeof option.prefix !== "string") {
    throw new TypeError(`${what}.prefix must be a CIDR string`);
  }
  const { address, prefixLength, family } = parseCidr(option.prefix);
  if (family !== 6) {
    throw new TypeError(`${what}.prefix must be an IPv6 prefix, got ${option.prefix}`);
  }
  const validLifetime = integerOption(
    option.validLifetime ?? 2592000,
    `${what}.validLifetime`,
    0,
    0xffffffff,
  );
  const preferredLifetime = integerOption(
    option.preferredLifetime ?? Math.min(604800, validLifetime),
    `${what}.preferredLifetime`,
    0,
    0xffffffff,
  );
  // RFC 4862 §5.5.3(c): hosts ignore a prefix preferred for longer than valid.
  if (preferredLifetime > validLifetime) {
    throw new RangeError(
      `${what}.preferredLifetime ${preferredLifetime} exceeds validLifetime ${validLifetime}`,
    );
  }
  const onLink = booleanOption(option.onLink, `${what}.onLink`, true);
  const autonomous = booleanOption(option.autonomous, `${what}.autonomous`, true);
  message[offset] = OPTION_PREFIX_INFORMATION;
  message[offset + 1] = 4;
  message[offset + 2] = prefixLength;
  message[offset + 3] = (onLink ? 0x80 : 0) | (autonomous ? 0x40 : 0);
  write32(message, offset + 4, validLifetime);
  write32(message, offset + 8, preferredLifetime);
  // Bytes 12..15 are reserved. The prefix goes with its host bits cleared,
  // as §4.6.2 requires of senders.
  for (let bit = 0; bit < prefixLength; bit += 8) {
    const keep = Math.min(8, prefixLength - bit);
    message[offset + 16 + bit / 8] = address[bit / 8] & (0xff00 >> keep);
  }
}

/**
 * The Ethernet MAC address an IPv6 multicast address maps to (RFC 2464
 * §7): `33:33` followed by the address's last 4 bytes. A frame carrying a
 * neighbour solicitation, router solicitation or multicast advertisement
 * to a TAP device goes to this address.
 *
 * @example Frame a router solicitation
 * ```ts
 * import {
 *   buildEthernet,
 *   buildRouterSolicitation,
 *   EtherType,
 *   formatMac,
 *   ipv6MulticastMac,
 * } from "@tuntap/tuntap/packet";
 *
 * formatMac(ipv6MulticastMac("ff02::1:ff00:1")); // "33:33:ff:00:00:01"
 * const frame = buildEthernet({
 *   destination: ipv6MulticastMac("ff02::2"),
 *   source: "02:00:00:00:00:02",
 *   etherType: EtherType.IPV6,
 *   payload: buildRouterSolicitation({ source: "fe80::2" }),
 * });
 * ```
 *
 * @param address An IPv6 multicast address (`ff00::/8`), as text or bytes.
 * @returns The 6 bytes of the MAC address.
 * @throws {TypeError} If `address` is not an IPv6 address.
 * @throws {RangeError} If `address` is not multicast.
 */
export function ipv6MulticastMac(address: IpAddress): Uint8Array<ArrayBuffer> {
  const bytes = addressOption(address, "address", 6);
  if (!isMulticast(bytes)) {
    throw new RangeError(`Cannot map ${formatIp(bytes)} to a MAC address: it is not multicast`);
  }
  const mac = new Uint8Array(6);
  mac[0] = mac[1] = 0x33;
  mac.set(bytes.subarray(12, 16), 2);
  return mac;
}
