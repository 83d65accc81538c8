/**
 * Decoding of Ethernet frames and IP packets into plain objects, one per
 * protocol layer found.
 *
 * The parser reads with direct byte math and formats addresses in place,
 * so the only allocations are the result objects, their strings and one
 * payload view. Every read is preceded by a bounds check that throws a
 * `RangeError` naming the layer and its byte offset, so garbage input can
 * never cause an out-of-bounds read or any other kind of exception.
 *
 * @module
 */

import { formatIPv4At, formatIPv6At, formatMacAt } from "./address.ts";
import { read16, read32 } from "./bytes.ts";
import { finishChecksum, sumProtocolAndLength, sumWords } from "./checksum.ts";
import { EtherType, IpProtocol, optionsHeaderName } from "./constants.ts";
import { findOption } from "./option_list.ts";
import { routingDestination, sourceRouteDestination } from "./source_route.ts";

/**
 * What the first byte of a packet is: an IP header, as read from a TUN
 * device, or an Ethernet header, as read from a TAP device.
 */
export type LinkType = "ip" | "ethernet";

/**
 * An Ethernet II header, or an IEEE 802.3 one (whose type field, below
 * 0x600, is a length instead).
 */
export interface EthernetLayer {
  /** Byte offset of the header in the parsed bytes: always 0. */
  offset: number;
  /** Destination MAC address, such as `ff:ff:ff:ff:ff:ff`. */
  destination: string;
  /** Source MAC address. */
  source: string;
  /**
   * EtherType of the payload, after any VLAN tags (0x0800 for IPv4). For
   * an 802.3 frame, the protocol number Linux gives such frames: 0x0001
   * (`ETH_P_802_3`, Novell raw 802.3, whose data starts with 0xffff) or
   * 0x0004 (`ETH_P_802_2`, LLC), with the frame's length in `length`.
   * Real EtherTypes are never below 0x600, so neither is mistaken for one.
   */
  etherType: number;
  /**
   * 802.3 frames only: the length field, the number of data bytes after
   * the header (padding left out). `payload` ends there, or at the end of
   * the frame if that comes first.
   */
  length?: number;
  /** VLAN id of the outermost 802.1Q/802.1ad tag, if the frame has one. */
  vlan?: number;
}

/** An ARP message for IPv4 over Ethernet. */
export interface ArpLayer {
  /** Byte offset of the ARP message in the parsed bytes. */
  offset: number;
  /** 1 for a request, 2 for a reply. */
  operation: number;
  /** Sender hardware address. */
  senderMac: string;
  /** Sender protocol address, as a dotted quad. */
  senderIp: string;
  /** Target hardware address (all zeros in a request). */
  targetMac: string;
  /** Target protocol address, as a dotted quad. */
  targetIp: string;
}

/** An IPv4 header. */
export interface IPv4Layer {
  /** Byte offset of the header in the parsed bytes (0, 14 or 18 in a frame). */
  offset: number;
  /** Source address, as a dotted quad. */
  source: string;
  /** Destination address, as a dotted quad. */
  destination: string;
  /** Protocol of the payload (6 TCP, 17 UDP, 1 ICMP). */
  protocol: number;
  /** Time to live. */
  ttl: number;
  /** Identification field, used to reassemble fragments. */
  identification: number;
  /** The "don't fragment" flag. */
  dontFragment: boolean;
  /** The "more fragments" flag. */
  moreFragments: boolean;
  /** Position of this fragment's data in the original datagram, in bytes. */
  fragmentOffset: number;
  /** Header length in bytes, options included. */
  headerLength: number;
  /** Total length in bytes, header included. */
  totalLength: number;
  /** Whether the header checksum is correct. */
  checksumValid: boolean;
}

/** An IPv6 header, with its extension headers walked. */
export interface IPv6Layer {
  /** Byte offset of the header in the parsed bytes (0, 14 or 18 in a frame). */
  offset: number;
  /** Source address, in RFC 5952 form. */
  source: string;
  /** Destination address, in RFC 5952 form. */
  destination: string;
  /**
   * Protocol after the hop-by-hop, routing, fragment and destination
   * options extension headers (6 TCP, 17 UDP, 58 ICMPv6). In a fragment
   * other than the first, the walk stops at the Fragment header (what
   * follows it is fragment data, RFC 8200 section 4.5), so this is that
   * header's next header, whatever its value.
   */
  nextHeader: number;
  /** 40 plus the length of the extension headers walked. */
  headerLength: number;
  /** The Fragment header's fields, when the packet has one. */
  fragment?: IPv6Fragment;
  /** Hop limit. */
  hopLimit: number;
  /** Payload length in bytes, extension headers included. */
  payloadLength: number;
  /** 20-bit flow label. */
  flowLabel: number;
  /** 8-bit traffic class (DSCP and ECN). */
  trafficClass: number;
}

/** The fields of an IPv6 Fragment header. */
export interface IPv6Fragment {
  /** Position of this fragment's data in the original packet, in bytes. */
  offset: number;
  /** The M flag: more fragments follow. */
  moreFragments: boolean;
  /** Identification, shared by the fragments of one packet. */
  identification: number;
}

/** An ICMP (IPv4) or ICMPv6 message header. */
export interface IcmpLayer {
  /** Byte offset of the ICMP header in the parsed bytes. */
  offset: number;
  /** 4 for ICMP, 6 for ICMPv6. */
  version: 4 | 6;
  /** Message type (8 echo request, 0 echo reply; 128 and 129 for ICMPv6). */
  type: number;
  /** Message code. */
  code: number;
  /**
   * Whether the checksum is correct (for ICMPv6, pseudo-header included,
   * with the final destination as for {@linkcode UdpLayer}).
   * Always false in the first fragment of a fragmented datagram, where the
   * rest of the covered data is missing.
   */
  checksumValid: boolean;
  /** Echo identifier; present for echo requests and replies only. */
  identifier?: number;
  /** Echo sequence number; present for echo requests and replies only. */
  sequence?: number;
}

/**
 * A UDP header. Its checksum is verified against the final destination:
 * the last address of an unfinished IPv4 source route (RFC 791, RFC 1122
 * section 4.1.3.6) or of an IPv6 routing header with segments left (RFC
 * 8200 section 8.1; the first segment listed for segment routing, RFC
 * 8754), otherwise the IP header's destination.
 */
export interface UdpLayer {
  /** Byte offset of the UDP header in the parsed bytes. */
  offset: number;
  /** Source port. */
  sourcePort: number;
  /** Destination port. */
  destinationPort: number;
  /** UDP length in bytes, the 8-byte header included. */
  length: number;
  /**
   * Whether the checksum is correct. A zero checksum over IPv4 means
   * "not computed" and counts as valid; over IPv6 it is invalid. Always
   * false in the first fragment of a fragmented datagram, unless zero.
   */
  checksumValid: boolean;
}

/** The control bits of a TCP header. */
export interface TcpFlags {
  /** No more data from the sender. */
  fin: boolean;
  /** Synchronize sequence numbers. */
  syn: boolean;
  /** Reset the connection. */
  rst: boolean;
  /** Push function. */
  psh: boolean;
  /** The acknowledgment field is significant. */
  ack: boolean;
  /** The urgent pointer field is significant. */
  urg: boolean;
  /** ECN echo. */
  ece: boolean;
  /** Congestion window reduced. */
  cwr: boolean;
}

/**
 * A TCP header. Its checksum is verified against the final destination,
 * as for {@linkcode UdpLayer}.
 */
export interface TcpLayer {
  /** Byte offset of the TCP header in the parsed bytes. */
  offset: number;
  /** Source port. */
  sourcePort: number;
  /** Destination port. */
  destinationPort: number;
  /** Sequence number. */
  sequence: number;
  /** Acknowledgment number. */
  acknowledgment: number;
  /** Control bits. */
  flags: TcpFlags;
  /** Receive window, unscaled. */
  window: number;
  /** Header length in bytes (the data offset), options included. */
  headerLength: number;
  /** The raw option bytes, padding included: a view, not a copy. */
  options: Uint8Array;
  /** The maximum segment size option's value, when the header has one. */
  mss?: number;
  /**
   * Whether the checksum (pseudo-header included) is correct. Always false
   * in the first fragment of a fragmented datagram.
   */
  checksumValid: boolean;
}

/**
 * The layers {@linkcode parsePacket} found. A layer is present only when
 * the packet has it; `payload` is always present.
 */
export interface ParsedPacket {
  /** The Ethernet header, for the `"ethernet"` link type. */
  ethernet?: EthernetLayer;
  /** The ARP message, when the frame carries IPv4-over-Ethernet ARP. */
  arp?: ArpLayer;
  /** The IPv4 header. */
  ipv4?: IPv4Layer;
  /** The IPv6 header. */
  ipv6?: IPv6Layer;
  /** The ICMP or ICMPv6 header. */
  icmp?: IcmpLayer;
  /** The UDP header. */
  udp?: UdpLayer;
  /** The TCP header. */
  tcp?: TcpLayer;
  /**
   * What the innermost parsed layer carries, as a view into the parsed
   * bytes (not a copy). IP payloads end where the IP lengths say, so
   * Ethernet padding is left out. For ICMP it is the data after the 8-byte
   * header; for ARP it is empty.
   */
  payload: Uint8Array;
  /** Byte offset of `payload` in the parsed bytes. */
  payloadOffset: number;
}

/** Linux's protocol number for Novell raw 802.3 frames (`ETH_P_802_3`). */
export const ETH_P_802_3 = 0x0001;
/** Linux's protocol number for 802.2 LLC frames (`ETH_P_802_2`). */
export const ETH_P_802_2 = 0x0004;
/** The least type field value that is an EtherType, not an 802.3 length. */
const MIN_ETHER_TYPE = 0x0600;
/** ARP hardware type of Ethernet (RFC 826); 6, IEEE 802, is another. */
const ARPHRD_ETHER = 1;

function byteCount(count: number): string {
  return count === 1 ? "1 byte" : `${count} bytes`;
}

/** Checks that `need` bytes are readable at `offset`, before `end`. */
function ensure(
  what: string,
  offset: number,
  end: number,
  need: number,
): void {
  if (end - offset < need) {
    throw new RangeError(
      `Truncated ${what} at offset ${offset}: need ${byteCount(need)}, have ${end - offset}`,
    );
  }
}

function invalid(what: string, offset: number, reason: string): RangeError {
  return new RangeError(`Invalid ${what} at offset ${offset}: ${reason}`);
}

/**
 * Decodes a packet into its layers: Ethernet (with 802.1Q tags; 802.3
 * frames report their length field as `length`), ARP, IPv4, IPv6 (walking
 * hop-by-hop, routing, fragment and destination options headers), ICMP,
 * ICMPv6, UDP and TCP. Each layer gives its byte `offset` in `bytes`, and
 * `payloadOffset` where the payload starts, so no header length needs to be
 * hard-coded. Checksums are verified, not enforced: each layer reports
 * `checksumValid`, computed against the final destination of a source
 * route or routing header. Fragments other than the first carry no
 * transport header, so none is parsed for them: in IPv6 the walk stops at
 * their Fragment header, since what follows it is fragment data.
 *
 * @example Read the ports of a UDP datagram
 * ```ts
 * import { buildUdp, parsePacket } from "@tuntap/tuntap/packet";
 *
 * const packet = buildUdp({
 *   source: "192.0.2.1",
 *   destination: "192.0.2.77",
 *   sourcePort: 40000,
 *   destinationPort: 5000,
 *   payload: new TextEncoder().encode("hello"),
 * });
 * const { ipv4, udp, payload } = parsePacket(packet, "ip");
 * // ipv4?.source === "192.0.2.1", udp?.destinationPort === 5000,
 * // new TextDecoder().decode(payload) === "hello"
 * ```
 *
 * @example Find the IP packet inside a VLAN-tagged frame
 * ```ts
 * import { buildEthernet, buildUdp, EtherType, parsePacket } from "@tuntap/tuntap/packet";
 *
 * const frame = buildEthernet({
 *   destination: "02:00:00:00:00:02",
 *   source: "02:00:00:00:00:01",
 *   etherType: EtherType.IPV4,
 *   vlan: 10,
 *   payload: buildUdp({
 *     source: "192.0.2.1",
 *     destination: "192.0.2.2",
 *     sourcePort: 1,
 *     destinationPort: 2,
 *   }),
 * });
 * const { ipv4, udp, payloadOffset } = parsePacket(frame, "ethernet");
 * const packet = frame.subarray(ipv4!.offset); // ipv4.offset === 18
 * // udp?.offset === 38, payloadOffset === 46
 * ```
 *
 * @param bytes The packet, starting at the link header (`"ethernet"`) or
 *   the IP header (`"ip"`, where the version nibble picks IPv4 or IPv6).
 * @param link What the packet starts with.
 * @returns The layers found.
 * @throws {RangeError} If the packet is truncated or inconsistent; the
 *   message names the layer and the byte offset.
 * @throws {TypeError} If `bytes` is not a Uint8Array or `link` is unknown.
 */
export function parsePacket(bytes: Uint8Array, link: LinkType): ParsedPacket {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError("Packet must be a Uint8Array");
  }
  const packet: ParsedPacket = { payload: bytes, payloadOffset: 0 };
  if (link === "ethernet") {
    parseEthernet(bytes, packet);
  } else if (link === "ip") {
    parseIp(bytes, 0, packet);
  } else {
    throw new TypeError(
      `Link type must be "ip" or "ethernet", got ${String(link)}`,
    );
  }
  // Every payload is a subarray of `bytes`, so the offsets tell where.
  packet.payloadOffset = packet.payload.byteOffset - bytes.byteOffset;
  return packet;
}

function parseEthernet(bytes: Uint8Array, packet: ParsedPacket): void {
  const end = bytes.length;
  ensure("Ethernet header", 0, end, 14);
  let etherType = read16(bytes, 12);
  let offset = 14;
  let vlan = -1;
  // 802.1ad frames stack tags; each tag is a TCI followed by the next type.
  while (etherType === EtherType.VLAN || etherType === EtherType.QINQ) {
    ensure("VLAN tag", offset, end, 4);
    if (vlan === -1) vlan = read16(bytes, offset) & 0x0fff;
    etherType = read16(bytes, offset + 2);
    offset += 4;
  }
  const ethernet: EthernetLayer = {
    offset: 0,
    destination: formatMacAt(bytes, 0),
    source: formatMacAt(bytes, 6),
    etherType,
  };
  if (vlan !== -1) ethernet.vlan = vlan;
  packet.ethernet = ethernet;
  if (etherType < MIN_ETHER_TYPE) {
    ethernet.length = etherType;
    // Linux tells raw 802.3 (IPX right after the header) by its 0xffff.
    ethernet.etherType = end - offset >= 2 && read16(bytes, offset) === 0xffff
      ? ETH_P_802_3
      : ETH_P_802_2;
    packet.payload = bytes.subarray(offset, Math.min(offset + etherType, end));
    return;
  }
  switch (etherType) {
    case EtherType.IPV4:
      parseIPv4(bytes, offset, packet);
      break;
    case EtherType.IPV6:
      parseIPv6(bytes, offset, packet);
      break;
    case EtherType.ARP:
      parseArp(bytes, offset, packet);
      break;
    default:
      packet.payload = bytes.subarray(offset);
  }
}

function parseArp(bytes: Uint8Array, offset: number, packet: ParsedPacket) {
  const end = bytes.length;
  ensure("ARP header", offset, end, 8);
  const hardwareType = read16(bytes, offset);
  const protocolType = read16(bytes, offset + 2);
  const hardwareLength = bytes[offset + 4];
  const protocolLength = bytes[offset + 5];
  // Only IPv4-over-MAC ARP has text forms for its addresses; anything else
  // is left as payload rather than rejected, since it is not malformed.
  if (
    hardwareType !== ARPHRD_ETHER || protocolType !== EtherType.IPV4 ||
    hardwareLength !== 6 || protocolLength !== 4
  ) {
    packet.payload = bytes.subarray(offset);
    return;
  }
  ensure("ARP message", offset, end, 28);
  packet.arp = {
    offset,
    operation: read16(bytes, offset + 6),
    senderMac: formatMacAt(bytes, offset + 8),
    senderIp: formatIPv4At(bytes, offset + 14),
    targetMac: formatMacAt(bytes, offset + 18),
    targetIp: formatIPv4At(bytes, offset + 24),
  };
  packet.payload = bytes.subarray(offset + 28, offset + 28);
}

function parseIp(bytes: Uint8Array, offset: number, packet: ParsedPacket) {
  ensure("IP header", offset, bytes.length, 1);
  const version = bytes[offset] >> 4;
  if (version === 4) parseIPv4(bytes, offset, packet);
  else if (version === 6) parseIPv6(bytes, offset, packet);
  else throw invalid("IP header", offset, `unknown IP version ${version}`);
}

function parseIPv4(bytes: Uint8Array, offset: number, packet: ParsedPacket) {
  const end = bytes.length;
  ensure("IPv4 header", offset, end, 20);
  const version = bytes[offset] >> 4;
  if (version !== 4) {
    throw invalid("IPv4 header", offset, `version is ${version}, expected 4`);
  }
  const headerLength = (bytes[offset] & 0x0f) * 4;
  if (headerLength < 20) {
    throw invalid(
      "IPv4 header",
      offset,
      `header length ${headerLength} is less than 20`,
    );
  }
  ensure("IPv4 header", offset, end, headerLength);
  const totalLength = read16(bytes, offset + 2);
  if (totalLength < headerLength) {
    throw invalid(
      "IPv4 header",
      offset,
      `total length ${totalLength} is less than header length ${headerLength}`,
    );
  }
  ensure("IPv4 packet", offset, end, totalLength);
  const fragment = read16(bytes, offset + 6);
  const fragmentOffset = (fragment & 0x1fff) * 8;
  const moreFragments = (fragment & 0x2000) !== 0;
  const protocol = bytes[offset + 9];
  packet.ipv4 = {
    offset,
    source: formatIPv4At(bytes, offset + 12),
    destination: formatIPv4At(bytes, offset + 16),
    protocol,
    ttl: bytes[offset + 8],
    identification: read16(bytes, offset + 4),
    dontFragment: (fragment & 0x4000) !== 0,
    moreFragments,
    fragmentOffset,
    headerLength,
    totalLength,
    checksumValid: finishChecksum(sumWords(bytes, offset, offset + headerLength, 0)) === 0,
  };
  const start = offset + headerLength;
  const stop = offset + totalLength;
  if (fragmentOffset !== 0) {
    packet.payload = bytes.subarray(start, stop);
    return;
  }
  const destination = headerLength > 20 ? sourceRouteDestination(bytes, offset, start) : -1;
  const addressSum = destination === -1
    ? sumWords(bytes, offset + 12, offset + 20, 0)
    : sumWords(bytes, destination, destination + 4, sumWords(bytes, offset + 12, offset + 16, 0));
  parseTransport(bytes, start, stop, protocol, 4, addressSum, moreFragments, packet);
}

function parseIPv6(bytes: Uint8Array, offset: number, packet: ParsedPacket) {
  const end = bytes.length;
  ensure("IPv6 header", offset, end, 40);
  const version = bytes[offset] >> 4;
  if (version !== 6) {
    throw invalid("IPv6 header", offset, `version is ${version}, expected 6`);
  }
  const payloadLength = read16(bytes, offset + 4);
  ensure("IPv6 packet", offset, end, 40 + payloadLength);
  const stop = offset + 40 + payloadLength;
  let nextHeader = bytes[offset + 6];
  let cursor = offset + 40;
  let fragment: IPv6Fragment | undefined;
  // Where the pseudo-header's destination is: moved by a routing header.
  let destination = offset + 24;
  // Each extension header is at least 8 bytes long, so the walk ends.
  for (;;) {
    const name = optionsHeaderName(nextHeader);
    if (name !== undefined) {
      ensure(name, cursor, stop, 8);
      const length = (bytes[cursor + 1] + 1) * 8;
      ensure(name, cursor, stop, length);
      if (nextHeader === IpProtocol.ROUTING) {
        destination = routingDestination(bytes, cursor, length, destination);
      }
      nextHeader = bytes[cursor];
      cursor += length;
    } else if (nextHeader === IpProtocol.FRAGMENT) {
      ensure("IPv6 fragment header", cursor, stop, 8);
      const word = read16(bytes, cursor + 2);
      fragment ??= {
        offset: word & 0xfff8,
        moreFragments: (word & 1) !== 0,
        identification: read32(bytes, cursor + 4),
      };
      nextHeader = bytes[cursor];
      cursor += 8;
      // Past a later fragment's Fragment header comes data, not headers.
      if ((word & 0xfff8) !== 0) break;
    } else {
      break;
    }
  }
  // Byte 1 holds the low traffic class nibble and the high flow label one.
  const split = bytes[offset + 1];
  const ipv6: IPv6Layer = {
    offset,
    source: formatIPv6At(bytes, offset + 8),
    destination: formatIPv6At(bytes, offset + 24),
    nextHeader,
    hopLimit: bytes[offset + 7],
    payloadLength,
    headerLength: cursor - offset,
    flowLabel: ((split & 0x0f) << 16) | read16(bytes, offset + 2),
    trafficClass: ((bytes[offset] & 0x0f) << 4) | (split >> 4),
  };
  if (fragment !== undefined) ipv6.fragment = fragment;
  packet.ipv6 = ipv6;
  if (fragment !== undefined && fragment.offset !== 0) {
    packet.payload = bytes.subarray(cursor, stop);
    return;
  }
  const addressSum = sumWords(
    bytes,
    destination,
    destination + 16,
    sumWords(bytes, offset + 8, offset + 24, 0),
  );
  parseTransport(
    bytes,
    cursor,
    stop,
    nextHeader,
    6,
    addressSum,
    fragment?.moreFragments ?? false,
    packet,
  );
}

/**
 * Parses the transport header in `bytes[start, stop)`. Positional rather
 * than an options object so that the hot path allocates nothing extra.
 * `addressSum` is the unfolded sum of both IP addresses, for the
 * pseudo-header; `fragmented` marks the first fragment of a datagram, whose
 * checksum cannot be verified and whose lengths may exceed what is here.
 */
function parseTransport(
  bytes: Uint8Array,
  start: number,
  stop: number,
  protocol: number,
  ipVersion: 4 | 6,
  addressSum: number,
  fragmented: boolean,
  packet: ParsedPacket,
): void {
  if (protocol === IpProtocol.UDP) {
    ensure("UDP header", start, stop, 8);
    const length = read16(bytes, start + 4);
    if (length < 8) {
      throw invalid("UDP header", start, `length ${length} is less than 8`);
    }
    if (!fragmented) ensure("UDP datagram", start, stop, length);
    const payloadEnd = Math.min(start + length, stop);
    const checksum = read16(bytes, start + 6);
    packet.udp = {
      offset: start,
      sourcePort: read16(bytes, start),
      destinationPort: read16(bytes, start + 2),
      length,
      checksumValid: checksum === 0 ? ipVersion === 4 : !fragmented &&
        finishChecksum(
            sumWords(
              bytes,
              start,
              payloadEnd,
              addressSum + sumProtocolAndLength(protocol, length),
            ),
          ) === 0,
    };
    packet.payload = bytes.subarray(start + 8, payloadEnd);
  } else if (protocol === IpProtocol.TCP) {
    ensure("TCP header", start, stop, 20);
    const headerLength = (bytes[start + 12] >> 4) * 4;
    if (headerLength < 20) {
      throw invalid(
        "TCP header",
        start,
        `data offset ${headerLength} is less than 20`,
      );
    }
    ensure("TCP header", start, stop, headerLength);
    const bits = bytes[start + 13];
    const tcp: TcpLayer = {
      offset: start,
      sourcePort: read16(bytes, start),
      destinationPort: read16(bytes, start + 2),
      sequence: read32(bytes, start + 4),
      acknowledgment: read32(bytes, start + 8),
      flags: {
        fin: (bits & 0x01) !== 0,
        syn: (bits & 0x02) !== 0,
        rst: (bits & 0x04) !== 0,
        psh: (bits & 0x08) !== 0,
        ack: (bits & 0x10) !== 0,
        urg: (bits & 0x20) !== 0,
        ece: (bits & 0x40) !== 0,
        cwr: (bits & 0x80) !== 0,
      },
      window: read16(bytes, start + 14),
      headerLength,
      options: bytes.subarray(start + 20, start + headerLength),
      checksumValid: !fragmented &&
        finishChecksum(
            sumWords(
              bytes,
              start,
              stop,
              addressSum + sumProtocolAndLength(protocol, stop - start),
            ),
          ) === 0,
    };
    const mss = findMss(bytes, start + 20, start + headerLength);
    if (mss !== -1) tcp.mss = mss;
    packet.tcp = tcp;
    packet.payload = bytes.subarray(start + headerLength, stop);
  } else if (
    (protocol === IpProtocol.ICMP && ipVersion === 4) ||
    (protocol === IpProtocol.ICMPV6 && ipVersion === 6)
  ) {
    const name = ipVersion === 4 ? "ICMP header" : "ICMPv6 header";
    ensure(name, start, stop, 8);
    const type = bytes[start];
    // ICMPv4 has no pseudo-header; ICMPv6 has one like TCP and UDP.
    const initial = ipVersion === 4 ? 0 : addressSum + sumProtocolAndLength(protocol, stop - start);
    const icmp: IcmpLayer = {
      offset: start,
      version: ipVersion,
      type,
      code: bytes[start + 1],
      checksumValid: !fragmented &&
        finishChecksum(sumWords(bytes, start, stop, initial)) === 0,
    };
    const echo = ipVersion === 4 ? type === 0 || type === 8 : type === 128 ||
      type === 129;
    if (echo) {
      icmp.identifier = read16(bytes, start + 4);
      icmp.sequence = read16(bytes, start + 6);
    }
    packet.icmp = icmp;
    packet.payload = bytes.subarray(start + 8, stop);
  } else {
    packet.payload = bytes.subarray(start, stop);
  }
}

/**
 * The value of the first well-formed MSS option (kind 2, length 4) in the
 * TCP options `bytes[start, end)`, or -1. A malformed option ends the
 * search: the options are reported raw either way.
 */
function findMss(bytes: Uint8Array, start: number, end: number): number {
  const at = findOption(bytes, start, end, (kind, length) => kind === 2 && length === 4);
  return at === -1 ? -1 : read16(bytes, at + 2);
}
