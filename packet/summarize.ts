/**
 * One-line descriptions of packets in the style of tcpdump, for logs and
 * debugging.
 *
 * @module
 */

import { EtherType } from "./constants.ts";
import { type LinkType, type ParsedPacket, parsePacket } from "./parse.ts";

const ICMP_TYPES: Record<number, string> = {
  0: "echo reply",
  3: "destination unreachable",
  5: "redirect",
  8: "echo request",
  11: "time exceeded",
  12: "parameter problem",
};

const ICMPV6_TYPES: Record<number, string> = {
  1: "destination unreachable",
  2: "packet too big",
  3: "time exceeded",
  4: "parameter problem",
  128: "echo request",
  129: "echo reply",
  133: "router solicitation",
  134: "router advertisement",
  135: "neighbor solicitation",
  136: "neighbor advertisement",
  143: "multicast listener report v2",
};

// tcpdump's letters, in its order (lowest bit first); "." stands for ACK.
const TCP_FLAG_LETTERS = [
  ["fin", "F"],
  ["syn", "S"],
  ["rst", "R"],
  ["psh", "P"],
  ["ack", "."],
  ["urg", "U"],
  ["ece", "E"],
  ["cwr", "W"],
] as const;

function hex16(value: number): string {
  return `0x${value.toString(16).padStart(4, "0")}`;
}

/** The part after "IP a > b: ", for the transport the packet carries. */
function describeTransport(packet: ParsedPacket, protocol: number): string {
  const { udp, tcp, icmp, payload } = packet;
  if (udp) return `UDP, length ${payload.length}`;
  if (tcp) {
    let flags = "";
    for (const [name, letter] of TCP_FLAG_LETTERS) {
      if (tcp.flags[name]) flags += letter;
    }
    const length = payload.length;
    // Like tcpdump -S: absolute numbers, and the range a segment covers.
    const sequence = length === 0
      ? `${tcp.sequence}`
      : `${tcp.sequence}:${(tcp.sequence + length) % 0x100000000}`;
    const ack = tcp.flags.ack ? `, ack ${tcp.acknowledgment}` : "";
    return `Flags [${flags || "none"}], seq ${sequence}${ack}, win ${tcp.window}, length ${length}`;
  }
  if (icmp) {
    const echo = icmp.identifier !== undefined
      ? `, id ${icmp.identifier}, seq ${icmp.sequence}`
      : "";
    if (icmp.version === 4) {
      const name = ICMP_TYPES[icmp.type] ?? `type ${icmp.type}`;
      const code = echo === "" && icmp.code !== 0 ? `, code ${icmp.code}` : "";
      return `ICMP ${name}${code}${echo}, length ${payload.length + 8}`;
    }
    const name = ICMPV6_TYPES[icmp.type] ?? `type ${icmp.type}`;
    if (echo !== "") return `ICMP6, ${name}${echo}`;
    const code = icmp.code !== 0 ? `, code ${icmp.code}` : "";
    return `ICMP6, ${name}${code}, length ${payload.length + 8}`;
  }
  return `ip-proto-${protocol}, length ${payload.length}`;
}

function describe(packet: ParsedPacket, bytes: Uint8Array): string {
  const { ethernet, arp, ipv4, ipv6 } = packet;
  const vlan = ethernet?.vlan !== undefined ? `vlan ${ethernet.vlan}, ` : "";
  const ip = ipv4 ?? ipv6;
  if (ip) {
    const name = ipv4 ? "IP" : "IP6";
    const protocol = ipv4 ? ipv4.protocol : ipv6 ? ipv6.nextHeader : -1;
    const ports = packet.udp ?? packet.tcp;
    const from = ports ? `${ip.source}.${ports.sourcePort}` : ip.source;
    const to = ports ? `${ip.destination}.${ports.destinationPort}` : ip.destination;
    const fragment = ipv4 && ipv4.fragmentOffset !== 0
      ? `fragment at offset ${ipv4.fragmentOffset}, `
      : "";
    return `${vlan}${name} ${from} > ${to}: ${fragment}${describeTransport(packet, protocol)}`;
  }
  const linkPayload = bytes.length - (ethernet?.vlan !== undefined ? 18 : 14);
  if (arp) {
    const what = arp.operation === 1
      ? `Request who-has ${arp.targetIp} tell ${arp.senderIp}`
      : arp.operation === 2
      ? `Reply ${arp.senderIp} is-at ${arp.senderMac}`
      : `operation ${arp.operation}, sender ${arp.senderIp}, target ${arp.targetIp}`;
    return `${vlan}ARP, ${what}, length ${linkPayload}`;
  }
  if (ethernet?.etherType === EtherType.ARP) {
    return `${vlan}ARP, not IPv4 over Ethernet, length ${linkPayload}`;
  }
  // Without IP or ARP, parsePacket only returns for Ethernet frames.
  const etherType = ethernet ? ethernet.etherType : 0;
  return `${vlan}ethertype ${hex16(etherType)}, length ${bytes.length}`;
}

/**
 * Describes a packet in one line, in the spirit of tcpdump's output: the
 * network layer's addresses (with ports for TCP and UDP) and the transport's
 * main fields. It never throws on bad packet bytes: a packet that
 * {@linkcode parsePacket} rejects is described as `malformed: ` followed by
 * the parser's message.
 *
 * Lengths are those tcpdump prints: UDP and TCP data bytes, the whole ICMP
 * message, the ARP message with any padding, or the whole frame for other
 * EtherTypes. ICMPv6 echo lines end at the sequence number
 * (`ICMP6, echo request, id 7, seq 1`).
 *
 * @example Log the traffic of a TUN device
 * ```ts
 * import { buildUdp, summarize } from "@tuntap/tuntap/packet";
 *
 * const packet = buildUdp({
 *   source: "192.0.2.1",
 *   destination: "192.0.2.77",
 *   sourcePort: 40000,
 *   destinationPort: 5000,
 *   payload: new Uint8Array(10),
 * });
 * summarize(packet, "ip"); // "IP 192.0.2.1.40000 > 192.0.2.77.5000: UDP, length 10"
 * ```
 *
 * @param bytes The packet.
 * @param link What the packet starts with: an IP or an Ethernet header.
 * @returns The one-line summary.
 * @throws {TypeError} If `bytes` is not a Uint8Array or `link` is unknown.
 */
export function summarize(bytes: Uint8Array, link: LinkType): string {
  let packet: ParsedPacket;
  try {
    packet = parsePacket(bytes, link);
  } catch (error) {
    if (error instanceof RangeError) return `malformed: ${error.message}`;
    throw error;
  }
  return describe(packet, bytes);
}
