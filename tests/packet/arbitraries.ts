/**
 * fast-check generators shared by the packet tests.
 *
 * @module
 */

import fc from "fast-check";
import {
  buildArp,
  buildEthernet,
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  EtherType,
  formatIp,
  type TcpFlags,
} from "../../packet/mod.ts";

/** Any 4-byte IPv4 address. */
export const ipv4Bytes: fc.Arbitrary<Uint8Array> = fc.uint8Array({
  minLength: 4,
  maxLength: 4,
});

// Zero words are made common so that `::` compression has runs to find.
const word = fc.oneof(
  fc.constant(0),
  fc.constant(0),
  fc.integer({ min: 0, max: 0xffff }),
);

/** A 16-byte IPv6 address, often with runs of zero groups. */
export const ipv6Bytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.array(word, { minLength: 8, maxLength: 8 }).map((words) => {
    const bytes = new Uint8Array(16);
    words.forEach((value, i) => {
      bytes[2 * i] = value >> 8;
      bytes[2 * i + 1] = value & 0xff;
    });
    return bytes;
  }),
  ipv4Bytes.map((v4) => {
    const bytes = new Uint8Array(16);
    bytes[10] = bytes[11] = 0xff;
    bytes.set(v4, 12);
    return bytes;
  }),
);

/** A source and destination of one family, as text and as bytes. */
export interface AddressPair {
  source: string;
  destination: string;
  sourceBytes: Uint8Array;
  destinationBytes: Uint8Array;
  family: 4 | 6;
}

/** Two addresses of the same, random, family. */
export const addressPair: fc.Arbitrary<AddressPair> = fc
  .oneof(fc.tuple(ipv4Bytes, ipv4Bytes), fc.tuple(ipv6Bytes, ipv6Bytes))
  .map(([sourceBytes, destinationBytes]) => ({
    source: formatIp(sourceBytes),
    destination: formatIp(destinationBytes),
    sourceBytes,
    destinationBytes,
    family: sourceBytes.length === 4 ? 4 : 6,
  }));

/** A port number. */
export const port: fc.Arbitrary<number> = fc.integer({ min: 0, max: 0xffff });

/** Packet data of modest size. */
export const payload: fc.Arbitrary<Uint8Array> = fc.uint8Array({
  maxLength: 96,
});

/** A valid TTL or hop limit. */
export const ttl: fc.Arbitrary<number> = fc.integer({ min: 1, max: 255 });

/** A 32-bit sequence or acknowledgment number. */
export const uint32: fc.Arbitrary<number> = fc.integer({
  min: 0,
  max: 0xffffffff,
});

/** TCP control bits, each set, clear or left out. */
export const tcpFlags: fc.Arbitrary<Partial<TcpFlags>> = fc.record(
  {
    fin: fc.boolean(),
    syn: fc.boolean(),
    rst: fc.boolean(),
    psh: fc.boolean(),
    ack: fc.boolean(),
    urg: fc.boolean(),
    ece: fc.boolean(),
    cwr: fc.boolean(),
  },
  { requiredKeys: [] },
);

/** A MAC address as bytes. */
export const macBytes: fc.Arbitrary<Uint8Array> = fc.uint8Array({
  minLength: 6,
  maxLength: 6,
});

/** Some valid IP packet from one of the IP builders. */
export const ipPacket: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.record({ pair: addressPair, s: port, d: port, data: payload }).map((
    { pair, s, d, data },
  ) =>
    buildUdp({
      source: pair.source,
      destination: pair.destination,
      sourcePort: s,
      destinationPort: d,
      payload: data,
    })
  ),
  fc.record({ pair: addressPair, s: port, d: port, seq: uint32, data: payload })
    .map(({ pair, s, d, seq, data }) =>
      buildTcp({
        source: pair.source,
        destination: pair.destination,
        sourcePort: s,
        destinationPort: d,
        sequence: seq,
        acknowledgment: (seq ^ 0x5a5a) >>> 0,
        flags: { ack: true, psh: data.length > 0 },
        payload: data,
      })
    ),
  fc.record({ pair: addressPair, id: port, seq: port, data: payload }).map((
    { pair, id, seq, data },
  ) =>
    buildIcmpEcho({
      source: pair.source,
      destination: pair.destination,
      identifier: id,
      sequence: seq,
      payload: data,
    })
  ),
);

/** Some valid Ethernet frame: an IP packet (maybe VLAN tagged) or ARP. */
export const ethernetFrame: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.record({
    packet: ipPacket,
    vlan: fc.option(fc.integer({ min: 0, max: 4095 }), { nil: undefined }),
    destination: macBytes,
    source: macBytes,
  }).map(({ packet, vlan, destination, source }) =>
    buildEthernet({
      destination,
      source,
      etherType: packet[0] >> 4 === 4 ? EtherType.IPV4 : EtherType.IPV6,
      payload: packet,
      vlan,
    })
  ),
  fc.record({
    operation: fc.constantFrom(1 as const, 2 as const),
    senderMac: macBytes,
    senderIp: ipv4Bytes,
    targetMac: macBytes,
    targetIp: ipv4Bytes,
  }).map((arp) =>
    buildEthernet({
      destination: "ff:ff:ff:ff:ff:ff",
      source: arp.senderMac,
      etherType: EtherType.ARP,
      payload: buildArp(arp),
    })
  ),
);
