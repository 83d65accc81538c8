/**
 * Protocol numbers that the parser, the builders and the summarizer share,
 * named so that code reads as the RFCs do.
 *
 * @module
 */

/**
 * EtherType values (IEEE 802 numbers) this package understands, for
 * {@linkcode buildEthernet} and for reading `ParsedPacket.ethernet`.
 *
 * @example Frame an IPv6 packet for a TAP device
 * ```ts
 * import { buildEthernet, EtherType } from "@tuntap/tuntap/packet";
 *
 * const frame = buildEthernet({
 *   destination: "33:33:00:00:00:01",
 *   source: "02:00:00:00:00:01",
 *   etherType: EtherType.IPV6,
 *   payload: new Uint8Array(40),
 * });
 * ```
 */
export const EtherType = {
  /** Internet Protocol version 4. */
  IPV4: 0x0800,
  /** Address Resolution Protocol. */
  ARP: 0x0806,
  /** IEEE 802.1Q VLAN tag. */
  VLAN: 0x8100,
  /** IEEE 802.1ad service VLAN tag (QinQ). */
  QINQ: 0x88a8,
  /** Internet Protocol version 6. */
  IPV6: 0x86dd,
} as const;

/**
 * IP protocol numbers (IANA "Assigned Internet Protocol Numbers") this
 * package understands, as they appear in `ParsedPacket.ipv4.protocol` and
 * `ParsedPacket.ipv6.nextHeader`.
 *
 * @example Pick out TCP packets
 * ```ts
 * import { IpProtocol, parsePacket } from "@tuntap/tuntap/packet";
 *
 * function isTcp(packet: Uint8Array): boolean {
 *   const { ipv4, ipv6 } = parsePacket(packet, "ip");
 *   return (ipv4?.protocol ?? ipv6?.nextHeader) === IpProtocol.TCP;
 * }
 * ```
 */
export const IpProtocol = {
  /** IPv6 hop-by-hop options extension header. */
  HOP_BY_HOP: 0,
  /** Internet Control Message Protocol (IPv4). */
  ICMP: 1,
  /** Transmission Control Protocol. */
  TCP: 6,
  /** User Datagram Protocol. */
  UDP: 17,
  /** IPv6 routing extension header. */
  ROUTING: 43,
  /** IPv6 fragment extension header. */
  FRAGMENT: 44,
  /** Internet Control Message Protocol for IPv6. */
  ICMPV6: 58,
  /** IPv6 "no next header". */
  NO_NEXT_HEADER: 59,
  /** IPv6 destination options extension header. */
  DESTINATION_OPTIONS: 60,
} as const;

/**
 * The name of `nextHeader` in messages when it is an IPv6 extension header
 * of the common layout (next header, then length in 8-byte units less
 * one): hop-by-hop options, routing or destination options; else
 * undefined. Internal: not exported from the package.
 */
export function optionsHeaderName(nextHeader: number): string | undefined {
  switch (nextHeader) {
    case IpProtocol.HOP_BY_HOP:
      return "IPv6 hop-by-hop options header";
    case IpProtocol.ROUTING:
      return "IPv6 routing header";
    case IpProtocol.DESTINATION_OPTIONS:
      return "IPv6 destination options header";
  }
  return undefined;
}
