/**
 * Pure packet handling for TUN and TAP devices: address text forms,
 * Internet checksums, a bounds-checked parser, builders for complete
 * packets, tcpdump-style summaries, and pcap files. No dependencies and no
 * permissions needed, except file access for pcap files you open yourself.
 *
 * @example Answer a ping and record both packets
 * ```ts
 * import {
 *   buildIcmpEcho,
 *   icmpEchoReply,
 *   PcapWriter,
 *   summarize,
 * } from "@tuntap/tuntap/packet";
 *
 * const request = buildIcmpEcho({
 *   source: "192.0.2.1",
 *   destination: "192.0.2.2",
 *   identifier: 1,
 *   sequence: 2,
 *   payload: new Uint8Array(56),
 * });
 * const reply = icmpEchoReply(request);
 * console.log(summarize(reply, "ip"));
 * // IP 192.0.2.2 > 192.0.2.1: ICMP echo reply, id 1, seq 2, length 64
 *
 * const chunks: Uint8Array[] = [];
 * const writer = new PcapWriter(
 *   new WritableStream({ write: (chunk) => void chunks.push(chunk) }),
 *   { link: "ip" },
 * );
 * await writer.write(request);
 * await writer.write(reply);
 * await writer.close();
 * ```
 *
 * @module
 */

export {
  type Cidr,
  formatIp,
  formatMac,
  parseCidr,
  parseIp,
  parseIPv4,
  parseIPv6,
  parseMac,
} from "./address.ts";
export {
  internetChecksum,
  type PseudoHeaderOptions,
  pseudoHeaderSum,
  transportChecksum,
  type TransportChecksumOptions,
} from "./checksum.ts";
export { EtherType, IpProtocol } from "./constants.ts";
export {
  type ArpLayer,
  type EthernetLayer,
  type IcmpLayer,
  type IPv4Layer,
  type IPv6Fragment,
  type IPv6Layer,
  type LinkType,
  type ParsedPacket,
  parsePacket,
  type TcpFlags,
  type TcpLayer,
  type UdpLayer,
} from "./parse.ts";
export {
  type ArpOptions,
  buildArp,
  buildEthernet,
  buildIcmpEcho,
  buildIPv4,
  buildIPv6,
  buildTcp,
  buildUdp,
  type EthernetOptions,
  type IcmpEchoOptions,
  icmpEchoReply,
  type IpAddress,
  type IpPacketOptions,
  type IPv4Options,
  type IPv6Options,
  type MacAddress,
  type TcpOptions,
  type UdpOptions,
} from "./build.ts";
export { summarize } from "./summarize.ts";
export {
  type PcapHeader,
  type PcapPacketInfo,
  PcapReader,
  type PcapRecord,
  type PcapSink,
  type PcapSource,
  PcapWriter,
  type PcapWriterOptions,
  readPcap,
} from "./pcap.ts";
export {
  buildVirtioNetHeader,
  parseVirtioNetHeader,
  VIRTIO_NET_HDR_SIZE,
  VirtioNetGsoType,
  type VirtioNetHeader,
  VirtioNetHeaderFlag,
} from "./virtio_net.ts";
export {
  groCoalesce,
  groCoalesceInto,
  GSO_MAX_PACKET_SIZE,
  gsoSplit,
  gsoSplitInto,
} from "./gso.ts";
export {
  buildNeighborAdvertisement,
  buildNeighborSolicitation,
  buildRouterAdvertisement,
  buildRouterSolicitation,
  ipv6MulticastMac,
  type NeighborAdvertisementOptions,
  type NeighborSolicitationOptions,
  type RouterAdvertisementOptions,
  type RouterAdvertisementPrefix,
  type RouterSolicitationOptions,
} from "./neighbor_discovery.ts";
export { buildIcmpError, type IcmpErrorOptions, type IcmpErrorType } from "./icmp_error.ts";
export {
  type AddressRewrite,
  clampMss,
  decrementTtl,
  type PortRewrite,
  rewriteAddress,
  type RewriteOptions,
  rewritePort,
} from "./rewrite.ts";
export { fragment, type FragmentOptions } from "./fragment.ts";
export { Reassembler, type ReassemblerOptions, type ReassemblerStats } from "./reassembler.ts";
