/**
 * In-place rewriting of IP packets, the work of a NAT or a router: the
 * addresses, the ports (or ICMP echo identifier), the TTL or hop limit and
 * the TCP MSS option. Every checksum the change touches (the IPv4 header
 * checksum and the TCP, UDP or ICMP/ICMPv6 checksum) is updated
 * incrementally as RFC 1624 describes, never recomputed: the cost does not
 * depend on the packet's size, and a checksum that was wrong before stays
 * wrong by the same amount, so the receiver still drops a damaged packet.
 *
 * All functions take an IP packet starting at its IP header; for a frame,
 * pass a view such as `frame.subarray(parsed.ipv4.offset)` (a `subarray`,
 * not a `slice`, so that the frame itself changes). IPv6 extension headers (hop-by-hop,
 * routing, fragment, destination options) are walked to find the transport
 * header. A fragment other than the first holds no transport header, so only
 * its IP header changes; a first fragment's transport checksum is updated,
 * since it covers the whole datagram.
 *
 * A packet cut short, as an ICMP error quotes one (its IP length says more
 * than the bytes present), is accepted by `rewriteAddress` and `rewritePort`:
 * what they rewrite (the addresses; the ports or echo identifier) must be
 * present, and so must the IPv4 header and any IPv6 extension headers before
 * the transport header; a transport checksum field beyond the bytes present
 * is simply not updated (an ICMP error's 8 bytes of TCP end before it).
 *
 * A packet read with offload on from a device opened with `vnetHeader: true`
 * may have its transport checksum left to the device (the virtio-net header
 * flag `NEEDS_CSUM`): its checksum field then holds only the folded
 * pseudo-header sum, not complemented. Pass `{ partialChecksum: true }`
 * ({@linkcode RewriteOptions}) for such a packet: a new address is added to
 * that sum, and a new port or MSS leaves it alone, since the device sums the
 * transport header and data itself later. The IPv4 header checksum is
 * always complete and is updated as ever.
 *
 * Every argument and the packet are checked before the first byte is
 * written, so a function that throws leaves the packet as it was. Errors: a
 * `TypeError` for an argument of the wrong type or an address of the other
 * family; a `RangeError` for a number out of range or a packet that is not
 * IP, is truncated, or lacks what the function changes.
 *
 * @module
 */

import { formatIp } from "./address.ts";
import type { IpAddress } from "./build.ts";
import { read16, write16 } from "./bytes.ts";
import { IpProtocol, optionsHeaderName } from "./constants.ts";
import { addToPartialSum, applyDelta, bytesDelta, wordDelta } from "./incremental_checksum.ts";
import { findOption } from "./option_list.ts";
import { booleanOption, bytesArgument, integerOption, ipOption, optionsObject } from "./options.ts";
import { routingDestination, sourceRouteDestination } from "./source_route.ts";

/** Options of {@linkcode rewriteAddress}: the addresses to write. */
export interface AddressRewrite {
  /** New source address, of the packet's family. Unchanged when absent. */
  source?: IpAddress;
  /** New destination address, of the packet's family. Unchanged when absent. */
  destination?: IpAddress;
}

/**
 * Options of {@linkcode rewritePort}: the ports to write. For an ICMP or
 * ICMPv6 echo request or reply, the echo identifier stands for both ports.
 */
export interface PortRewrite {
  /** New source port, 0..65535. Unchanged when absent. */
  source?: number;
  /** New destination port, 0..65535. Unchanged when absent. */
  destination?: number;
}

/**
 * How a rewriter treats the packet's checksums, the optional last argument
 * of {@linkcode rewriteAddress}, {@linkcode rewritePort} and
 * {@linkcode clampMss}.
 */
export interface RewriteOptions {
  /**
   * The TCP, UDP or ICMPv6 checksum field holds a partial checksum, as in a
   * packet whose virtio-net header has `NEEDS_CSUM` (`checksumStart` at the
   * transport header): the folded sum of the pseudo-header alone, not
   * complemented, which the device completes by adding the transport
   * header and data. Address changes are then added to that sum, and port,
   * echo identifier and MSS changes leave it alone. Default false: the
   * field holds a complete checksum.
   */
  partialChecksum?: boolean;
}

// What locate() found, kept in module variables so that finding the headers
// allocates nothing (JavaScript runs one call at a time).
let isIPv6 = false;
/**
 * One past the datagram's last byte, as the IP lengths say, or one past the
 * last byte present in a packet cut short that the caller accepts.
 */
let datagramEnd = 0;
/** Whether the packet is cut short: fewer bytes than its IP length says. */
let cut = false;
/** Whether the transport checksum field holds a partial sum (RewriteOptions). */
let partial = false;
/** Offset of the transport header, or -1 in a fragment other than the first. */
let transport = -1;
/** IPv4 protocol, or the IPv6 next header after the extension headers. */
let protocol = 0;
/**
 * Whether a source route that is not yet done (IPv4 LSRR/SSRR, IPv6
 * routing header with segments left) holds the final destination: the
 * transport pseudo-header then covers that one (RFC 793 section 3.1,
 * RFC 8200 section 8.1), not the header's destination.
 */
let sourceRouted = false;

function truncated(action: string, what: string, need: number, have: number): RangeError {
  return new RangeError(
    `Cannot ${action}: truncated ${what}: need ${need} bytes, have ${have}`,
  );
}

/**
 * Checks the IP header of `packet` and sets the module variables above. With
 * `walk`, IPv6 extension headers are walked to the transport header;
 * without, only the fixed header is checked. With `acceptCut`, a packet
 * shorter than its IP length ends where its bytes do.
 */
function locate(packet: Uint8Array, action: string, walk: boolean, acceptCut = false): void {
  bytesArgument(packet, "the packet", action);
  const length = packet.length;
  if (length === 0) throw new RangeError(`Cannot ${action}: the packet is empty`);
  const version = packet[0] >> 4;
  if (version === 4) {
    if (length < 20) throw truncated(action, "IPv4 header", 20, length);
    const headerLength = (packet[0] & 0x0f) * 4;
    if (headerLength < 20) {
      throw new RangeError(
        `Cannot ${action}: invalid IPv4 header: header length ${headerLength} is less than 20`,
      );
    }
    if (length < headerLength) throw truncated(action, "IPv4 header", headerLength, length);
    const totalLength = read16(packet, 2);
    if (totalLength < headerLength) {
      throw new RangeError(
        `Cannot ${action}: invalid IPv4 header: total length ${totalLength} is less than header length ${headerLength}`,
      );
    }
    cut = length < totalLength;
    if (cut && !acceptCut) throw truncated(action, "IPv4 packet", totalLength, length);
    isIPv6 = false;
    datagramEnd = cut ? length : totalLength;
    protocol = packet[9];
    transport = (read16(packet, 6) & 0x1fff) === 0 ? headerLength : -1;
    sourceRouted = headerLength > 20 && sourceRouteDestination(packet, 0, headerLength) !== -1;
  } else if (version === 6) {
    if (length < 40) throw truncated(action, "IPv6 header", 40, length);
    const end = 40 + read16(packet, 4);
    cut = length < end;
    if (cut && !acceptCut) throw truncated(action, "IPv6 packet", end, length);
    isIPv6 = true;
    datagramEnd = cut ? length : end;
    protocol = packet[6];
    transport = 40;
    sourceRouted = false;
    if (walk) walkExtensionHeaders(packet, action);
  } else {
    throw new RangeError(`Cannot ${action}: not an IP packet: IP version ${version}`);
  }
}

function walkExtensionHeaders(packet: Uint8Array, action: string): void {
  let cursor = 40;
  // Each extension header is at least 8 bytes long, so the walk ends.
  for (;;) {
    const what = optionsHeaderName(protocol);
    if (what !== undefined) {
      if (datagramEnd - cursor < 8) throw truncated(action, what, 8, datagramEnd - cursor);
      const length = (packet[cursor + 1] + 1) * 8;
      if (datagramEnd - cursor < length) {
        throw truncated(action, what, length, datagramEnd - cursor);
      }
      if (
        protocol === IpProtocol.ROUTING && routingDestination(packet, cursor, length, -1) !== -1
      ) {
        sourceRouted = true;
      }
      protocol = packet[cursor];
      cursor += length;
    } else if (protocol === IpProtocol.FRAGMENT) {
      if (datagramEnd - cursor < 8) {
        throw truncated(action, "IPv6 fragment header", 8, datagramEnd - cursor);
      }
      protocol = packet[cursor];
      // After a later fragment's header comes fragment data, whatever its
      // next-header field says (RFC 8200 section 4.5).
      if ((read16(packet, cursor + 2) & 0xfff8) !== 0) {
        transport = -1;
        return;
      }
      cursor += 8;
    } else {
      transport = cursor;
      return;
    }
  }
}

function portOption(value: unknown, what: string, action: string): number {
  return value === undefined ? -1 : integerOption(value, what, 0, 0xffff, action);
}

function addressOption(
  value: unknown,
  what: string,
  size: number,
  action: string,
): Uint8Array | undefined {
  if (value === undefined) return undefined;
  const bytes = ipOption(value, what, action);
  if (bytes.length !== size) {
    throw new TypeError(
      `Cannot ${action}: ${what} ${formatIp(bytes)} is IPv${
        bytes.length === 4 ? 4 : 6
      } but the packet is IPv${size === 4 ? 4 : 6}`,
    );
  }
  return bytes;
}

/** Throws unless the transport header has `need` bytes before the datagram's end. */
function requireTransport(action: string, what: string, need: number): void {
  const have = datagramEnd - transport;
  if (have < need) throw truncated(action, what, need, have);
}

/**
 * Offset of the checksum field that covers the pseudo-header (TCP, UDP,
 * ICMPv6), or -1 when the packet has none in reach: another protocol, a
 * fragment other than the first, or a packet cut short before the field.
 */
function pseudoHeaderChecksum(action: string): number {
  if (transport === -1) return -1;
  let field: number;
  if (protocol === IpProtocol.TCP) {
    field = 16;
    if (!cut) requireTransport(action, "TCP header", 20);
  } else if (protocol === IpProtocol.UDP) {
    field = 6;
    if (!cut) requireTransport(action, "UDP header", 8);
  } else if (protocol === IpProtocol.ICMPV6 && isIPv6) {
    field = 2;
    if (!cut) requireTransport(action, "ICMPv6 header", 8);
  } else {
    return -1;
  }
  return transport + field + 2 <= datagramEnd ? transport + field : -1;
}

/** Reads the optional last argument of the rewriters into `partial`. */
function rewriteOptions(options: RewriteOptions | undefined, action: string): void {
  partial = false;
  if (options === undefined) return;
  optionsObject(options, "options", action);
  partial = booleanOption(options.partialChecksum, "partialChecksum", false, action);
}

/**
 * Applies `delta` to a TCP, UDP or ICMPv6 checksum at `field`, or, for a
 * partial checksum, adds it to the pseudo-header sum there.
 */
function updateTransportChecksum(packet: Uint8Array, field: number, delta: number): void {
  if (partial) {
    addToPartialSum(packet, field, delta);
    return;
  }
  if (protocol !== IpProtocol.UDP) {
    applyDelta(packet, field, delta);
    return;
  }
  // A zero UDP checksum means "none" over IPv4 and is allowed for tunnels
  // over IPv6 (RFC 6935); either way it stays zero. A computed 0 goes out as
  // 0xffff (RFC 768).
  if (read16(packet, field) === 0) return;
  if (applyDelta(packet, field, delta) === 0) write16(packet, field, 0xffff);
}

/**
 * Rewrites the source and/or destination address of an IPv4 or IPv6 packet
 * in place, updating the IPv4 header checksum and the TCP, UDP or ICMPv6
 * checksum (whose pseudo-header holds the addresses) incrementally. An
 * ICMPv4 checksum covers no addresses and stays as it is. A zero UDP
 * checksum ("none") stays zero.
 *
 * While a source route is pending (IPv4 LSRR/SSRR option, IPv6 routing
 * header with segments left), the transport checksum covers the route's
 * final destination, so a new header destination leaves it alone.
 *
 * @example Masquerade an outgoing datagram behind a public address
 * ```ts
 * import { buildUdp, parsePacket, rewriteAddress } from "@tuntap/tuntap/packet";
 *
 * const packet = buildUdp({
 *   source: "192.0.2.10",
 *   destination: "203.0.113.5",
 *   sourcePort: 40000,
 *   destinationPort: 53,
 * });
 * rewriteAddress(packet, { source: "198.51.100.1" });
 * const { ipv4, udp } = parsePacket(packet, "ip");
 * // ipv4?.source === "198.51.100.1", ipv4?.checksumValid === true,
 * // udp?.checksumValid === true
 * ```
 *
 * @example Translate a TSO super-packet whose checksum the device completes
 * ```ts
 * import {
 *   parseVirtioNetHeader,
 *   rewriteAddress,
 *   VIRTIO_NET_HDR_SIZE,
 *   VirtioNetHeaderFlag,
 * } from "@tuntap/tuntap/packet";
 *
 * function masquerade(read: Uint8Array): void {
 *   const { flags } = parseVirtioNetHeader(read);
 *   const partialChecksum = (flags & VirtioNetHeaderFlag.NEEDS_CSUM) !== 0;
 *   // Lengths stay, so the virtio-net header in front stays valid.
 *   rewriteAddress(read.subarray(VIRTIO_NET_HDR_SIZE), { source: "198.51.100.1" }, {
 *     partialChecksum,
 *   });
 * }
 * ```
 *
 * A packet cut short (an ICMP error's quote) is rewritten as far as it
 * goes: its transport checksum is updated only if the field is present.
 * With `{ partialChecksum: true }` the TCP, UDP or ICMPv6 checksum field is
 * taken as a partial (pseudo-header) sum and the address change is added
 * to it, not complemented (see {@linkcode RewriteOptions}).
 *
 * @param packet The IP packet, changed in place.
 * @param addresses The new addresses; those left out stay.
 * @param options How the checksums are kept (default: complete checksums).
 * @throws {TypeError} If an argument has the wrong type or an address is of
 *   the other family than the packet.
 * @throws {RangeError} If the packet is not IP or is truncated before what
 *   the function changes.
 */
export function rewriteAddress(
  packet: Uint8Array,
  addresses: AddressRewrite,
  options?: RewriteOptions,
): void {
  const action = "rewrite addresses";
  optionsObject(addresses, "addresses", action);
  rewriteOptions(options, action);
  locate(packet, action, true, true);
  const size = isIPv6 ? 16 : 4;
  const source = addressOption(addresses.source, "source", size, action);
  const destination = addressOption(addresses.destination, "destination", size, action);
  const field = pseudoHeaderChecksum(action);
  const at = isIPv6 ? 8 : 12;
  const sourceDelta = source === undefined ? 0 : bytesDelta(0, packet, at, source);
  const destinationDelta = destination === undefined
    ? 0
    : bytesDelta(0, packet, at + size, destination);
  if (source !== undefined) packet.set(source, at);
  if (destination !== undefined) packet.set(destination, at + size);
  if (!isIPv6) applyDelta(packet, 10, sourceDelta + destinationDelta);
  if (field !== -1) {
    updateTransportChecksum(
      packet,
      field,
      sourceRouted ? sourceDelta : sourceDelta + destinationDelta,
    );
  }
}

/**
 * Rewrites the source and/or destination port of a TCP segment or UDP
 * datagram in place, updating its checksum incrementally. For an ICMP or
 * ICMPv6 echo request or reply, the echo identifier stands for both ports
 * (as NATs treat it): either option sets it, and both must agree when both
 * are given. A zero UDP checksum ("none") stays zero.
 *
 * @example Map a connection to a new source port
 * ```ts
 * import { buildTcp, parsePacket, rewritePort } from "@tuntap/tuntap/packet";
 *
 * const syn = buildTcp({
 *   source: "2001:db8::10",
 *   destination: "2001:db8:1::5",
 *   sourcePort: 40000,
 *   destinationPort: 443,
 *   sequence: 1,
 *   flags: { syn: true },
 * });
 * rewritePort(syn, { source: 61000 });
 * const { tcp } = parsePacket(syn, "ip");
 * // tcp?.sourcePort === 61000, tcp?.checksumValid === true
 * ```
 *
 * A packet cut short (an ICMP error's quote) needs its ports (or echo
 * header) present; its checksum field is updated only if present. With
 * `{ partialChecksum: true }` the checksum field is left alone: it holds
 * the pseudo-header sum, which ports are not part of (see
 * {@linkcode RewriteOptions}).
 *
 * @param packet The IP packet, changed in place.
 * @param ports The new ports; those left out stay.
 * @param options How the checksums are kept (default: complete checksums).
 * @throws {TypeError} If an argument has the wrong type.
 * @throws {RangeError} If a port is out of range, the packet is not IP or is
 *   truncated before its ports, has no ports (not TCP, UDP or an ICMP echo; a fragment other
 *   than the first), or the echo identifier is given two different values.
 */
export function rewritePort(
  packet: Uint8Array,
  ports: PortRewrite,
  options?: RewriteOptions,
): void {
  const action = "rewrite ports";
  optionsObject(ports, "ports", action);
  const source = portOption(ports.source, "source port", action);
  const destination = portOption(ports.destination, "destination port", action);
  rewriteOptions(options, action);
  locate(packet, action, true, true);
  if (transport === -1) {
    throw new RangeError(
      `Cannot ${action}: the packet is a fragment other than the first, which has no ports`,
    );
  }
  if (protocol === IpProtocol.TCP || protocol === IpProtocol.UDP) {
    if (cut) requireTransport(action, protocol === IpProtocol.TCP ? "TCP ports" : "UDP ports", 4);
    const field = pseudoHeaderChecksum(action);
    let delta = 0;
    if (source !== -1) delta = wordDelta(delta, read16(packet, transport), source, false);
    if (destination !== -1) {
      delta = wordDelta(delta, read16(packet, transport + 2), destination, false);
    }
    if (source !== -1) write16(packet, transport, source);
    if (destination !== -1) write16(packet, transport + 2, destination);
    // A partial checksum leaves the ports to the device.
    if (field !== -1 && !partial) updateTransportChecksum(packet, field, delta);
    return;
  }
  const icmp = isIPv6 ? protocol === IpProtocol.ICMPV6 : protocol === IpProtocol.ICMP;
  if (!icmp) {
    throw new RangeError(
      `Cannot ${action}: IP protocol ${protocol} has no ports (only TCP, UDP and ICMP echo do)`,
    );
  }
  const what = isIPv6 ? "ICMPv6" : "ICMP";
  requireTransport(action, isIPv6 ? "ICMPv6 header" : "ICMP header", 8);
  const type = packet[transport];
  if (isIPv6 ? type !== 128 && type !== 129 : type !== 8 && type !== 0) {
    throw new RangeError(
      `Cannot ${action}: ${what} type ${type} is not an echo request or reply, which has no identifier`,
    );
  }
  if (source !== -1 && destination !== -1 && source !== destination) {
    throw new RangeError(
      `Cannot ${action}: an echo identifier stands for both ports, got ${source} and ${destination}`,
    );
  }
  const identifier = source !== -1 ? source : destination;
  if (identifier === -1) return;
  const delta = wordDelta(0, read16(packet, transport + 4), identifier, false);
  write16(packet, transport + 4, identifier);
  if (partial) return;
  // ICMPv4 has no pseudo-header, so its data can be all zero (an echo reply
  // with identifier, sequence and data 0), whose checksum is 0xffff. Of a
  // packet cut short, the data that is missing is taken as not all zero.
  if (
    applyDelta(packet, transport + 2, delta) === 0 && !isIPv6 && !cut &&
    allZero(packet, transport, datagramEnd)
  ) {
    write16(packet, transport + 2, 0xffff);
  }
}

// Module-level, not an arrow at the call: that would be a new closure per packet.
function isMss(kind: number): boolean {
  return kind === 2;
}

function allZero(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Decrements the IPv4 TTL (updating the header checksum incrementally) or
 * the IPv6 hop limit, as a router does before forwarding.
 *
 * A packet that arrived with a TTL of 1 or 0 must not be forwarded: the
 * function then returns 0 and leaves the packet untouched, because the ICMP
 * "time exceeded" answer (`buildIcmpError`) must quote the packet as it was
 * received (RFC 1812 section 4.3.2.3, RFC 4443 section 2.4).
 *
 * @example Forward or answer "time exceeded"
 * ```ts
 * import { buildUdp, decrementTtl } from "@tuntap/tuntap/packet";
 *
 * const packet = buildUdp({
 *   source: "192.0.2.10",
 *   destination: "203.0.113.5",
 *   sourcePort: 40000,
 *   destinationPort: 33434,
 *   ttl: 2,
 * });
 * decrementTtl(packet); // 1: forward it
 * decrementTtl(packet); // 0: drop it, answer with an ICMP time exceeded
 * ```
 *
 * @param packet The IP packet, changed in place.
 * @returns The TTL or hop limit left, or 0 when the packet must not be
 *   forwarded (and was not changed).
 * @throws {TypeError} If `packet` is not a Uint8Array.
 * @throws {RangeError} If the packet is not IP or is truncated.
 */
export function decrementTtl(packet: Uint8Array): number {
  locate(packet, "decrement the TTL", false);
  const at = isIPv6 ? 7 : 8;
  const ttl = packet[at];
  if (ttl <= 1) return 0;
  packet[at] = ttl - 1;
  if (!isIPv6) {
    // The TTL is the high byte of the word it shares with the protocol.
    applyDelta(packet, 10, wordDelta(0, ttl << 8, (ttl - 1) << 8, false));
  }
  return ttl - 1;
}

/**
 * Lowers the MSS option of a TCP SYN (or SYN-ACK) to `mss` when it is
 * larger, updating the TCP checksum incrementally: MSS clamping, which keeps
 * TCP working across a tunnel whose MTU is smaller than the endpoints think.
 * An MSS at or below `mss` is left alone.
 *
 * Returns false, changing nothing, for anything else: not TCP, not a SYN, a
 * fragment other than the first, no MSS option, or options that are
 * malformed (an option running past the header, a length below 2, an MSS
 * option not 4 bytes long); a router forwards such a segment as it is
 * rather than guess at its options. A TCP header that is itself truncated
 * throws, as `parsePacket` does.
 *
 * @example Clamp the MSS of SYNs entering a tunnel with MTU 1420
 * ```ts
 * import { clampMss } from "@tuntap/tuntap/packet";
 *
 * function forward(packet: Uint8Array): void {
 *   // 1420 - 20 (IPv4) - 20 (TCP); use 1420 - 40 - 20 for IPv6.
 *   clampMss(packet, 1380);
 *   // ... write the packet to the tunnel
 * }
 * ```
 *
 * With `{ partialChecksum: true }` the checksum field, a pseudo-header sum
 * (see {@linkcode RewriteOptions}), is left alone.
 *
 * @param packet The IP packet, changed in place.
 * @param mss The largest MSS to let through, 0..65535.
 * @param options How the checksums are kept (default: complete checksums).
 * @returns Whether the packet was changed.
 * @throws {TypeError} If an argument has the wrong type.
 * @throws {RangeError} If `mss` is out of range, or the packet is not IP or
 *   is truncated.
 */
export function clampMss(packet: Uint8Array, mss: number, options?: RewriteOptions): boolean {
  const action = "clamp the MSS";
  integerOption(mss, "mss", 0, 0xffff, action);
  rewriteOptions(options, action);
  locate(packet, action, true);
  if (transport === -1 || protocol !== IpProtocol.TCP) return false;
  requireTransport(action, "TCP header", 20);
  const headerLength = (packet[transport + 12] >> 4) * 4;
  if (headerLength < 20) {
    throw new RangeError(
      `Cannot ${action}: invalid TCP header: data offset ${headerLength} is less than 20`,
    );
  }
  requireTransport(action, "TCP header", headerLength);
  if ((packet[transport + 13] & 0x02) === 0) return false; // not a SYN
  const at = findOption(packet, transport + 20, transport + headerLength, isMss);
  if (at === -1 || packet[at + 1] !== 4) return false;
  const value = read16(packet, at + 2);
  if (value <= mss) return false;
  write16(packet, at + 2, mss);
  // A partial checksum leaves the options to the device.
  if (partial) return true;
  // Options are byte-aligned: after a lone NOP the value straddles two
  // checksum words.
  const odd = ((at + 2 - transport) & 1) === 1;
  applyDelta(packet, transport + 16, wordDelta(0, value, mss, odd));
  return true;
}
