/**
 * Segmentation offload in software, for devices opened with
 * `vnetHeader: true` and `offload`: {@linkcode gsoSplit} cuts a TSO or USO
 * super-packet read from the device into packets that fit an MTU, and
 * {@linkcode groCoalesce} merges consecutive segments of a flow into
 * super-packets that the kernel accepts in one write.
 *
 * Both follow what Linux does in `tcp_gso_segment`, `__udp_gso_segment`
 * and `virtio_net_hdr_to_skb`, and what wireguard-go's `offload_linux.go`
 * does for the same devices: every IPv4 total length, identification and
 * header checksum, IPv6 payload length, TCP sequence number and flag, UDP
 * length and transport checksum of a segment is written afresh.
 *
 * @module
 */

import { read16, read32, write16, write32 } from "./bytes.ts";
import { finishChecksum, sumProtocolAndLength, sumWords } from "./checksum.ts";
import { IpProtocol } from "./constants.ts";
import {
  buildVirtioNetHeader,
  resolveVirtioNetHeader,
  VIRTIO_NET_HDR_SIZE,
  VirtioNetGsoType,
  type VirtioNetHeader,
  VirtioNetHeaderFlag,
} from "./virtio_net.ts";

/**
 * The largest IP packet {@linkcode groCoalesce} builds, in bytes: what
 * 16-bit IP length fields can say. With the virtio-net header in front, a
 * buffer of `VIRTIO_NET_HDR_SIZE + GSO_MAX_PACKET_SIZE` bytes holds any
 * super-packet, whether coalesced here or read from a TSO device.
 *
 * @example Size a buffer for one super-packet
 * ```ts
 * import { GSO_MAX_PACKET_SIZE, VIRTIO_NET_HDR_SIZE } from "@tuntap/tuntap/packet";
 *
 * const buffer = new Uint8Array(VIRTIO_NET_HDR_SIZE + GSO_MAX_PACKET_SIZE);
 * ```
 */
export const GSO_MAX_PACKET_SIZE = 0xffff;

/**
 * How many datagrams one UDP super-packet may hold: Linux refuses a
 * `UDP_L4` write of more (`UDP_MAX_SEGMENTS`: 64 in older kernels, 128 in
 * newer ones; the lower value works everywhere).
 */
const UDP_MAX_SEGMENTS = 64;

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_PSH = 0x08;
const TCP_URG = 0x20;
const TCP_CWR = 0x80;

/** Offset of the checksum field within each transport header. */
const TCP_CHECKSUM = 16;
const UDP_CHECKSUM = 6;

function equalBytes(a: Uint8Array, b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Where the parts of an IP packet are, as far as segmentation needs. */
interface IpLayout {
  family: 4 | 6;
  /** Offset of the source address; the destination follows it. */
  addresses: number;
  /** 4 or 16. */
  addressLength: number;
  /** Offset of the transport header (after any IPv6 extension headers). */
  transport: number;
  /** The transport protocol. */
  protocol: number;
  /** Whether the packet is an IPv4 or IPv6 fragment. */
  fragment: boolean;
}

/**
 * Finds the transport header of a whole IP packet, or returns a reason it
 * cannot: the IP lengths must describe exactly `packet.length` bytes.
 */
function locateTransport(packet: Uint8Array): IpLayout | string {
  const length = packet.length;
  if (length < 1) return "the packet is empty";
  const version = packet[0] >> 4;
  if (version === 4) {
    if (length < 20) return `an IPv4 header needs 20 bytes, the packet has ${length}`;
    const headerLength = (packet[0] & 0x0f) * 4;
    if (headerLength < 20 || headerLength > length) {
      return `the IPv4 header length ${headerLength} does not fit the packet of ${length} bytes`;
    }
    const totalLength = read16(packet, 2);
    if (totalLength !== length) {
      return `the IPv4 total length is ${totalLength}, the packet has ${length} bytes`;
    }
    return {
      family: 4,
      addresses: 12,
      addressLength: 4,
      transport: headerLength,
      protocol: packet[9],
      fragment: (read16(packet, 6) & 0x3fff) !== 0,
    };
  }
  if (version === 6) {
    if (length < 40) return `an IPv6 header needs 40 bytes, the packet has ${length}`;
    const payloadLength = read16(packet, 4);
    if (payloadLength + 40 !== length) {
      return `the IPv6 payload length is ${payloadLength}, the packet carries ${length - 40}`;
    }
    let protocol = packet[6];
    let cursor = 40;
    let fragment = false;
    // Each extension header is at least 8 bytes long, so the walk ends.
    for (;;) {
      if (
        protocol === IpProtocol.HOP_BY_HOP || protocol === IpProtocol.ROUTING ||
        protocol === IpProtocol.DESTINATION_OPTIONS || protocol === IpProtocol.FRAGMENT
      ) {
        if (cursor + 8 > length) return `an IPv6 extension header at ${cursor} is truncated`;
        fragment ||= protocol === IpProtocol.FRAGMENT;
        const size = protocol === IpProtocol.FRAGMENT ? 8 : (packet[cursor + 1] + 1) * 8;
        if (cursor + size > length) return `an IPv6 extension header at ${cursor} is truncated`;
        protocol = packet[cursor];
        cursor += size;
      } else {
        break;
      }
    }
    return { family: 6, addresses: 8, addressLength: 16, transport: cursor, protocol, fragment };
  }
  return `unknown IP version ${version}`;
}

/** The unfolded pseudo-header sum for a transport part of `length` bytes. */
function pseudoSum(packet: Uint8Array, ip: IpLayout, length: number): number {
  return sumWords(
    packet,
    ip.addresses,
    ip.addresses + 2 * ip.addressLength,
    sumProtocolAndLength(ip.protocol, length),
  );
}

/**
 * The checksum the transport header at `ip.transport` should hold, computed
 * as the builders and the kernel's software GSO do (UDP sends a 0 as
 * 0xffff); `end` is where the covered data ends.
 */
function transportChecksumOf(packet: Uint8Array, ip: IpLayout, end: number): number {
  const udp = ip.protocol === IpProtocol.UDP;
  const field = ip.transport + (udp ? UDP_CHECKSUM : TCP_CHECKSUM);
  let sum = pseudoSum(packet, ip, end - ip.transport);
  sum = sumWords(packet, ip.transport, field, sum);
  sum = sumWords(packet, field + 2, end, sum);
  const checksum = finishChecksum(sum);
  return udp && checksum === 0 ? 0xffff : checksum;
}

function ipv4HeaderChecksumOf(packet: Uint8Array, headerLength: number): number {
  return finishChecksum(sumWords(packet, 12, headerLength, sumWords(packet, 0, 10, 0)));
}

function splitError(reason: string): RangeError {
  return new RangeError(`Cannot split GSO packet: ${reason}`);
}

function gsoTypeName(type: number): string {
  const name = Object.entries(VirtioNetGsoType).find(([, value]) => value === type)?.[0];
  return name ?? String(type);
}

/**
 * Cuts a packet read from a device with `vnetHeader: true` and offloads on
 * into the packets it stands for, the way the kernel would have sent them:
 *
 * - `GSO_NONE`: the packet itself; with `NEEDS_CSUM`, its transport
 *   checksum is completed at `checksumStart + checksumOffset`.
 * - `TCPV4`, `TCPV6` (with or without the `ECN` bit): TCP segments of
 *   `gsoSize` payload bytes, the last maybe smaller. When such a segment
 *   would make an IP packet longer than `mtu`, the data is cut smaller
 *   instead, as TCP allows. Each segment gets its own IPv4 total length,
 *   identification (one more per segment) and header checksum or IPv6
 *   payload length, sequence number and checksum; FIN and PSH stay on the
 *   last segment only, CWR on the first.
 * - `UDP_L4`: UDP datagrams of `gsoSize` payload bytes, the last maybe
 *   smaller, each with its own UDP length and checksum. Datagram
 *   boundaries cannot move, so a datagram longer than `mtu` is an error.
 *
 * The transport header is found from the IP header, not from
 * `headerLength`: Linux reports there the length of the packet's linear
 * part for forwarded packets, so it is only checked not to exceed the
 * packet. Every result is a new array; `packet` is not changed.
 *
 * @example Split a TSO super-packet read from a device
 * ```ts
 * import {
 *   buildTcp,
 *   gsoSplit,
 *   VirtioNetGsoType,
 *   VirtioNetHeaderFlag,
 * } from "@tuntap/tuntap/packet";
 *
 * const superPacket = buildTcp({
 *   source: "192.0.2.1",
 *   destination: "192.0.2.2",
 *   sourcePort: 40000,
 *   destinationPort: 80,
 *   sequence: 1,
 *   flags: { ack: true, psh: true },
 *   payload: new Uint8Array(4000),
 * });
 * const segments = gsoSplit(superPacket, {
 *   flags: VirtioNetHeaderFlag.NEEDS_CSUM,
 *   gsoType: VirtioNetGsoType.TCPV4,
 *   headerLength: 40,
 *   gsoSize: 1460,
 *   checksumStart: 20,
 *   checksumOffset: 16,
 * }, 1500);
 * // segments.length === 3: 1460, 1460 and 1080 bytes of data
 * ```
 *
 * @param packet The IP packet that follows the virtio-net header.
 * @param header The virtio-net header read with it.
 * @param mtu The largest IP packet to produce, in bytes.
 * @returns The packets, in order.
 * @throws {TypeError} If `packet` is not a Uint8Array, `header` not an
 *   object, or a number is not a number.
 * @throws {RangeError} If the header and the packet disagree or are
 *   malformed (a GSO type without `NEEDS_CSUM` or with `gsoSize` 0,
 *   `checksumStart` not at the transport header, a checksum offset that is
 *   not the protocol's, IP lengths that do not match the packet, a
 *   fragment, a TCP SYN or RST, no payload), the GSO type is not supported
 *   (UFO), or the segments cannot fit `mtu`.
 */
export function gsoSplit(
  packet: Uint8Array,
  header: VirtioNetHeader,
  mtu: number,
): Uint8Array<ArrayBuffer>[] {
  if (!(packet instanceof Uint8Array)) {
    throw new TypeError("Packet must be a Uint8Array");
  }
  const {
    flags,
    gsoType,
    headerLength: hintedHeaderLength,
    gsoSize,
    checksumStart,
    checksumOffset,
  } = resolveVirtioNetHeader(header);
  if (typeof mtu !== "number") {
    throw new TypeError(`mtu must be a number, got ${typeof mtu}`);
  }
  if (!Number.isInteger(mtu) || mtu < 1) {
    throw new RangeError(`mtu must be a positive integer, got ${mtu}`);
  }
  if (hintedHeaderLength > packet.length) {
    throw splitError(
      `headerLength ${hintedHeaderLength} exceeds the packet's ${packet.length} bytes`,
    );
  }
  const needsChecksum = (flags & VirtioNetHeaderFlag.NEEDS_CSUM) !== 0;
  const type = gsoType & ~VirtioNetGsoType.ECN;
  if (type === VirtioNetGsoType.NONE) {
    if (gsoType !== type) throw splitError("the ECN bit is set without a TCP GSO type");
    const copy = packet.slice();
    if (needsChecksum) {
      const field = checksumStart + checksumOffset;
      if (field + 2 > packet.length) {
        throw splitError(
          `the checksum at ${checksumStart} + ${checksumOffset} lies beyond the packet's ${packet.length} bytes`,
        );
      }
      // The field holds the pseudo-header sum, so it is summed in place; a
      // result of 0 goes out as 0xffff, as the kernel's skb_checksum_help
      // does, since a UDP checksum of 0 would mean "none".
      write16(copy, field, finishChecksum(sumWords(copy, checksumStart, copy.length, 0)) || 0xffff);
    }
    return [copy];
  }
  const tcp = type === VirtioNetGsoType.TCPV4 || type === VirtioNetGsoType.TCPV6;
  if (!tcp && type !== VirtioNetGsoType.UDP_L4) {
    throw splitError(`GSO type ${gsoTypeName(type)} is not supported`);
  }
  if (!tcp && gsoType !== type) throw splitError("the ECN bit is set on a UDP_L4 packet");
  if (!needsChecksum) {
    throw splitError(`a ${gsoTypeName(type)} packet must have the NEEDS_CSUM flag`);
  }
  if (gsoSize === 0) throw splitError(`gsoSize is 0 for a ${gsoTypeName(type)} packet`);
  const ip = locateTransport(packet);
  if (typeof ip === "string") throw splitError(ip);
  if (ip.fragment) throw splitError("the packet is an IP fragment");
  if (type === VirtioNetGsoType.TCPV4 && ip.family !== 4) {
    throw splitError("a TCPV4 packet holds IPv6");
  }
  if (type === VirtioNetGsoType.TCPV6 && ip.family !== 6) {
    throw splitError("a TCPV6 packet holds IPv4");
  }
  const protocol = tcp ? IpProtocol.TCP : IpProtocol.UDP;
  if (ip.protocol !== protocol) {
    throw splitError(
      `a ${gsoTypeName(type)} packet carries IP protocol ${ip.protocol}, not ${protocol}`,
    );
  }
  if (checksumStart !== ip.transport) {
    throw splitError(
      `checksumStart is ${checksumStart}, the transport header is at ${ip.transport}`,
    );
  }
  const expectedOffset = tcp ? TCP_CHECKSUM : UDP_CHECKSUM;
  if (checksumOffset !== expectedOffset) {
    throw splitError(
      `checksumOffset is ${checksumOffset}, the ${
        tcp ? "TCP" : "UDP"
      } checksum is at ${expectedOffset}`,
    );
  }
  const transport = ip.transport;
  let headerLength: number;
  if (tcp) {
    if (transport + 20 > packet.length) throw splitError("the TCP header is truncated");
    headerLength = transport + (packet[transport + 12] >> 4) * 4;
    if (headerLength < transport + 20 || headerLength > packet.length) {
      throw splitError("the TCP data offset does not fit the packet");
    }
    if ((packet[transport + 13] & (TCP_SYN | TCP_RST)) !== 0) {
      throw splitError("a TCP SYN or RST cannot be segmented");
    }
  } else {
    headerLength = transport + 8;
    if (headerLength > packet.length) throw splitError("the UDP header is truncated");
    const udpLength = read16(packet, transport + 4);
    if (udpLength !== packet.length - transport) {
      throw splitError(
        `the UDP length is ${udpLength}, the packet carries ${packet.length - transport}`,
      );
    }
  }
  const payloadLength = packet.length - headerLength;
  if (payloadLength === 0) throw splitError("the packet carries no payload");
  let segmentSize = gsoSize;
  if (headerLength + segmentSize > mtu) {
    if (!tcp) {
      const datagram = headerLength + Math.min(gsoSize, payloadLength);
      if (datagram > mtu) {
        throw splitError(`a UDP datagram of ${datagram} bytes does not fit the MTU of ${mtu}`);
      }
    } else {
      segmentSize = mtu - headerLength;
      if (segmentSize < 1) {
        throw splitError(`headers of ${headerLength} bytes leave no room for data in ${mtu}`);
      }
    }
  }
  const segments: Uint8Array<ArrayBuffer>[] = [];
  const identification = ip.family === 4 ? read16(packet, 4) : 0;
  const sequence = tcp ? read32(packet, transport + 4) : 0;
  for (let offset = 0, index = 0; offset < payloadLength; offset += segmentSize, index++) {
    const size = Math.min(segmentSize, payloadLength - offset);
    const length = headerLength + size;
    const segment = new Uint8Array(length);
    segment.set(packet.subarray(0, headerLength));
    segment.set(
      packet.subarray(headerLength + offset, headerLength + offset + size),
      headerLength,
    );
    if (ip.family === 4) {
      write16(segment, 2, length);
      write16(segment, 4, (identification + index) & 0xffff);
      write16(segment, 10, ipv4HeaderChecksumOf(segment, transport));
    } else {
      write16(segment, 4, length - 40);
    }
    if (tcp) {
      write32(segment, transport + 4, (sequence + offset) >>> 0);
      let bits = segment[transport + 13];
      if (offset + size < payloadLength) bits &= ~(TCP_FIN | TCP_PSH);
      if (index > 0) bits &= ~TCP_CWR;
      segment[transport + 13] = bits;
    } else {
      write16(segment, transport + 4, length - transport);
    }
    write16(segment, checksumStart + checksumOffset, transportChecksumOf(segment, ip, length));
    segments.push(segment);
  }
  return segments;
}

/** What {@linkcode groCoalesce} learned about one packet. */
interface Inspected {
  /** Protocol, addresses and ports: packets of one flow share it. */
  flow: string;
  ip: IpLayout;
  /** Whether the packet may be part of a super-packet. */
  candidate: boolean;
  /** IP and transport headers, in bytes. */
  headerLength: number;
}

/** Packets merged so far into one output. */
interface Group {
  packets: Uint8Array[];
  ip: IpLayout;
  headerLength: number;
  /** Payload bytes of the first packet: the segment size. */
  gsoSize: number;
  /** IP length of the super-packet so far. */
  length: number;
}

function flowKey(packet: Uint8Array, ip: IpLayout): string {
  const end = ip.addresses + 2 * ip.addressLength;
  let key = String.fromCharCode(ip.protocol);
  for (let i = ip.addresses; i < end; i += 2) key += String.fromCharCode(read16(packet, i));
  return key + String.fromCharCode(read16(packet, ip.transport), read16(packet, ip.transport + 2));
}

/**
 * Classifies a packet for coalescing: `undefined` when it belongs to no
 * TCP or UDP flow that this function can see (not TCP or UDP, malformed,
 * or a later fragment).
 */
function inspect(packet: Uint8Array): Inspected | undefined {
  const ip = locateTransport(packet);
  if (typeof ip === "string") return undefined;
  const transport = ip.transport;
  let headerLength: number;
  if (ip.protocol === IpProtocol.TCP) {
    if (transport + 20 > packet.length) return undefined;
    headerLength = transport + (packet[transport + 12] >> 4) * 4;
    if (headerLength < transport + 20 || headerLength > packet.length) return undefined;
  } else if (ip.protocol === IpProtocol.UDP) {
    headerLength = transport + 8;
    if (headerLength > packet.length) return undefined;
  } else {
    return undefined;
  }
  if (ip.fragment && (ip.family === 6 || (read16(packet, 6) & 0x1fff) !== 0)) {
    // Only a first fragment starts with the transport header.
    return undefined;
  }
  const flow = flowKey(packet, ip);
  // The split must give back these very bytes, so only packets whose
  // lengths and checksums it would write the same way may be merged: no
  // IPv4 options or IPv6 extension headers, which the split would repeat
  // but the kernel need not expect, and no checksum of another form.
  let candidate = !ip.fragment && transport === (ip.family === 4 ? 20 : 40) &&
    headerLength < packet.length &&
    (ip.family === 6 || read16(packet, 10) === ipv4HeaderChecksumOf(packet, 20));
  if (candidate && ip.protocol === IpProtocol.TCP) {
    candidate = (packet[transport + 13] & (TCP_SYN | TCP_FIN | TCP_RST | TCP_URG)) === 0 &&
      read16(packet, transport + TCP_CHECKSUM) === transportChecksumOf(packet, ip, packet.length);
  } else if (candidate) {
    // A zero UDP checksum ("none") would come back computed.
    const checksum = read16(packet, transport + UDP_CHECKSUM);
    candidate = read16(packet, transport + 4) === packet.length - transport && checksum !== 0 &&
      checksum === transportChecksumOf(packet, ip, packet.length);
  }
  return { flow, ip, candidate, headerLength };
}

/** Whether `packet` can follow the packets of `group` in one super-packet. */
function canAppend(group: Group, packet: Uint8Array, headerLength: number): boolean {
  const first = group.packets[0];
  const last = group.packets[group.packets.length - 1];
  const { ip } = group;
  const t = ip.transport;
  const size = packet.length - headerLength;
  const lastSize = last.length - group.headerLength;
  if (
    headerLength !== group.headerLength || lastSize !== group.gsoSize || size > group.gsoSize ||
    group.length + size > GSO_MAX_PACKET_SIZE
  ) {
    return false;
  }
  // Every header field the split copies from the first packet must match;
  // the ones it writes itself must be what it will write.
  if (ip.family === 4) {
    if (
      !equalBytes(packet, first, 0, 2) || !equalBytes(packet, first, 6, 10) ||
      read16(packet, 4) !== ((read16(last, 4) + 1) & 0xffff)
    ) {
      return false;
    }
  } else if (!equalBytes(packet, first, 0, 4) || !equalBytes(packet, first, 6, 8)) {
    return false;
  }
  if (ip.protocol === IpProtocol.UDP) return group.packets.length < UDP_MAX_SEGMENTS;
  const firstFlags = first[t + 13];
  const lastFlags = last[t + 13];
  const flags = packet[t + 13];
  return (lastFlags & TCP_PSH) === 0 &&
    (flags & ~TCP_PSH) === (firstFlags & ~TCP_CWR) &&
    read32(packet, t + 4) === (read32(last, t + 4) + lastSize) % 0x100000000 &&
    equalBytes(packet, first, t + 8, t + 13) &&
    equalBytes(packet, first, t + 14, t + 16) &&
    equalBytes(packet, first, t + 18, headerLength);
}

function alone(packet: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(VIRTIO_NET_HDR_SIZE + packet.length);
  out.set(packet, VIRTIO_NET_HDR_SIZE);
  return out;
}

function merge(group: Group): Uint8Array<ArrayBuffer> {
  const { packets, ip, headerLength } = group;
  if (packets.length === 1) return alone(packets[0]);
  const tcp = ip.protocol === IpProtocol.TCP;
  const out = new Uint8Array(VIRTIO_NET_HDR_SIZE + group.length);
  const merged = out.subarray(VIRTIO_NET_HDR_SIZE);
  merged.set(packets[0]);
  let at = packets[0].length;
  for (let i = 1; i < packets.length; i++) {
    merged.set(packets[i].subarray(headerLength), at);
    at += packets[i].length - headerLength;
  }
  const t = ip.transport;
  if (ip.family === 4) {
    write16(merged, 2, group.length);
    write16(merged, 10, ipv4HeaderChecksumOf(merged, t));
  } else {
    write16(merged, 4, group.length - 40);
  }
  const last = packets[packets.length - 1];
  if (tcp) merged[t + 13] |= last[t + 13] & TCP_PSH;
  else write16(merged, t + 4, group.length - t);
  // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not
  // complemented, and the kernel adds the rest.
  const field = t + (tcp ? TCP_CHECKSUM : UDP_CHECKSUM);
  write16(merged, field, finishChecksum(pseudoSum(merged, ip, group.length - t)) ^ 0xffff);
  let gsoType: number = VirtioNetGsoType.UDP_L4;
  if (tcp) {
    gsoType = ip.family === 4 ? VirtioNetGsoType.TCPV4 : VirtioNetGsoType.TCPV6;
    if ((merged[t + 13] & TCP_CWR) !== 0) gsoType |= VirtioNetGsoType.ECN;
  }
  buildVirtioNetHeader({
    flags: VirtioNetHeaderFlag.NEEDS_CSUM,
    gsoType,
    headerLength,
    gsoSize: group.gsoSize,
    checksumStart: t,
    checksumOffset: field - t,
  }, out);
  return out;
}

/**
 * Merges consecutive TCP segments or UDP datagrams of a flow into
 * super-packets, each ready for one `write()` to a device opened with
 * `vnetHeader: true` and offloads on: the 10-byte virtio-net header, then
 * the IP packet. The kernel takes such a super-packet as the segments it
 * stands for, which costs one system call instead of one per segment.
 *
 * TCP segments merge when they have the same addresses, ports,
 * acknowledgment number, window, options, TTL or hop limit, TOS or traffic
 * class and flow label, don't-fragment bit and flags, contiguous sequence
 * numbers and consecutive IPv4 identifications, and payloads of one size
 * (the last may be smaller); CWR may be set on the first only, PSH on the
 * last only, and SYN, FIN, RST and URG on none. UDP datagrams merge under
 * the same IP rules when their payloads have one size (the last may be
 * smaller), at most 64 of them. The result gets gso type `TCPV4`, `TCPV6`
 * or `UDP_L4`, `NEEDS_CSUM`, and the pseudo-header sum in its checksum
 * field, as Linux expects of a partial checksum. A super-packet's IP
 * packet is at most {@linkcode GSO_MAX_PACKET_SIZE} bytes.
 *
 * Packets that do not merge (other protocols, IPv4 options, IPv6
 * extension headers, fragments, empty payloads, or checksums that are not
 * exactly what a split would compute) go out alone, with an all-zero
 * header: their checksums are already whole. Packets of a flow keep their
 * order; outputs come in the order of their first packet, so a flow's
 * super-packet can move ahead of another flow's packets received between
 * its segments. Splitting an output with {@linkcode gsoSplit} and a large
 * enough MTU gives back exactly the packets merged into it.
 *
 * @example Merge a TCP stream into one write
 * ```ts
 * import { buildTcp, groCoalesce, parseVirtioNetHeader } from "@tuntap/tuntap/packet";
 *
 * const segments = [0, 1, 2].map((i) => {
 *   const packet = buildTcp({
 *     source: "2001:db8::1",
 *     destination: "2001:db8::2",
 *     sourcePort: 80,
 *     destinationPort: 40000,
 *     sequence: 1 + 1000 * i,
 *     acknowledgment: 1,
 *     flags: { ack: true },
 *     payload: new Uint8Array(1000),
 *   });
 *   return packet;
 * });
 * const [write] = groCoalesce(segments);
 * parseVirtioNetHeader(write).gsoSize; // 1000
 * ```
 *
 * @param packets IP packets, without virtio-net headers, in the order
 *   they would have been written.
 * @returns The buffers to write, each a virtio-net header and an IP
 *   packet.
 * @throws {TypeError} If `packets` is not an array of Uint8Arrays.
 */
export function groCoalesce(packets: Uint8Array[]): Uint8Array<ArrayBuffer>[] {
  if (!Array.isArray(packets)) throw new TypeError("Packets must be an array of Uint8Arrays");
  const outputs: (Group | Uint8Array)[] = [];
  // The group each flow may still add to.
  const open = new Map<string, Group>();
  for (const packet of packets) {
    if (!(packet instanceof Uint8Array)) {
      throw new TypeError("Packets must be an array of Uint8Arrays");
    }
    const inspected = inspect(packet);
    if (inspected === undefined) {
      outputs.push(packet);
      continue;
    }
    const { flow, ip, candidate, headerLength } = inspected;
    const group = open.get(flow);
    if (candidate && group !== undefined && canAppend(group, packet, headerLength)) {
      group.packets.push(packet);
      group.length += packet.length - headerLength;
    } else if (candidate) {
      const started: Group = {
        packets: [packet],
        ip,
        headerLength,
        gsoSize: packet.length - headerLength,
        length: packet.length,
      };
      outputs.push(started);
      open.set(flow, started);
    } else {
      // A later segment must not jump ahead of this one into an earlier group.
      open.delete(flow);
      outputs.push(packet);
    }
  }
  return outputs.map((output) => output instanceof Uint8Array ? alone(output) : merge(output));
}
