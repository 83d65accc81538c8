/**
 * Packets and fast-check generators for the segmentation offload tests:
 * TSO and USO super-packets as a device with offloads reads them, and
 * interleaved flows of segments for coalescing.
 *
 * @module
 */

import fc from "fast-check";
import {
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  internetChecksum,
  parsePacket,
  pseudoHeaderSum,
  type TcpFlags,
  transportChecksum,
  VirtioNetGsoType,
  type VirtioNetHeader,
  VirtioNetHeaderFlag,
} from "../../packet/mod.ts";
import { type AddressPair, addressPair, port, ttl, uint32 } from "./arbitraries.ts";

function read16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] << 8) | bytes[offset + 1];
}

function write16(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 8;
  bytes[offset + 1] = value;
}

/** Where a test packet's transport header is and what it carries. */
export interface TransportAt {
  /** Offset of the transport header. */
  transport: number;
  /** Its protocol (6 or 17). */
  protocol: number;
}

/** The transport header of a packet without IPv6 extension headers. */
export function transportOf(packet: Uint8Array): TransportAt {
  return packet[0] >> 4 === 4
    ? { transport: (packet[0] & 0x0f) * 4, protocol: packet[9] }
    : { transport: 40, protocol: packet[6] };
}

/**
 * Rewrites the IP lengths, the IPv4 header checksum, the UDP length and
 * the transport checksum of `packet` in place, after a test changed its
 * bytes. Checksums are computed with the package's own helpers.
 */
export function refresh(packet: Uint8Array, at: TransportAt = transportOf(packet)): Uint8Array {
  const v4 = packet[0] >> 4 === 4;
  const { transport, protocol } = at;
  if (v4) {
    write16(packet, 2, packet.length);
    write16(packet, 10, 0);
    write16(packet, 10, internetChecksum(packet.subarray(0, transport)));
  } else {
    write16(packet, 4, packet.length - 40);
  }
  const field = transport + (protocol === 17 ? 6 : 16);
  if (protocol === 17) write16(packet, transport + 4, packet.length - transport);
  write16(packet, field, 0);
  const addresses = v4 ? 12 : 8;
  const size = v4 ? 4 : 16;
  const checksum = transportChecksum({
    source: packet.subarray(addresses, addresses + size),
    destination: packet.subarray(addresses + size, addresses + 2 * size),
    protocol,
    segment: packet.subarray(transport),
  });
  write16(packet, field, protocol === 17 && checksum === 0 ? 0xffff : checksum);
  return packet;
}

/** A copy of an IPv4 packet with another identification, checksums fixed. */
export function withIdentification(packet: Uint8Array, identification: number): Uint8Array {
  const copy = packet.slice();
  write16(copy, 4, identification);
  return refresh(copy);
}

/** A copy of a TCP packet with `options` (a multiple of 4 bytes) added. */
export function withTcpOptions(packet: Uint8Array, options: Uint8Array): Uint8Array {
  const { transport } = transportOf(packet);
  const copy = new Uint8Array(packet.length + options.length);
  copy.set(packet.subarray(0, transport + 20));
  copy.set(options, transport + 20);
  copy.set(packet.subarray(transport + 20), transport + 20 + options.length);
  copy[transport + 12] = ((20 + options.length) / 4) << 4;
  return refresh(copy);
}

/** A copy of an IPv6 packet with an 8-byte hop-by-hop options header. */
export function withHopByHop(packet: Uint8Array): Uint8Array {
  const protocol = packet[6];
  const copy = new Uint8Array(packet.length + 8);
  copy.set(packet.subarray(0, 40));
  copy.set([protocol, 0, 1, 4, 0, 0, 0, 0], 40); // a PadN option fills it
  copy.set(packet.subarray(40), 48);
  copy[6] = 0;
  return refresh(copy, { transport: 48, protocol });
}

/** A copy of an IPv4 packet with 4 bytes of options (NOPs). */
export function withIpv4Options(packet: Uint8Array): Uint8Array {
  const copy = new Uint8Array(packet.length + 4);
  copy.set(packet.subarray(0, 20));
  copy.set([1, 1, 1, 1], 20);
  copy.set(packet.subarray(20), 24);
  copy[0] = 0x46;
  return refresh(copy, { transport: 24, protocol: packet[9] });
}

/** `length` bytes of a pattern that differs from one `seed` to another. */
export function patterned(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (seed + i * 31 + (i >> 8)) & 0xff;
  return bytes;
}

/**
 * Turns a whole packet into what a device with offloads reads: the
 * transport checksum field holds only the folded pseudo-header sum.
 */
export function partialChecksum(packet: Uint8Array, at: TransportAt = transportOf(packet)) {
  const v4 = packet[0] >> 4 === 4;
  const addresses = v4 ? 12 : 8;
  const size = v4 ? 4 : 16;
  let sum = pseudoHeaderSum({
    source: packet.subarray(addresses, addresses + size),
    destination: packet.subarray(addresses + size, addresses + 2 * size),
    protocol: at.protocol,
    length: packet.length - at.transport,
  });
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  const copy = packet.slice();
  write16(copy, at.transport + (at.protocol === 17 ? 6 : 16), sum);
  return copy;
}

/** The virtio-net header a device with offloads reads before `packet`. */
export function offloadHeader(
  packet: Uint8Array,
  gsoSize: number,
  at: TransportAt = transportOf(packet),
): VirtioNetHeader {
  const tcp = at.protocol === 6;
  const v4 = packet[0] >> 4 === 4;
  return {
    flags: VirtioNetHeaderFlag.NEEDS_CSUM,
    gsoType: tcp ? (v4 ? VirtioNetGsoType.TCPV4 : VirtioNetGsoType.TCPV6) : VirtioNetGsoType.UDP_L4,
    headerLength: at.transport + (tcp ? (packet[at.transport + 12] >> 4) * 4 : 8),
    gsoSize,
    checksumStart: at.transport,
    checksumOffset: tcp ? 16 : 6,
  };
}

/** A TSO or USO super-packet as read from a device, with what went into it. */
export interface SuperPacketCase {
  pair: AddressPair;
  /** The IP packet, its checksum field holding the pseudo-header sum. */
  packet: Uint8Array;
  header: VirtioNetHeader;
  /** The data it carries. */
  payload: Uint8Array;
  /** TCP flags it was built with (TCP only). */
  flags: Partial<TcpFlags>;
  /** First sequence number (TCP only). */
  sequence: number;
  /** IPv4 identification of the super-packet. */
  identification: number;
  /** Bytes of TCP options (TCP only). */
  optionsLength: number;
  mtu: number;
}

const tcpOptions = fc.constantFrom(
  new Uint8Array(0),
  new Uint8Array([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]), // NOP NOP timestamps
  new Uint8Array([1, 1, 1, 0]),
);

const dataFlags: fc.Arbitrary<Partial<TcpFlags>> = fc.record({
  ack: fc.boolean(),
  psh: fc.boolean(),
  fin: fc.boolean(),
  ece: fc.boolean(),
  cwr: fc.boolean(),
});

/** A sequence number, often close to wrapping around. */
const sequenceNumber = fc.oneof(uint32, fc.integer({ min: 0xffff0000, max: 0xffffffff }));

/**
 * A TSO (`protocol` 6) or USO (17) super-packet of up to 6000 data bytes,
 * and an MTU that a split can meet: for USO at least one datagram's size.
 */
export function superPacket(protocol: 6 | 17): fc.Arbitrary<SuperPacketCase> {
  return fc.record({
    pair: addressPair,
    sourcePort: port,
    destinationPort: port,
    sequence: sequenceNumber,
    acknowledgment: uint32,
    flags: dataFlags,
    options: tcpOptions,
    identification: port,
    hops: ttl,
    length: fc.integer({ min: 1, max: 6000 }),
    seed: fc.nat(255),
    gsoSize: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 2000 })),
    extraMtu: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 9000 })),
  }).map((input) => {
    const payload = patterned(input.length, input.seed);
    const common = {
      source: input.pair.source,
      destination: input.pair.destination,
      sourcePort: input.sourcePort,
      destinationPort: input.destinationPort,
      ttl: input.hops,
      payload,
    };
    let packet: Uint8Array = protocol === 6
      ? withTcpOptions(
        buildTcp({
          ...common,
          sequence: input.sequence,
          acknowledgment: input.acknowledgment,
          flags: input.flags,
        }),
        input.options,
      )
      : buildUdp(common);
    if (input.pair.family === 4) packet = withIdentification(packet, input.identification);
    const header = offloadHeader(packet, input.gsoSize);
    const smallest = protocol === 6
      ? header.headerLength + 1
      : header.headerLength + Math.min(input.gsoSize, input.length);
    return {
      pair: input.pair,
      packet: partialChecksum(packet),
      header,
      payload,
      flags: protocol === 6 ? input.flags : {},
      sequence: protocol === 6 ? input.sequence : 0,
      identification: input.pair.family === 4 ? input.identification : 0,
      optionsLength: protocol === 6 ? input.options.length : 0,
      mtu: smallest + input.extraMtu,
    };
  });
}

/** One step of generated traffic: which flow sends what next. */
interface Step {
  flow: number;
  kind: "segment" | "short" | "long" | "push" | "ack" | "gap" | "skip-id" | "ping";
}

const step: fc.Arbitrary<Step> = fc.record({
  flow: fc.nat(2),
  kind: fc.oneof(
    { arbitrary: fc.constant("segment" as const), weight: 40 },
    {
      arbitrary: fc.constantFrom("short", "long", "push", "ack", "gap", "skip-id", "ping"),
      weight: 6,
    },
  ),
});

/** A flow of the generated traffic. */
interface FlowSpec {
  pair: AddressPair;
  protocol: 6 | 17;
  sourcePort: number;
  destinationPort: number;
  size: number;
  sequence: number;
  identification: number;
}

const flowSpec: fc.Arbitrary<FlowSpec> = fc.record({
  pair: addressPair,
  protocol: fc.constantFrom(6 as const, 17 as const),
  sourcePort: port,
  destinationPort: port,
  size: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 100, max: 1500 })),
  sequence: sequenceNumber,
  identification: fc.oneof(port, fc.constant(0xfffe)),
});

/**
 * Interleaved packets of three flows (TCP or UDP, IPv4 or IPv6): mostly
 * full segments that can be merged, with smaller and larger ones, pushes,
 * pure acknowledgments, sequence gaps, skipped IPv4 identifications and
 * pings mixed in.
 */
export const traffic: fc.Arbitrary<Uint8Array[]> = fc.record({
  flows: fc.array(flowSpec, { minLength: 3, maxLength: 3 }),
  steps: fc.array(step, { maxLength: 80, size: "medium" }),
  seed: fc.nat(255),
}).map(({ flows, steps, seed }) => {
  const state = flows.map((flow) => ({ ...flow }));
  return steps.map(({ flow, kind }, index) => {
    const spec = state[flow];
    if (kind === "ping") {
      return buildIcmpEcho({
        source: spec.pair.source,
        destination: spec.pair.destination,
        identifier: flow,
        sequence: index,
      });
    }
    if (kind === "gap") spec.sequence = (spec.sequence + 7) >>> 0;
    if (kind === "skip-id") spec.identification = (spec.identification + 2) & 0xffff;
    const size = kind === "short"
      ? Math.max(1, spec.size >> 1)
      : kind === "long"
      ? spec.size + 3
      : kind === "ack"
      ? 0
      : spec.size;
    const common = {
      source: spec.pair.source,
      destination: spec.pair.destination,
      sourcePort: spec.sourcePort,
      destinationPort: spec.destinationPort,
      payload: patterned(size, seed + index),
    };
    let packet: Uint8Array = spec.protocol === 6
      ? buildTcp({
        ...common,
        sequence: spec.sequence,
        acknowledgment: 1,
        flags: { ack: true, psh: kind === "push" },
      })
      : buildUdp(common);
    if (spec.pair.family === 4) packet = withIdentification(packet, spec.identification);
    spec.sequence = (spec.sequence + size) >>> 0;
    spec.identification = (spec.identification + 1) & 0xffff;
    return packet;
  });
});

/** A name for the flow of a packet: protocol, addresses and ports. */
export function flowOf(packet: Uint8Array): string {
  const parsed = parsePacket(packet, "ip");
  const ip = parsed.ipv4 ?? parsed.ipv6;
  const ports = parsed.tcp ?? parsed.udp;
  if (ip === undefined || ports === undefined) return "other";
  return `${
    parsed.tcp ? "tcp" : "udp"
  } ${ip.source}.${ports.sourcePort} > ${ip.destination}.${ports.destinationPort}`;
}

/** The length the IP header of a packet says the packet has. */
export function ipLength(packet: Uint8Array): number {
  return packet[0] >> 4 === 4 ? read16(packet, 2) : 40 + read16(packet, 4);
}
