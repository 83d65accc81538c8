/**
 * fast-check generators for comparing `summarize` with tcpdump: fragments,
 * ICMP errors, neighbour discovery and ARP messages of every layout
 * tcpdump prints on one line.
 *
 * @module
 */

import fc from "fast-check";
import {
  buildEthernet,
  buildIcmpEcho,
  buildIcmpError,
  buildIPv4,
  buildNeighborAdvertisement,
  buildNeighborSolicitation,
  buildRouterAdvertisement,
  buildRouterSolicitation,
  buildTcp,
  buildUdp,
  EtherType,
  formatIp,
  fragment,
} from "../../packet/mod.ts";
import { macBytes, tcpFlags, uint32 } from "./arbitraries.ts";

// Ports in a range tcpdump decodes no application protocol on.
const quietPort = fc.integer({ min: 50000, max: 50999 });

/**
 * A unicast address in the documentation ranges (an ICMP error answers
 * none other): IPv4 in 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 or
 * 198.18.0.0/15, IPv6 in 2001:db8::/32.
 */
const address = (family: 4 | 6): fc.Arbitrary<string> =>
  family === 4
    ? fc.tuple(
      fc.constantFrom([192, 0, 2], [198, 51, 100], [203, 0, 113], [198, 18], [198, 19]),
      fc.uint8Array({ minLength: 2, maxLength: 2 }),
    ).map(([prefix, host]) => formatIp(Uint8Array.of(...prefix, ...host).subarray(0, 4)))
    : fc.uint8Array({ minLength: 12, maxLength: 12 }).map((tail) =>
      formatIp(Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, ...tail))
    );

/** Data of `min..max` bytes; its contents do not show in a summary. */
const data = (min: number, max: number) =>
  fc.integer({ min, max }).map((length) => new Uint8Array(length).fill(0xa5));

/** A UDP, TCP or ICMP echo packet of `family` whose ports tcpdump decodes nothing on. */
const transportPacket = (
  family: 4 | 6,
  payload: fc.Arbitrary<Uint8Array>,
): fc.Arbitrary<Uint8Array> => {
  const ends = { source: address(family), destination: address(family), payload };
  return fc.oneof(
    fc.record({ ...ends, sourcePort: quietPort, destinationPort: quietPort }).map(buildUdp),
    fc.record({
      ...ends,
      sourcePort: quietPort,
      destinationPort: quietPort,
      sequence: uint32,
      acknowledgment: uint32,
      flags: tcpFlags,
    }).map(buildTcp),
    fc.record({
      ...ends,
      identifier: fc.integer({ min: 0, max: 0xffff }),
      sequence: fc.integer({ min: 0, max: 0xffff }),
      reply: fc.boolean(),
    }).map(buildIcmpEcho),
  );
};

/**
 * The fragments of an IPv4 datagram (allowed to fragment) or of an IPv6
 * packet, in order. MTUs leave the first IPv4 fragment room for a whole
 * TCP header, which tcpdump would otherwise print cut short.
 */
export const fragments: fc.Arbitrary<Uint8Array[]> = fc.oneof(
  fc.record({
    packet: transportPacket(4, data(0, 400)),
    identification: fc.integer({ min: 0, max: 0xffff }),
    mtu: fc.integer({ min: 96, max: 300 }),
  }).map(({ packet, identification, mtu }) => {
    const datagram = buildIPv4({
      source: packet.subarray(12, 16),
      destination: packet.subarray(16, 20),
      protocol: packet[9],
      identification,
      dontFragment: false,
      payload: packet.subarray(20),
    });
    return fragment(datagram, mtu);
  }),
  fc.record({
    packet: transportPacket(6, data(1200, 3000)),
    identification: uint32,
    mtu: fc.integer({ min: 1280, max: 1500 }),
  }).map(({ packet, identification, mtu }) => fragment(packet, mtu, { identification })),
);

/** Codes of the errors whose tcpdump line is one line (ICMPv6 unreachable 5..8 add a hex dump). */
const errorOptions = (family: 4 | 6) =>
  family === 4
    ? fc.oneof(
      fc.record({
        type: fc.constant("destination-unreachable" as const),
        code: fc.integer({ min: 0, max: 15 }).filter((code) => code !== 4),
      }),
      fc.record({
        type: fc.constant("fragmentation-needed" as const),
        mtu: fc.integer({ min: 68, max: 65535 }),
      }),
      fc.record({ type: fc.constant("time-exceeded" as const), code: fc.constantFrom(0, 1) }),
    )
    : fc.oneof(
      fc.record({
        type: fc.constant("destination-unreachable" as const),
        code: fc.integer({ min: 0, max: 4 }),
      }),
      fc.record({
        type: fc.constant("packet-too-big" as const),
        mtu: fc.integer({ min: 1280, max: 0xffffffff }),
      }),
      fc.record({ type: fc.constant("time-exceeded" as const), code: fc.constantFrom(0, 1) }),
    );

/**
 * An ICMP or ICMPv6 error from buildIcmpError, quoting a UDP, TCP or echo
 * packet, or (IPv4) some other protocol, cut to the family's limit when long.
 */
export const icmpError: fc.Arbitrary<Uint8Array> = fc.constantFrom<4 | 6>(4, 6).chain((family) =>
  fc.record({
    offending: family === 4
      ? fc.oneof(
        transportPacket(4, data(0, 700)),
        fc.record({
          source: address(4),
          destination: address(4),
          protocol: fc.constantFrom(253, 254),
          payload: data(0, 40),
        }).map(buildIPv4),
      )
      : transportPacket(6, data(0, 1400)),
    options: errorOptions(family),
    source: address(family),
  }).map(({ offending, options, source }) => buildIcmpError(offending, { ...options, source }))
);

const linkLocal = fc.uint8Array({ minLength: 8, maxLength: 8 }).map((tail) =>
  formatIp(Uint8Array.of(0xfe, 0x80, 0, 0, 0, 0, 0, 0, ...tail))
);
const maybeMac = fc.option(macBytes, { nil: undefined });

/** A neighbour or router solicitation or advertisement from the builders. */
export const neighborDiscovery: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.record({ source: address(6), target: address(6), sourceMac: maybeMac }).map(
    buildNeighborSolicitation,
  ),
  address(6).map((target) => buildNeighborSolicitation({ source: "::", target })),
  fc.record({
    source: address(6),
    destination: address(6),
    target: address(6),
    targetMac: macBytes,
    solicited: fc.boolean(),
    override: fc.boolean(),
    router: fc.boolean(),
  }).map(buildNeighborAdvertisement),
  fc.record({ source: linkLocal, sourceMac: maybeMac }).map(buildRouterSolicitation),
  fc.record({
    source: linkLocal,
    sourceMac: maybeMac,
    mtu: fc.option(fc.integer({ min: 1280, max: 9000 }), { nil: undefined }),
    prefixes: fc.array(
      fc.integer({ min: 0, max: 0xffff }).map((n) => ({
        prefix: `2001:db8:${n.toString(16)}::/64`,
      })),
      { maxLength: 2 },
    ),
    routerLifetime: fc.integer({ min: 0, max: 0xffff }),
    managed: fc.boolean(),
    other: fc.boolean(),
  }).map(buildRouterAdvertisement),
);

/**
 * An Ethernet frame carrying an ARP message of any hardware and protocol
 * type tcpdump prints plainly (not Frame Relay or ATM), with the
 * operations it has words for, and maybe link padding.
 */
export const arpFrame: fc.Arbitrary<Uint8Array> = fc.record({
  hardware: fc.constantFrom(1, 1, 6, 7, 23, 24, 32, 99),
  protocol: fc.constantFrom(EtherType.IPV4, EtherType.IPV4, 0x1000, EtherType.IPV6, 0x1234),
  hardwareLength: fc.constantFrom(6, 6, 0, 8),
  protocolLength: fc.constantFrom(4, 4, 16),
  operation: fc.constantFrom(1, 2, 3, 4, 8, 9),
  zeroTargetMac: fc.boolean(),
  addresses: fc.uint8Array({ minLength: 48, maxLength: 48 }),
  padding: fc.integer({ min: 0, max: 18 }),
  source: macBytes,
}).map((arp) => {
  const { hardwareLength: h, protocolLength: p } = arp;
  const body = new Uint8Array(8 + 2 * h + 2 * p + arp.padding);
  body.set([arp.hardware >> 8, arp.hardware & 0xff, arp.protocol >> 8, arp.protocol & 0xff, h, p]);
  body.set([arp.operation >> 8, arp.operation & 0xff], 6);
  body.set(arp.addresses.subarray(0, 2 * h + 2 * p), 8);
  if (arp.zeroTargetMac) body.fill(0, 8 + h + p, 8 + 2 * h + p);
  return buildEthernet({
    destination: "ff:ff:ff:ff:ff:ff",
    source: arp.source,
    etherType: EtherType.ARP,
    payload: body,
  });
});
