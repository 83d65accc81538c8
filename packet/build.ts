/**
 * Builders for complete packets: every length and checksum is filled in,
 * so the result can be written to a TUN (IP builders) or TAP
 * ({@linkcode buildEthernet}) device as is.
 *
 * Defaults follow what Linux sends: TTL/hop limit 64, TCP window 65535,
 * and IPv4 "don't fragment" set with identification 0 (RFC 6864 allows any
 * identification on such atomic datagrams).
 *
 * @module
 */

import { formatIp } from "./address.ts";
import { write16, write32 } from "./bytes.ts";
import { finishChecksum, ipv4HeaderChecksum, sumProtocolAndLength, sumWords } from "./checksum.ts";
import { EtherType, IpProtocol } from "./constants.ts";
import {
  booleanOption,
  bytesOption,
  integerOption,
  ipOption,
  macOption,
  optionsObject,
} from "./options.ts";
import { parsePacket, type TcpFlags } from "./parse.ts";

/** An IP address as text (`"192.0.2.1"`, `"2001:db8::1"`) or 4 or 16 bytes. */
export type IpAddress = string | Uint8Array;

/** A MAC address as text (`"02:00:00:00:00:01"`) or 6 bytes. */
export type MacAddress = string | Uint8Array;

/**
 * The IP header fields every IP builder takes. The family of `source` and
 * `destination` decides between IPv4 and IPv6; they must agree.
 */
export interface IpPacketOptions {
  /** Source address. */
  source: IpAddress;
  /** Destination address, of the same family as `source`. */
  destination: IpAddress;
  /** IPv4 time to live or IPv6 hop limit, 1..255. Defaults to 64. */
  ttl?: number;
}

/** Options of {@linkcode buildIPv4}. */
export interface IPv4Options {
  /** Source IPv4 address. */
  source: IpAddress;
  /** Destination IPv4 address. */
  destination: IpAddress;
  /** IP protocol number of the payload, 0..255. */
  protocol: number;
  /** What follows the header, copied as is. Defaults to empty. */
  payload?: Uint8Array;
  /** Time to live, 0..255. Defaults to 64. */
  ttl?: number;
  /** Identification, 0..65535. Defaults to 0. */
  identification?: number;
  /** The "don't fragment" flag. Defaults to true. */
  dontFragment?: boolean;
  /** The "more fragments" flag. Defaults to false. */
  moreFragments?: boolean;
  /** Fragment offset in bytes, a multiple of 8 up to 65528. Defaults to 0. */
  fragmentOffset?: number;
  /** Type of service byte (DSCP and ECN), 0..255. Defaults to 0. */
  tos?: number;
  /**
   * IPv4 options, already padded by the caller to a multiple of 4 bytes
   * (at most 40). Defaults to none.
   */
  options?: Uint8Array;
}

/** Options of {@linkcode buildIPv6}. */
export interface IPv6Options {
  /** Source IPv6 address. */
  source: IpAddress;
  /** Destination IPv6 address. */
  destination: IpAddress;
  /** Protocol or extension header the payload starts with, 0..255. */
  nextHeader: number;
  /** What follows the fixed header, copied as is. Defaults to empty. */
  payload?: Uint8Array;
  /** Hop limit, 0..255. Defaults to 64. */
  hopLimit?: number;
  /** Traffic class (DSCP and ECN), 0..255. Defaults to 0. */
  trafficClass?: number;
  /** Flow label, 0..0xfffff. Defaults to 0. */
  flowLabel?: number;
}

/** Options of {@linkcode buildUdp}. */
export interface UdpOptions extends IpPacketOptions {
  /** Source port, 0..65535. */
  sourcePort: number;
  /** Destination port, 0..65535. */
  destinationPort: number;
  /** Datagram data. Defaults to empty. */
  payload?: Uint8Array;
}

/** Options of {@linkcode buildTcp}. */
export interface TcpOptions extends IpPacketOptions {
  /** Source port, 0..65535. */
  sourcePort: number;
  /** Destination port, 0..65535. */
  destinationPort: number;
  /** Sequence number, 0..2^32-1. */
  sequence: number;
  /** Acknowledgment number, 0..2^32-1. Defaults to 0. */
  acknowledgment?: number;
  /** Control bits to set; those left out are clear. */
  flags: Partial<TcpFlags>;
  /** Receive window, 0..65535. Defaults to 65535. */
  window?: number;
  /**
   * Raw TCP option bytes, such as `[2, 4, 0x05, 0xb4]` (MSS 1460), at most
   * 40. The builder pads them with end-of-list (zero) bytes to a multiple
   * of 4. Defaults to none.
   */
  options?: Uint8Array;
  /** Segment data. Defaults to empty. */
  payload?: Uint8Array;
}

/** Options of {@linkcode buildIcmpEcho}. */
export interface IcmpEchoOptions extends IpPacketOptions {
  /** Echo identifier, 0..65535. */
  identifier: number;
  /** Echo sequence number, 0..65535. */
  sequence: number;
  /** Echo data. Defaults to empty. */
  payload?: Uint8Array;
  /** Build an echo reply instead of a request. Defaults to false. */
  reply?: boolean;
}

/** Options of {@linkcode buildEthernet}. */
export interface EthernetOptions {
  /** Destination MAC address. */
  destination: MacAddress;
  /** Source MAC address. */
  source: MacAddress;
  /** EtherType of the payload, such as `EtherType.IPV4`. */
  etherType: number;
  /** The frame's payload, such as an IP packet. */
  payload: Uint8Array;
  /** VLAN id 0..4095; when given, an 802.1Q tag is inserted. */
  vlan?: number;
}

/** Options of {@linkcode buildArp}. */
export interface ArpOptions {
  /** 1 for a request, 2 for a reply. */
  operation: 1 | 2;
  /** Sender hardware address. */
  senderMac: MacAddress;
  /** Sender IPv4 address. */
  senderIp: IpAddress;
  /** Target hardware address (all zeros in a request). */
  targetMac: MacAddress;
  /** Target IPv4 address. */
  targetIp: IpAddress;
}

const DEFAULT_TTL = 64;
const EMPTY = new Uint8Array(0);

/** The validated IP-level options, with the family they imply. */
interface ResolvedIp {
  source: Uint8Array;
  destination: Uint8Array;
  ttl: number;
  family: 4 | 6;
}

function resolveIp(options: IpPacketOptions): ResolvedIp {
  const source = ipOption(options.source, "source");
  const destination = ipOption(options.destination, "destination");
  if (source.length !== destination.length) {
    throw new TypeError(
      `source ${formatIp(source)} and destination ${
        formatIp(destination)
      } are of different address families`,
    );
  }
  const ttl = options.ttl === undefined ? DEFAULT_TTL : integerOption(options.ttl, "ttl", 1, 255);
  return { source, destination, ttl, family: source.length === 4 ? 4 : 6 };
}

/** A packet with its IP header written and its transport part zeroed. */
interface IpPacket {
  packet: Uint8Array<ArrayBuffer>;
  /** Index of the first transport byte. */
  start: number;
  /** Unfolded pseudo-header sum for the transport checksum. */
  pseudoSum: number;
}

/** The IP header fields that only the generic builders set. */
interface IpHeaderFields {
  /** IPv4 identification. */
  identification: number;
  /** IPv4 bytes 6-7: the flags and the fragment offset in 8-byte units. */
  fragmentWord: number;
  /** IPv4 type of service or IPv6 traffic class. */
  tos: number;
  /** IPv6 flow label. */
  flowLabel: number;
  /** IPv4 options, already a multiple of 4 bytes long. */
  options: Uint8Array;
}

const DEFAULT_HEADER: IpHeaderFields = {
  identification: 0,
  fragmentWord: 0x4000, // don't fragment
  tos: 0,
  flowLabel: 0,
  options: EMPTY,
};

/** The one IP header writer: every IP builder goes through it. */
function writeIpPacket(
  ip: ResolvedIp,
  protocol: number,
  segmentLength: number,
  header: IpHeaderFields = DEFAULT_HEADER,
): IpPacket {
  const headerLength = ip.family === 4 ? 20 + header.options.length : 40;
  // IPv4 counts its header in the 16-bit total length; IPv6 does not.
  const maxSegment = ip.family === 4 ? 0xffff - headerLength : 0xffff;
  if (segmentLength > maxSegment) {
    throw new RangeError(
      `IPv${ip.family} payload of ${segmentLength} bytes exceeds the maximum of ${maxSegment}`,
    );
  }
  const packet = new Uint8Array(headerLength + segmentLength);
  let addresses: number;
  if (ip.family === 4) {
    packet[0] = 0x40 | (headerLength >> 2);
    packet[1] = header.tos;
    write16(packet, 2, headerLength + segmentLength);
    write16(packet, 4, header.identification);
    write16(packet, 6, header.fragmentWord);
    packet[8] = ip.ttl;
    packet[9] = protocol;
    packet.set(header.options, 20);
    addresses = 12;
  } else {
    packet[0] = 0x60 | (header.tos >> 4);
    packet[1] = ((header.tos & 0x0f) << 4) | (header.flowLabel >> 16);
    write16(packet, 2, header.flowLabel);
    write16(packet, 4, segmentLength);
    packet[6] = protocol;
    packet[7] = ip.ttl;
    addresses = 8;
  }
  packet.set(ip.source, addresses);
  packet.set(ip.destination, addresses + ip.source.length);
  if (ip.family === 4) {
    write16(packet, 10, ipv4HeaderChecksum(packet, 0, headerLength));
  }
  const pseudoSum = sumWords(
    packet,
    addresses,
    addresses + 2 * ip.source.length,
    sumProtocolAndLength(protocol, segmentLength),
  );
  return { packet, start: headerLength, pseudoSum };
}

/** Writes the IP header and copies `payload` after it. */
function wrapPayload(
  ip: ResolvedIp,
  protocol: number,
  payload: Uint8Array,
  header: IpHeaderFields = DEFAULT_HEADER,
): IpPacket {
  const written = writeIpPacket(ip, protocol, payload.length, header);
  written.packet.set(payload, written.start);
  return written;
}

/**
 * Wraps an ICMP or ICMPv6 message (checksum bytes 2..3 zero) in an IP
 * packet of the addresses' family and fills in its checksum. Internal:
 * every ICMP builder of the package ends here; not exported from the
 * package.
 */
export function icmpPacket(
  source: Uint8Array,
  destination: Uint8Array,
  message: Uint8Array,
  hops: number,
  tos = 0,
): Uint8Array<ArrayBuffer> {
  const v4 = source.length === 4;
  const ip: ResolvedIp = { source, destination, ttl: hops, family: v4 ? 4 : 6 };
  const header = tos === 0 ? DEFAULT_HEADER : { ...DEFAULT_HEADER, tos };
  const protocol = v4 ? IpProtocol.ICMP : IpProtocol.ICMPV6;
  const { packet, start, pseudoSum } = wrapPayload(ip, protocol, message, header);
  // Only ICMPv6 covers a pseudo-header.
  write16(
    packet,
    start + 2,
    finishChecksum(sumWords(packet, start, packet.length, v4 ? 0 : pseudoSum)),
  );
  return packet;
}

/** Validates addresses of one family and a TTL that may be 0, for the generic builders. */
function resolveGenericIp(
  options: { source: IpAddress; destination: IpAddress },
  ttl: number | undefined,
  family: 4 | 6,
): ResolvedIp {
  const source = ipOption(options.source, "source");
  const destination = ipOption(options.destination, "destination");
  const length = family === 4 ? 4 : 16;
  for (const address of [source, destination]) {
    if (address.length !== length) {
      throw new RangeError(
        `Cannot build an IPv${family} packet with address ${formatIp(address)}`,
      );
    }
  }
  // Unlike the transport builders, a raw header may carry TTL 0: routers
  // and their tests need to see one.
  const hops = ttl === undefined
    ? DEFAULT_TTL
    : integerOption(ttl, family === 4 ? "ttl" : "hopLimit", 0, 255);
  return { source, destination, ttl: hops, family };
}

/**
 * Builds an IPv4 packet around any payload, for any protocol number: the
 * header checksum is filled in and the payload is copied untouched (a
 * transport checksum in it is the caller's, see
 * {@linkcode transportChecksum}). Fragment fields are written as given, so
 * fragments and odd headers can be built too.
 *
 * @example Build the second fragment of a datagram
 * ```ts
 * import { buildIPv4, parsePacket } from "@tuntap/tuntap/packet";
 *
 * const packet = buildIPv4({
 *   source: "192.0.2.1",
 *   destination: "192.0.2.2",
 *   protocol: 17,
 *   identification: 0x1234,
 *   dontFragment: false,
 *   fragmentOffset: 1480,
 *   payload: new Uint8Array(100),
 * });
 * parsePacket(packet, "ip").ipv4?.fragmentOffset; // 1480
 * ```
 *
 * @param options Addresses, protocol, payload and header fields.
 * @returns The complete IPv4 packet.
 * @throws {TypeError} If an option has the wrong type.
 * @throws {RangeError} If a number is out of range, an address is not
 *   IPv4, the options are not a multiple of 4 bytes (at most 40), the
 *   fragment offset is not a multiple of 8, or the packet is too big.
 */
export function buildIPv4(options: IPv4Options): Uint8Array<ArrayBuffer> {
  optionsObject(options, "IPv4 options");
  const ip = resolveGenericIp(options, options.ttl, 4);
  const protocol = integerOption(options.protocol, "protocol", 0, 255);
  const fragmentOffset = integerOption(
    options.fragmentOffset ?? 0,
    "fragmentOffset",
    0,
    0x1fff * 8,
  );
  if (fragmentOffset % 8 !== 0) {
    throw new RangeError(`fragmentOffset must be a multiple of 8, got ${fragmentOffset}`);
  }
  const ipOptions = bytesOption(options.options, "options");
  if (ipOptions.length % 4 !== 0 || ipOptions.length > 40) {
    throw new RangeError(
      `IPv4 options must be a multiple of 4 bytes, at most 40, got ${ipOptions.length}`,
    );
  }
  const payload = bytesOption(options.payload, "payload");
  const header: IpHeaderFields = {
    identification: integerOption(options.identification ?? 0, "identification", 0, 0xffff),
    fragmentWord: (booleanOption(options.dontFragment, "dontFragment", true) ? 0x4000 : 0) |
      (booleanOption(options.moreFragments, "moreFragments", false) ? 0x2000 : 0) |
      (fragmentOffset / 8),
    tos: integerOption(options.tos ?? 0, "tos", 0, 255),
    flowLabel: 0,
    options: ipOptions,
  };
  return wrapPayload(ip, protocol, payload, header).packet;
}

/**
 * Builds an IPv6 packet around any payload: `nextHeader` names what the
 * payload starts with, be it a transport header or an extension header
 * the caller wrote. The payload is copied untouched (a transport checksum
 * in it is the caller's, see {@linkcode transportChecksum}).
 *
 * @example Wrap an ICMPv6 message
 * ```ts
 * import { buildIPv6, parseIp, transportChecksum } from "@tuntap/tuntap/packet";
 *
 * const source = parseIp("2001:db8::1");
 * const destination = parseIp("2001:db8::2");
 * const icmp = new Uint8Array([128, 0, 0, 0, 0, 1, 0, 1]); // echo request
 * const checksum = transportChecksum({ source, destination, protocol: 58, segment: icmp });
 * icmp[2] = checksum >> 8;
 * icmp[3] = checksum & 0xff;
 * const packet = buildIPv6({ source, destination, nextHeader: 58, payload: icmp });
 * // packet.length === 48
 * ```
 *
 * @param options Addresses, next header, payload and header fields.
 * @returns The complete IPv6 packet.
 * @throws {TypeError} If an option has the wrong type.
 * @throws {RangeError} If a number is out of range, an address is not
 *   IPv6, or the payload is longer than 65535 bytes.
 */
export function buildIPv6(options: IPv6Options): Uint8Array<ArrayBuffer> {
  optionsObject(options, "IPv6 options");
  const ip = resolveGenericIp(options, options.hopLimit, 6);
  const nextHeader = integerOption(options.nextHeader, "nextHeader", 0, 255);
  const payload = bytesOption(options.payload, "payload");
  const header: IpHeaderFields = {
    identification: 0,
    fragmentWord: 0,
    tos: integerOption(options.trafficClass ?? 0, "trafficClass", 0, 255),
    flowLabel: integerOption(options.flowLabel ?? 0, "flowLabel", 0, 0xfffff),
    options: EMPTY,
  };
  return wrapPayload(ip, nextHeader, payload, header).packet;
}

/**
 * Builds a UDP datagram in an IPv4 or IPv6 packet.
 *
 * @example Build a UDP datagram
 * ```ts
 * import { buildUdp } from "@tuntap/tuntap/packet";
 *
 * const packet = buildUdp({
 *   source: "192.0.2.1",
 *   destination: "192.0.2.77",
 *   sourcePort: 40000,
 *   destinationPort: 5000,
 *   payload: new TextEncoder().encode("hello"),
 * });
 * // packet.length === 20 + 8 + 5
 * ```
 *
 * @param options Addresses, ports and data.
 * @returns The complete IP packet.
 * @throws {TypeError} If an option has the wrong type or the address
 *   families differ.
 * @throws {RangeError} If a number is out of range or the packet too big.
 */
export function buildUdp(options: UdpOptions): Uint8Array<ArrayBuffer> {
  optionsObject(options, "UDP options");
  const ip = resolveIp(options);
  const sourcePort = integerOption(options.sourcePort, "sourcePort", 0, 0xffff);
  const destinationPort = integerOption(options.destinationPort, "destinationPort", 0, 0xffff);
  const payload = bytesOption(options.payload, "payload");
  const length = 8 + payload.length;
  const { packet, start, pseudoSum } = writeIpPacket(
    ip,
    IpProtocol.UDP,
    length,
  );
  write16(packet, start, sourcePort);
  write16(packet, start + 2, destinationPort);
  write16(packet, start + 4, length);
  packet.set(payload, start + 8);
  // A computed 0 goes out as 0xffff: in UDP, 0 means "no checksum".
  const checksum = finishChecksum(
    sumWords(packet, start, packet.length, pseudoSum),
  );
  write16(packet, start + 6, checksum === 0 ? 0xffff : checksum);
  return packet;
}

/**
 * Builds a TCP segment in an IPv4 or IPv6 packet, with any TCP options
 * given as raw bytes.
 *
 * @example Build a TCP SYN with an MSS option
 * ```ts
 * import { buildTcp, parsePacket } from "@tuntap/tuntap/packet";
 *
 * const syn = buildTcp({
 *   source: "192.0.2.1",
 *   destination: "192.0.2.2",
 *   sourcePort: 40000,
 *   destinationPort: 80,
 *   sequence: 1,
 *   flags: { syn: true },
 *   options: Uint8Array.of(2, 4, 0x05, 0xb4),
 * });
 * parsePacket(syn, "ip").tcp?.mss; // 1460
 * ```
 *
 * @example Build a TCP SYN over IPv6
 * ```ts
 * import { buildTcp } from "@tuntap/tuntap/packet";
 *
 * const syn = buildTcp({
 *   source: "2001:db8::1",
 *   destination: "2001:db8::2",
 *   sourcePort: 40000,
 *   destinationPort: 80,
 *   sequence: 1,
 *   flags: { syn: true },
 * });
 * ```
 *
 * @param options Addresses, ports, sequence numbers, flags and data.
 * @returns The complete IP packet.
 * @throws {TypeError} If an option has the wrong type or the address
 *   families differ.
 * @throws {RangeError} If a number is out of range or the packet too big.
 */
export function buildTcp(options: TcpOptions): Uint8Array<ArrayBuffer> {
  optionsObject(options, "TCP options");
  const ip = resolveIp(options);
  const sourcePort = integerOption(options.sourcePort, "sourcePort", 0, 0xffff);
  const destinationPort = integerOption(options.destinationPort, "destinationPort", 0, 0xffff);
  const sequence = integerOption(options.sequence, "sequence", 0, 0xffffffff);
  const acknowledgment = integerOption(
    options.acknowledgment ?? 0,
    "acknowledgment",
    0,
    0xffffffff,
  );
  const window = integerOption(options.window ?? 0xffff, "window", 0, 0xffff);
  const flags = options.flags;
  optionsObject(flags, "TCP flags options");
  let bits = 0;
  const names = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"];
  for (let bit = 0; bit < 8; bit++) {
    const name = names[bit] as keyof TcpFlags;
    if (booleanOption(flags[name], `flags.${name}`, false)) bits |= 1 << bit;
  }
  const tcpOptions = bytesOption(options.options, "options");
  if (tcpOptions.length > 40) {
    throw new RangeError(`TCP options must be at most 40 bytes, got ${tcpOptions.length}`);
  }
  // Zero bytes pad: an end-of-list option, then what follows it.
  const headerLength = 20 + Math.ceil(tcpOptions.length / 4) * 4;
  const payload = bytesOption(options.payload, "payload");
  const { packet, start, pseudoSum } = writeIpPacket(
    ip,
    IpProtocol.TCP,
    headerLength + payload.length,
  );
  write16(packet, start, sourcePort);
  write16(packet, start + 2, destinationPort);
  write32(packet, start + 4, sequence);
  write32(packet, start + 8, acknowledgment);
  packet[start + 12] = (headerLength / 4) << 4;
  packet[start + 13] = bits;
  write16(packet, start + 14, window);
  packet.set(tcpOptions, start + 20);
  packet.set(payload, start + headerLength);
  write16(
    packet,
    start + 16,
    finishChecksum(sumWords(packet, start, packet.length, pseudoSum)),
  );
  return packet;
}

/**
 * Builds an ICMP echo request or reply: ICMP types 8/0 over IPv4, ICMPv6
 * types 128/129 over IPv6.
 *
 * @example Build a ping
 * ```ts
 * import { buildIcmpEcho } from "@tuntap/tuntap/packet";
 *
 * const ping = buildIcmpEcho({
 *   source: "192.0.2.1",
 *   destination: "192.0.2.2",
 *   identifier: 7,
 *   sequence: 1,
 *   payload: new Uint8Array(56),
 * });
 * ```
 *
 * @param options Addresses, identifier, sequence, data and direction.
 * @returns The complete IP packet.
 * @throws {TypeError} If an option has the wrong type or the address
 *   families differ.
 * @throws {RangeError} If a number is out of range or the packet too big.
 */
export function buildIcmpEcho(
  options: IcmpEchoOptions,
): Uint8Array<ArrayBuffer> {
  optionsObject(options, "ICMP echo options");
  const ip = resolveIp(options);
  const identifier = integerOption(options.identifier, "identifier", 0, 0xffff);
  const sequence = integerOption(options.sequence, "sequence", 0, 0xffff);
  const reply = booleanOption(options.reply, "reply", false);
  const payload = bytesOption(options.payload, "payload");
  const message = new Uint8Array(8 + payload.length);
  message[0] = ip.family === 4 ? (reply ? 0 : 8) : (reply ? 129 : 128);
  write16(message, 4, identifier);
  write16(message, 6, sequence);
  message.set(payload, 8);
  return icmpPacket(ip.source, ip.destination, message, ip.ttl);
}

/**
 * Answers an ICMP or ICMPv6 echo request: a reply from the request's
 * destination to its source, with the same identifier, sequence number and
 * data. The reply is built afresh (TTL 64, no IPv4 options or IPv6
 * extension headers), since a reply must not repeat the request's routing.
 *
 * @example Answer pings read from a TUN device
 * ```ts
 * import { buildIcmpEcho, icmpEchoReply, parsePacket } from "@tuntap/tuntap/packet";
 *
 * const request = buildIcmpEcho({
 *   source: "2001:db8::1",
 *   destination: "2001:db8::2",
 *   identifier: 7,
 *   sequence: 1,
 * });
 * const reply = icmpEchoReply(request);
 * parsePacket(reply, "ip").icmp?.type; // 129
 * ```
 *
 * @param request An IP packet holding an echo request.
 * @returns The reply packet.
 * @throws {RangeError} If the packet is malformed, not an echo request,
 *   or its ICMP checksum is wrong (as for the first fragment of a
 *   fragmented request, which cannot be answered on its own).
 * @throws {TypeError} If `request` is not a Uint8Array.
 */
export function icmpEchoReply(request: Uint8Array): Uint8Array<ArrayBuffer> {
  const parsed = parsePacket(request, "ip");
  const icmp = parsed.icmp;
  const echoType = icmp?.version === 4 ? 8 : 128;
  if (icmp === undefined || icmp.type !== echoType) {
    throw new RangeError(
      icmp === undefined
        ? "Not an ICMP echo request: the packet has no ICMP header"
        : `Not an ICMP echo request: ICMPv${icmp.version} type is ${icmp.type}, expected ${echoType}`,
    );
  }
  if (!icmp.checksumValid) {
    throw new RangeError("ICMP echo request has an invalid checksum");
  }
  const v4 = icmp.version === 4;
  const addresses = v4 ? 12 : 8;
  const length = v4 ? 4 : 16;
  return buildIcmpEcho({
    source: request.subarray(addresses + length, addresses + 2 * length),
    destination: request.subarray(addresses, addresses + length),
    identifier: icmp.identifier ?? 0,
    sequence: icmp.sequence ?? 0,
    payload: parsed.payload,
    reply: true,
  });
}

/**
 * Builds an Ethernet II frame, for writing to a TAP device. The frame is
 * not padded to 60 bytes: the kernel accepts short frames from TAP, and
 * padding would hide the payload's real length.
 *
 * @example Frame an IPv4 packet
 * ```ts
 * import { buildEthernet, buildUdp, EtherType } from "@tuntap/tuntap/packet";
 *
 * const frame = buildEthernet({
 *   destination: "02:00:00:00:00:02",
 *   source: "02:00:00:00:00:01",
 *   etherType: EtherType.IPV4,
 *   payload: buildUdp({
 *     source: "192.0.2.1",
 *     destination: "192.0.2.2",
 *     sourcePort: 1,
 *     destinationPort: 2,
 *   }),
 * });
 * ```
 *
 * @param options Addresses, EtherType, payload and optional VLAN id.
 * @returns The frame, without a frame check sequence.
 * @throws {TypeError} If an option has the wrong type.
 * @throws {RangeError} If a number is out of range.
 */
export function buildEthernet(
  options: EthernetOptions,
): Uint8Array<ArrayBuffer> {
  optionsObject(options, "Ethernet options");
  const destination = macOption(options.destination, "destination");
  const source = macOption(options.source, "source");
  const etherType = integerOption(options.etherType, "etherType", 0, 0xffff);
  if (options.payload === undefined) {
    throw new TypeError("payload must be a Uint8Array");
  }
  const payload = bytesOption(options.payload, "payload");
  const vlan = options.vlan === undefined ? -1 : integerOption(options.vlan, "vlan", 0, 4095);
  const header = vlan === -1 ? 14 : 18;
  const frame = new Uint8Array(header + payload.length);
  frame.set(destination, 0);
  frame.set(source, 6);
  if (vlan !== -1) {
    write16(frame, 12, EtherType.VLAN);
    write16(frame, 14, vlan);
  }
  write16(frame, header - 2, etherType);
  frame.set(payload, header);
  return frame;
}

/**
 * Builds the 28-byte body of an ARP message for IPv4 over Ethernet; wrap it
 * with {@linkcode buildEthernet} and `EtherType.ARP`.
 *
 * @example Answer "who has 192.0.2.1"
 * ```ts
 * import { buildArp, buildEthernet, EtherType } from "@tuntap/tuntap/packet";
 *
 * const reply = buildEthernet({
 *   destination: "02:00:00:00:00:02",
 *   source: "02:00:00:00:00:01",
 *   etherType: EtherType.ARP,
 *   payload: buildArp({
 *     operation: 2,
 *     senderMac: "02:00:00:00:00:01",
 *     senderIp: "192.0.2.1",
 *     targetMac: "02:00:00:00:00:02",
 *     targetIp: "192.0.2.2",
 *   }),
 * });
 * ```
 *
 * @param options Operation and the four addresses.
 * @returns The ARP message.
 * @throws {TypeError} If an option has the wrong type or an IP address is
 *   not IPv4.
 * @throws {RangeError} If the operation is not 1 or 2.
 */
export function buildArp(options: ArpOptions): Uint8Array<ArrayBuffer> {
  optionsObject(options, "ARP options");
  const operation = integerOption(options.operation, "operation", 1, 2);
  const senderMac = macOption(options.senderMac, "senderMac");
  const targetMac = macOption(options.targetMac, "targetMac");
  const senderIp = ipOption(options.senderIp, "senderIp");
  const targetIp = ipOption(options.targetIp, "targetIp");
  if (senderIp.length !== 4 || targetIp.length !== 4) {
    throw new TypeError("ARP carries IPv4 addresses only");
  }
  const message = new Uint8Array(28);
  write16(message, 0, 1); // hardware type: Ethernet
  write16(message, 2, EtherType.IPV4);
  message[4] = 6;
  message[5] = 4;
  write16(message, 6, operation);
  message.set(senderMac, 8);
  message.set(senderIp, 14);
  message.set(targetMac, 18);
  message.set(targetIp, 24);
  return message;
}
