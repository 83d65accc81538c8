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
import { finishChecksum, ipv4HeaderChecksum, sumProtocolAndLength, sumWords } from "./checksum.ts";
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

function newLayout(): IpLayout {
  return { family: 4, addresses: 0, addressLength: 0, transport: 0, protocol: 0, fragment: false };
}

function setLayout(
  ip: IpLayout,
  family: 4 | 6,
  transport: number,
  protocol: number,
  fragment: boolean,
): IpLayout {
  ip.family = family;
  ip.addresses = family === 4 ? 12 : 8;
  ip.addressLength = family === 4 ? 4 : 16;
  ip.transport = transport;
  ip.protocol = protocol;
  ip.fragment = fragment;
  return ip;
}

/**
 * Finds the transport header of a whole IP packet, filling `ip` (the
 * caller's reused layout), or returns a reason it cannot: the IP lengths must
 * describe exactly `packet.length` bytes.
 */
function locateTransport(packet: Uint8Array, ip: IpLayout): IpLayout | string {
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
    return setLayout(ip, 4, headerLength, packet[9], (read16(packet, 6) & 0x3fff) !== 0);
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
    return setLayout(ip, 6, cursor, protocol, fragment);
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
  sum = sumWords(packet, ip.transport, field + 2, sum) - read16(packet, field);
  sum = fastSum(packet, field + 2, end, sum);
  const checksum = finishChecksum(sum);
  return udp && checksum === 0 ? 0xffff : checksum;
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
  const plan = planSplit(packet, header, mtu);
  if (plan.tcp === undefined) {
    const copy = packet.slice();
    completeChecksum(copy, 0, copy.length, plan);
    return [copy];
  }
  const segments: Uint8Array<ArrayBuffer>[] = [];
  const { headerLength, segmentSize, payloadLength } = plan;
  for (let offset = 0, index = 0; offset < payloadLength; offset += segmentSize, index++) {
    const segment = new Uint8Array(headerLength + Math.min(segmentSize, payloadLength - offset));
    writeSegment(packet, plan, segment, 0, offset, index);
    segments.push(segment);
  }
  return segments;
}

/**
 * {@linkcode gsoSplit} without allocating: the packets are written back to
 * back into `out`, from its start, and `sizes[i]` receives the length of
 * the i-th. Every packet but the last has the same length, so `out`'s
 * first `sum(sizes)` bytes are a train that one UDP GSO send
 * (`UDP_SEGMENT` set to `sizes[0]`) cuts into exactly these packets, as a
 * tunnel that carries one packet per datagram wants. The checks, the
 * results and the errors are those of {@linkcode gsoSplit}.
 *
 * @example Split a super-packet into one reused buffer
 * ```ts
 * import {
 *   buildTcp,
 *   GSO_MAX_PACKET_SIZE,
 *   gsoSplitInto,
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
 *   flags: { ack: true },
 *   payload: new Uint8Array(4000),
 * });
 * // Allocated once: room for any split of a 64 KB super-packet.
 * const out = new Uint8Array(2 * GSO_MAX_PACKET_SIZE);
 * const sizes = new Uint32Array(64);
 * const count = gsoSplitInto(superPacket, {
 *   flags: VirtioNetHeaderFlag.NEEDS_CSUM,
 *   gsoType: VirtioNetGsoType.TCPV4,
 *   headerLength: 40,
 *   gsoSize: 1460,
 *   checksumStart: 20,
 *   checksumOffset: 16,
 * }, 1500, out, sizes);
 * // count === 3; sizes: 1500, 1500, 1120
 * ```
 *
 * @param packet The IP packet that follows the virtio-net header.
 * @param header The virtio-net header read with it.
 * @param mtu The largest IP packet to produce, in bytes.
 * @param out Where the packets go, back to back from index 0.
 * @param sizes Receives each packet's length.
 * @returns How many packets were written.
 * @throws {TypeError} As {@linkcode gsoSplit}, and if `out` is not a
 *   Uint8Array.
 * @throws {RangeError} As {@linkcode gsoSplit}, and if the packets do not
 *   fit `out` or their count does not fit `sizes` (nothing is written then).
 */
export function gsoSplitInto(
  packet: Uint8Array,
  header: VirtioNetHeader,
  mtu: number,
  out: Uint8Array,
  sizes: Uint32Array | number[],
): number {
  if (!(out instanceof Uint8Array)) throw new TypeError("out must be a Uint8Array");
  const plan = planSplit(packet, header, mtu);
  const { headerLength, segmentSize, payloadLength } = plan;
  const count = plan.tcp === undefined ? 1 : Math.ceil(payloadLength / segmentSize);
  const total = plan.tcp === undefined ? packet.length : count * headerLength + payloadLength;
  if (total > out.length) {
    throw splitError(`${count} packets of ${total} bytes in all do not fit ${out.length} bytes`);
  }
  if (count > sizes.length) {
    throw splitError(`${count} packets do not fit ${sizes.length} sizes`);
  }
  if (plan.tcp === undefined) {
    out.set(packet);
    completeChecksum(out, 0, packet.length, plan);
    sizes[0] = packet.length;
    return 1;
  }
  let at = 0;
  for (let offset = 0, index = 0; index < count; offset += segmentSize, index++) {
    at += sizes[index] = writeSegment(packet, plan, out, at, offset, index);
  }
  return count;
}

/** What {@linkcode planSplit} found: how a packet is to be cut. */
interface SplitPlan {
  /** Undefined for a packet that is not segmented (`GSO_NONE`). */
  tcp: boolean | undefined;
  ip: IpLayout;
  /** IP and transport headers, repeated in every segment. */
  headerLength: number;
  /** Payload bytes per segment. */
  segmentSize: number;
  payloadLength: number;
  /** Offset of the transport checksum field. */
  field: number;
  needsChecksum: boolean;
  /** IPv4 identification and TCP sequence number of the first segment. */
  identification: number;
  sequence: number;
}

/**
 * The one plan {@linkcode planSplit} fills, so that no plan is allocated
 * per packet; each split is done with it before the next one plans.
 */
const splitPlan: SplitPlan = {
  tcp: undefined,
  ip: newLayout(),
  headerLength: 0,
  segmentSize: 0,
  payloadLength: 0,
  field: 0,
  needsChecksum: false,
  identification: 0,
  sequence: 0,
};

/**
 * Checks a super-packet and its header, and says how to cut it (see
 * gsoSplit), in {@linkcode splitPlan}. Of a `GSO_NONE` packet's plan only
 * `needsChecksum`, `headerLength` and `field` matter.
 */
function planSplit(packet: Uint8Array, header: VirtioNetHeader, mtu: number): SplitPlan {
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
    const field = checksumStart + checksumOffset;
    if (needsChecksum && field + 2 > packet.length) {
      throw splitError(
        `the checksum at ${checksumStart} + ${checksumOffset} lies beyond the packet's ${packet.length} bytes`,
      );
    }
    splitPlan.tcp = undefined;
    splitPlan.headerLength = checksumStart;
    splitPlan.field = field;
    splitPlan.needsChecksum = needsChecksum;
    return splitPlan;
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
  const ip = locateTransport(packet, splitPlan.ip);
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
  splitPlan.tcp = tcp;
  splitPlan.headerLength = headerLength;
  splitPlan.segmentSize = segmentSize;
  splitPlan.payloadLength = payloadLength;
  splitPlan.field = checksumStart + checksumOffset;
  splitPlan.needsChecksum = needsChecksum;
  splitPlan.identification = ip.family === 4 ? read16(packet, 4) : 0;
  splitPlan.sequence = tcp ? read32(packet, transport + 4) : 0;
  return splitPlan;
}

/**
 * Completes the checksum of a `GSO_NONE` packet at `out[at, at + length)`
 * when it needs one. The field holds the pseudo-header sum, so it is
 * summed in place; a result of 0 goes out as 0xffff, as the kernel's
 * skb_checksum_help does, since a UDP checksum of 0 would mean "none".
 */
function completeChecksum(out: Uint8Array, at: number, length: number, plan: SplitPlan): void {
  if (!plan.needsChecksum) return;
  const sum = fastSum(out, at + plan.headerLength, at + length, 0);
  write16(out, at + plan.field, finishChecksum(sum) || 0xffff);
}

/**
 * Writes segment `index` (payload from `offset`) of a planned split at
 * `out[at…]`: the headers, the payload, every length, identification,
 * sequence number, flag and checksum. Returns its length.
 */
function writeSegment(
  packet: Uint8Array,
  plan: SplitPlan,
  out: Uint8Array,
  at: number,
  offset: number,
  index: number,
): number {
  const { ip, headerLength, payloadLength } = plan;
  const transport = ip.transport;
  const size = Math.min(plan.segmentSize, payloadLength - offset);
  const length = headerLength + size;
  out.set(packet.subarray(0, headerLength), at);
  out.set(packet.subarray(headerLength + offset, headerLength + offset + size), at + headerLength);
  if (ip.family === 4) {
    write16(out, at + 2, length);
    write16(out, at + 4, (plan.identification + index) & 0xffff);
    write16(out, at + 10, ipv4HeaderChecksum(out, at, transport));
  } else {
    write16(out, at + 4, length - 40);
  }
  if (plan.tcp) {
    write32(out, at + transport + 4, (plan.sequence + offset) >>> 0);
    let bits = out[at + transport + 13];
    if (offset + size < payloadLength) bits &= ~(TCP_FIN | TCP_PSH);
    if (index > 0) bits &= ~TCP_CWR;
    out[at + transport + 13] = bits;
  } else {
    write16(out, at + transport + 4, length - transport);
  }
  // The checksum of the segment as the builders and the kernel's software
  // GSO compute it (UDP sends a 0 as 0xffff).
  const field = at + plan.field;
  write16(out, field, 0);
  const start = at + ip.addresses;
  let sum = sumWords(out, start, start + 2 * ip.addressLength, 0);
  sum += sumProtocolAndLength(ip.protocol, length - transport);
  const checksum = finishChecksum(fastSum(out, at + transport, at + length, sum));
  write16(out, field, !plan.tcp && checksum === 0 ? 0xffff : checksum);
  return length;
}

/** 32-bit views of the buffers {@linkcode fastSum} reads, made once per buffer. */
const wordViews = new WeakMap<ArrayBufferLike, Uint32Array>();

/**
 * {@linkcode sumWords} read four bytes at a time, about three times as
 * fast on large packets: the one's-complement sum of little-endian 32-bit
 * words is the big-endian 16-bit sum with its bytes swapped (RFC 1071
 * §2(B)), and a sum started at an odd offset is swapped once more.
 */
function fastSum(bytes: Uint8Array, start: number, end: number, sum: number): number {
  if (end - start < 64) return sumWords(bytes, start, end, sum);
  const buffer = bytes.buffer;
  let words = wordViews.get(buffer);
  if (words === undefined) {
    words = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
    wordViews.set(buffer, words);
  }
  const base = bytes.byteOffset;
  // Bytes up to a 4-byte boundary of the buffer, then whole words, then the rest.
  const first = start + ((4 - ((base + start) & 3)) & 3);
  const wordsEnd = first + ((end - first) & ~3);
  sum = sumWords(bytes, start, first, sum);
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  let i = (base + first) >>> 2;
  const last = (base + wordsEnd) >>> 2;
  // At most 16384 words of a 64 KB packet: each lane stays below 2^30.
  for (; i + 1 < last; i += 2) {
    const w = words[i];
    const x = words[i + 1];
    a += w & 0xffff;
    b += w >>> 16;
    c += x & 0xffff;
    d += x >>> 16;
  }
  if (i < last) {
    a += words[i] & 0xffff;
    b += words[i] >>> 16;
  }
  const even = ((first - start) & 1) === 0;
  // Little-endian words put the byte at an even address low; relative to
  // `start` that byte is high when `first - start` is even.
  sum += even ? swapBytes(fold16(a + b + c + d)) : a + b + c + d;
  // The tail starts at the parity the words left, which `sumWords` assumes even.
  const tail = sumWords(bytes, wordsEnd, end, 0);
  return sum + (even ? tail : swapBytes(fold16(tail)));
}

function fold16(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function swapBytes(word: number): number {
  return ((word & 0xff) << 8) | (word >>> 8);
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

/**
 * What {@linkcode inspect} learned about the last packet it accepted: its
 * layout, whether it may be part of a super-packet, and its IP and
 * transport headers' length. One record for every call, so that
 * coalescing allocates nothing per packet.
 */
const inspected = { ip: newLayout(), candidate: false, headerLength: 0 };

/**
 * Classifies a packet for coalescing into {@linkcode inspected}: `false`
 * when it belongs to no TCP or UDP flow that this function can see (not
 * TCP or UDP, malformed, or a later fragment).
 */
function inspect(packet: Uint8Array): boolean {
  const ip = locateTransport(packet, inspected.ip);
  if (typeof ip === "string") return false;
  const transport = ip.transport;
  let headerLength: number;
  if (ip.protocol === IpProtocol.TCP) {
    if (transport + 20 > packet.length) return false;
    headerLength = transport + (packet[transport + 12] >> 4) * 4;
    if (headerLength < transport + 20 || headerLength > packet.length) return false;
  } else if (ip.protocol === IpProtocol.UDP) {
    headerLength = transport + 8;
    if (headerLength > packet.length) return false;
  } else {
    return false;
  }
  if (ip.fragment && (ip.family === 6 || (read16(packet, 6) & 0x1fff) !== 0)) {
    // Only a first fragment starts with the transport header.
    return false;
  }
  // The split must give back these very bytes, so only packets whose
  // lengths and checksums it would write the same way may be merged: no
  // IPv4 options or IPv6 extension headers, which the split would repeat
  // but the kernel need not expect, and no checksum of another form.
  let candidate = !ip.fragment && transport === (ip.family === 4 ? 20 : 40) &&
    headerLength < packet.length &&
    (ip.family === 6 || read16(packet, 10) === ipv4HeaderChecksum(packet, 0, 20));
  if (candidate && ip.protocol === IpProtocol.TCP) {
    candidate = (packet[transport + 13] & (TCP_SYN | TCP_FIN | TCP_RST | TCP_URG)) === 0 &&
      read16(packet, transport + TCP_CHECKSUM) === transportChecksumOf(packet, ip, packet.length);
  } else if (candidate) {
    // A zero UDP checksum ("none") would come back computed.
    const checksum = read16(packet, transport + UDP_CHECKSUM);
    candidate = read16(packet, transport + 4) === packet.length - transport && checksum !== 0 &&
      checksum === transportChecksumOf(packet, ip, packet.length);
  }
  inspected.candidate = candidate;
  inspected.headerLength = headerLength;
  return true;
}

/**
 * The flows of one {@linkcode coalesce} call and the group each may still
 * add to: an open-addressing hash table on protocol, addresses and ports,
 * whose key is a packet of the flow (its bytes, compared in place), so no
 * key is built per packet. Its arrays are kept from call to call and only
 * grow.
 */
class FlowTable {
  /** Table size minus one. */
  #mask = -1;
  /** Slots whose stamp is not the current call's are free. */
  #stamps = new Int32Array(0);
  #stamp = 0;
  #hashes = new Int32Array(0);
  /** A packet of each flow, and where its transport header and addresses are. */
  #keys: (Uint8Array | undefined)[] = [];
  #transports = new Int32Array(0);
  #protocols = new Int32Array(0);
  #addressLengths = new Int32Array(0);
  #groups: (Group | undefined)[] = [];
  /** The slots taken in this call, to let go of their packets at the end. */
  #taken = new Int32Array(0);
  #count = 0;

  /** Empties the table for a call of `packets` packets. */
  reset(packets: number): void {
    let size = 16;
    while (size < 2 * packets) size *= 2;
    if (size > this.#stamps.length) {
      this.#stamps = new Int32Array(size);
      this.#hashes = new Int32Array(size);
      this.#transports = new Int32Array(size);
      this.#protocols = new Int32Array(size);
      this.#addressLengths = new Int32Array(size);
      this.#taken = new Int32Array(size);
      this.#keys = new Array(size).fill(undefined);
      this.#groups = new Array(size).fill(undefined);
      this.#stamp = 0;
    }
    this.#mask = size - 1;
    this.#count = 0;
    if (++this.#stamp === 0x7fffffff) {
      this.#stamps.fill(0);
      this.#stamp = 1;
    }
  }

  /** Lets go of the packets and groups of the call (the table keeps no caller's bytes). */
  clear(): void {
    for (let i = 0; i < this.#count; i++) {
      this.#keys[this.#taken[i]] = undefined;
      this.#groups[this.#taken[i]] = undefined;
    }
    this.#count = 0;
  }

  /** The slot of the flow of `packet` (laid out as `ip`), claimed for it if new. */
  slot(packet: Uint8Array, ip: IpLayout): number {
    const start = ip.addresses;
    const end = start + 2 * ip.addressLength;
    const t = ip.transport;
    // FNV-1a over the protocol, the addresses and the ports.
    let hash = Math.imul(0x811c9dc5 ^ ip.protocol, 0x01000193);
    for (let i = start; i < end; i++) hash = Math.imul(hash ^ packet[i], 0x01000193);
    for (let i = t; i < t + 4; i++) hash = Math.imul(hash ^ packet[i], 0x01000193);
    const mask = this.#mask;
    for (let slot = hash & mask;; slot = (slot + 1) & mask) {
      if (this.#stamps[slot] !== this.#stamp) {
        this.#stamps[slot] = this.#stamp;
        this.#hashes[slot] = hash;
        this.#keys[slot] = packet;
        this.#transports[slot] = t;
        this.#protocols[slot] = ip.protocol;
        this.#addressLengths[slot] = ip.addressLength;
        this.#groups[slot] = undefined;
        this.#taken[this.#count++] = slot;
        return slot;
      }
      if (
        this.#hashes[slot] === hash && this.#protocols[slot] === ip.protocol &&
        this.#addressLengths[slot] === ip.addressLength &&
        // Both families keep their addresses where `ip` says: 12 for IPv4, 8 for IPv6.
        equalBytes(packet, this.#keys[slot]!, start, end) &&
        equalAt(packet, t, this.#keys[slot]!, this.#transports[slot], 4)
      ) {
        return slot;
      }
    }
  }

  group(slot: number): Group | undefined {
    return this.#groups[slot];
  }

  setGroup(slot: number, group: Group | undefined): void {
    this.#groups[slot] = group;
  }
}

function equalAt(a: Uint8Array, at: number, b: Uint8Array, bt: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[at + i] !== b[bt + i]) return false;
  return true;
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

/** The bytes an output of {@linkcode coalesce} takes: a virtio-net header and its IP packet. */
function outputLength(output: Group | Uint8Array): number {
  // A group's length is its IP length too.
  return VIRTIO_NET_HDR_SIZE + output.length;
}

/**
 * Writes an output of {@linkcode coalesce} into `out` at `at`, exactly its
 * {@linkcode outputLength}.
 */
function writeOutput(output: Group | Uint8Array, out: Uint8Array, at: number): void {
  if (output instanceof Uint8Array) alone(output, out, at);
  else if (output.packets.length === 1) alone(output.packets[0], out, at);
  else merge(output, out.subarray(at, at + outputLength(output)));
}

function alone(packet: Uint8Array, out: Uint8Array, at: number): void {
  out.fill(0, at, at + VIRTIO_NET_HDR_SIZE);
  out.set(packet, at + VIRTIO_NET_HDR_SIZE);
}

function merge(group: Group, out: Uint8Array): void {
  const { packets, ip, headerLength } = group;
  const tcp = ip.protocol === IpProtocol.TCP;
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
    write16(merged, 10, ipv4HeaderChecksum(merged, 0, t));
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
  const writes = coalesce(packets).map((output) => {
    const out = new Uint8Array(outputLength(output));
    writeOutput(output, out, 0);
    return out;
  });
  releaseOutputs();
  return writes;
}

/**
 * {@linkcode groCoalesce} without allocating the buffers it returns: the
 * writes (each a virtio-net header and an IP packet) go back to back into
 * `out`, from its start, and `sizes[i]` receives the length of the i-th.
 * They never take more than the packets' lengths plus 10 bytes per packet.
 * The grouping, the results and the errors are those of
 * {@linkcode groCoalesce}; `packets` may be views of `out`'s buffer only
 * where they do not overlap it.
 *
 * @example Merge a TCP stream into a reused buffer
 * ```ts
 * import { buildTcp, groCoalesceInto } from "@tuntap/tuntap/packet";
 *
 * const segments = [0, 1, 2].map((i) =>
 *   buildTcp({
 *     source: "192.0.2.1",
 *     destination: "192.0.2.2",
 *     sourcePort: 80,
 *     destinationPort: 40000,
 *     sequence: 1 + 1000 * i,
 *     flags: { ack: true },
 *     payload: new Uint8Array(1000),
 *   })
 * );
 * // Allocated once, reused for every batch.
 * const out = new Uint8Array(1 << 20);
 * const sizes = new Uint32Array(1024);
 * const count = groCoalesceInto(segments, out, sizes);
 * // count === 1: one write of out.subarray(0, sizes[0]), 10 + 40 + 3000 bytes
 * ```
 *
 * @param packets IP packets, without virtio-net headers, in the order
 *   they would have been written.
 * @param out Where the writes go, back to back from index 0.
 * @param sizes Receives each write's length.
 * @returns How many writes there are.
 * @throws {TypeError} If `packets` is not an array of Uint8Arrays or `out`
 *   not a Uint8Array.
 * @throws {RangeError} If the writes do not fit `out` or their count does
 *   not fit `sizes` (nothing is written then).
 */
export function groCoalesceInto(
  packets: Uint8Array[],
  out: Uint8Array,
  sizes: Uint32Array | number[],
): number {
  if (!(out instanceof Uint8Array)) throw new TypeError("out must be a Uint8Array");
  const outputs = coalesce(packets);
  let total = 0;
  for (let i = 0; i < outputs.length; i++) total += outputLength(outputs[i]);
  const count = outputs.length;
  if (total > out.length) {
    releaseOutputs();
    throw new RangeError(
      `Cannot coalesce packets: ${count} writes of ${total} bytes in all do not fit ${out.length} bytes`,
    );
  }
  if (count > sizes.length) {
    releaseOutputs();
    throw new RangeError(
      `Cannot coalesce packets: ${count} writes do not fit ${sizes.length} sizes`,
    );
  }
  let at = 0;
  for (let i = 0; i < count; i++) {
    const length = outputLength(outputs[i]);
    writeOutput(outputs[i], out, at);
    sizes[i] = length;
    at += length;
  }
  releaseOutputs();
  return count;
}

// The state of coalesce(), kept from call to call so that a call in a
// steady stream allocates nothing: the flow table, the group records (the
// first `groupsUsed` belong to the current call) and the outputs list.
const flows = new FlowTable();
const groupPool: Group[] = [];
let groupsUsed = 0;
const outputs: (Group | Uint8Array)[] = [];

/** A group record from the pool, holding `packet` alone. */
function startGroup(packet: Uint8Array, ip: IpLayout, headerLength: number): Group {
  let group = groupPool[groupsUsed];
  if (group === undefined) {
    group = { packets: [], ip: newLayout(), headerLength: 0, gsoSize: 0, length: 0 };
    groupPool.push(group);
  }
  groupsUsed++;
  group.packets.push(packet);
  setLayout(group.ip, ip.family, ip.transport, ip.protocol, ip.fragment);
  group.headerLength = headerLength;
  group.gsoSize = packet.length - headerLength;
  group.length = packet.length;
  return group;
}

/**
 * Ends a {@linkcode coalesce} call: the pooled records let go of the
 * caller's packets, so nothing outlives the call but the records.
 */
function releaseOutputs(): void {
  for (let i = 0; i < groupsUsed; i++) groupPool[i].packets.length = 0;
  groupsUsed = 0;
  outputs.length = 0;
  flows.clear();
}

/**
 * The grouping of {@linkcode groCoalesce}: each output a group to merge or
 * a packet alone, in a list that is valid until {@linkcode releaseOutputs}.
 */
function coalesce(packets: Uint8Array[]): (Group | Uint8Array)[] {
  if (!Array.isArray(packets)) throw new TypeError("Packets must be an array of Uint8Arrays");
  // A call that threw half way left its records behind.
  releaseOutputs();
  flows.reset(packets.length);
  for (let i = 0; i < packets.length; i++) {
    const packet = packets[i];
    if (!(packet instanceof Uint8Array)) {
      releaseOutputs();
      throw new TypeError("Packets must be an array of Uint8Arrays");
    }
    if (!inspect(packet)) {
      outputs.push(packet);
      continue;
    }
    const { ip, candidate, headerLength } = inspected;
    const slot = flows.slot(packet, ip);
    const group = flows.group(slot);
    if (candidate && group !== undefined && canAppend(group, packet, headerLength)) {
      group.packets.push(packet);
      group.length += packet.length - headerLength;
    } else if (candidate) {
      const started = startGroup(packet, ip, headerLength);
      outputs.push(started);
      flows.setGroup(slot, started);
    } else {
      // A later segment must not jump ahead of this one into an earlier group.
      flows.setGroup(slot, undefined);
      outputs.push(packet);
    }
  }
  return outputs;
}
