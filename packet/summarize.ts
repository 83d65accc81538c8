/**
 * One-line descriptions of packets in the style of tcpdump, for logs and
 * debugging.
 *
 * @module
 */

import { formatIPv4At, formatIPv6At } from "./address.ts";
import { read16, read32 } from "./bytes.ts";
import { EtherType, IpProtocol } from "./constants.ts";
import { type LinkType, type ParsedPacket, parsePacket } from "./parse.ts";
import { describeIcmp, describeIcmp6, Truncated } from "./summarize_icmp.ts";
import { describeTcpOptions } from "./summarize_tcp_options.ts";

const ARP_OPERATIONS: Record<number, string> = {
  1: "Request",
  2: "Reply",
  3: "Reverse Request",
  4: "Reverse Reply",
  8: "Inverse Request", // RFC 2390
  9: "Inverse Reply",
  10: "NACK Reply", // ATM ARP
};

const ARP_HARDWARE: Record<number, string> = {
  1: "Ethernet",
  6: "TokenRing",
  7: "ArcNet",
  15: "FrameRelay",
  19: "ATM",
  23: "Strip",
  24: "IEEE 1394",
  32: "InfiniBand",
};

/** tcpdump's ARP protocol type for trailer encapsulation, printed like IPv4. */
const ETHERTYPE_TRAIL = 0x1000;

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
function describeTransport(packet: ParsedPacket, protocol: number, bytes: Uint8Array): string {
  const { udp, tcp, icmp, payload } = packet;
  // tcpdump prints the UDP header's length, which in a first fragment is
  // more than the fragment holds.
  if (udp) return `UDP, length ${udp.length - 8}`;
  if (tcp) {
    let flags = "";
    for (const [name, letter] of TCP_FLAG_LETTERS) {
      if (tcp.flags[name]) flags += letter;
    }
    const length = payload.length;
    // Like tcpdump -S: absolute numbers, the range a segment covers, and
    // no sequence number at all on an empty segment that uses none.
    const { fin, syn, rst } = tcp.flags;
    const sequence = length > 0
      ? `, seq ${tcp.sequence}:${(tcp.sequence + length) % 0x100000000}`
      : fin || syn || rst
      ? `, seq ${tcp.sequence}`
      : "";
    const ack = tcp.flags.ack ? `, ack ${tcp.acknowledgment}` : "";
    const urgent = tcp.flags.urg ? `, urg ${read16(bytes, tcp.offset + 18)}` : "";
    const line = `Flags [${flags || "none"}]${sequence}${ack}, win ${tcp.window}${urgent}`;
    if (tcp.headerLength === 20) return `${line}, length ${length}`;
    const options = describeTcpOptions(bytes, tcp);
    return `${line}, options [${options.text}${options.endsLine ? "" : `, length ${length}`}`;
  }
  if (icmp) {
    const end = packet.payloadOffset + payload.length;
    if (icmp.version === 6) return describeIcmp6(bytes, icmp, end);
    try {
      return describeIcmp(bytes, icmp, end);
    } catch (error) {
      // tcpdump has printed nothing of the ICMP message when it runs out.
      if (error instanceof Truncated) return " [|icmp]";
      throw error;
    }
  }
  return `ip-proto-${protocol}, length ${payload.length}`;
}

/**
 * What tcpdump prints of an IPv6 packet's extension headers before the
 * transport, each in its own words ("frag (offset|length) " for a
 * Fragment header), and whether it stops there: it describes nothing past
 * the Fragment header of a later fragment.
 */
function describeExtensionHeaders(
  bytes: Uint8Array,
  packet: ParsedPacket,
): { text: string; ends: boolean } {
  const ipv6 = packet.ipv6!;
  const stop = ipv6.offset + 40 + ipv6.payloadLength;
  let text = "";
  let nextHeader = bytes[ipv6.offset + 6];
  let cursor = ipv6.offset + 40;
  while (cursor < ipv6.offset + ipv6.headerLength) {
    if (nextHeader === IpProtocol.FRAGMENT) {
      const offset = read16(bytes, cursor + 2) & 0xfff8;
      text += `frag (${offset}|${stop - cursor - 8})`;
      if (offset !== 0) return { text, ends: true };
      text += " ";
      nextHeader = bytes[cursor];
      cursor += 8;
      continue;
    }
    if (nextHeader === IpProtocol.ROUTING) {
      const routing = describeRoutingHeader(bytes, cursor);
      text += routing.text;
      if (routing.ends) return { text, ends: true };
    } else {
      // tcpdump names hop-by-hop and destination options headers; of the
      // options in them it describes only a few unusual ones, and not these.
      text += nextHeader === IpProtocol.HOP_BY_HOP ? "HBH " : "DSTOPT ";
    }
    nextHeader = bytes[cursor];
    cursor += (bytes[cursor + 1] + 1) * 8;
  }
  return { text, ends: false };
}

/** A routing header as tcpdump's rt6_print describes it, and whether it stops there. */
function describeRoutingHeader(bytes: Uint8Array, at: number): { text: string; ends: boolean } {
  const length = bytes[at + 1];
  const type = bytes[at + 2];
  let text = `RT6 (len=${length}, type=${type}${type === 0 ? " [Deprecated]" : ""}, segleft=${
    bytes[at + 3]
  }`;
  if (type === 0 || type === 2) {
    const reserved = read32(bytes, at + 4);
    if (reserved !== 0) text += `, rsv=0x${reserved.toString(16)}`;
  } else if (type === 4) {
    // A segment routing header (RFC 8754).
    text += `, last-entry=${bytes[at + 4]}`;
    if (bytes[at + 5] !== 0) text += `, flags=0x${bytes[at + 5].toString(16)}`;
    text += `, tag=${read16(bytes, at + 6).toString(16)}`;
  } else {
    return { text: `${text} (unknown type) (invalid)`, ends: true };
  }
  if (length % 2 === 1) return { text: `${text} (invalid length ${length}) (invalid)`, ends: true };
  for (let i = 0; i < length / 2; i++) text += `, [${i}]${formatIPv6At(bytes, at + 8 + 16 * i)}`;
  return { text: `${text}) `, ends: false };
}

function describe(packet: ParsedPacket, bytes: Uint8Array): string {
  const { ethernet, arp, ipv4, ipv6 } = packet;
  const vlan = ethernet?.vlan !== undefined ? `vlan ${ethernet.vlan}, ` : "";
  if (ipv4) {
    const { source, destination, protocol } = ipv4;
    // A later fragment has no transport header: tcpdump names only the protocol.
    if (ipv4.fragmentOffset !== 0) {
      return `${vlan}IP ${source} > ${destination}: ip-proto-${protocol}`;
    }
    const ports = packet.udp ?? packet.tcp;
    const addresses = ports
      ? `${source}.${ports.sourcePort} > ${destination}.${ports.destinationPort}`
      : `${source} > ${destination}`;
    return `${vlan}IP ${addresses}: ${describeTransport(packet, protocol, bytes)}`;
  }
  if (ipv6) {
    const { source, destination, nextHeader } = ipv6;
    const ports = packet.udp ?? packet.tcp;
    if (ipv6.headerLength === 40) {
      const addresses = ports
        ? `${source}.${ports.sourcePort} > ${destination}.${ports.destinationPort}`
        : `${source} > ${destination}`;
      return `${vlan}IP6 ${addresses}: ${describeTransport(packet, nextHeader, bytes)}`;
    }
    // After extension headers tcpdump gives the ports on their own.
    const headers = describeExtensionHeaders(bytes, packet);
    const line = `${vlan}IP6 ${source} > ${destination}: ${headers.text}`;
    if (headers.ends) return line;
    const ports6 = ports ? `${ports.sourcePort} > ${ports.destinationPort}: ` : "";
    return `${line}${ports6}${describeTransport(packet, nextHeader, bytes)}`;
  }
  if (ethernet?.length !== undefined) return `${vlan}802.3, length ${ethernet.length}`;
  const linkPayload = bytes.length - (ethernet?.vlan !== undefined ? 18 : 14);
  if (arp || ethernet?.etherType === EtherType.ARP) {
    const what = describeArp(bytes, bytes.length - linkPayload);
    // tcpdump checks the addresses are there before it prints anything.
    if (what === undefined) return `${vlan} [|arp]`;
    return `${vlan}ARP, ${what}, length ${linkPayload}`;
  }
  // Without IP or ARP, parsePacket only returns for Ethernet frames.
  const etherType = ethernet ? ethernet.etherType : 0;
  return `${vlan}ethertype ${hex16(etherType)}, length ${bytes.length}`;
}

function linkAddress(bytes: Uint8Array, start: number, length: number): string {
  const parts: string[] = [];
  for (let i = start; i < start + length; i++) parts.push(bytes[i].toString(16).padStart(2, "0"));
  return parts.join(":");
}

/** An ARP message as tcpdump's arp_print describes it, without -v. */
function describeArp(bytes: Uint8Array, at: number): string | undefined {
  if (bytes.length - at < 8) return undefined;
  const hardware = read16(bytes, at);
  const protocol = read16(bytes, at + 2);
  const hardwareLength = bytes[at + 4];
  const protocolLength = bytes[at + 5];
  const operation = read16(bytes, at + 6);
  const senderMac = at + 8;
  const senderIp = senderMac + hardwareLength;
  const targetMac = senderIp + protocolLength;
  const targetIp = targetMac + hardwareLength;
  if (targetIp + protocolLength > bytes.length) return undefined;
  if (
    (protocol !== EtherType.IPV4 && protocol !== ETHERTYPE_TRAIL) || protocolLength !== 4 ||
    hardwareLength === 0
  ) {
    const hardwareName = ARP_HARDWARE[hardware] ?? `Unknown Hardware (${hardware})`;
    // The few of tcpdump's EtherType names an ARP message is likely to carry.
    const protocolName = protocol === EtherType.IPV4
      ? "IPv4"
      : protocol === EtherType.IPV6
      ? "IPv6"
      : protocol === ETHERTYPE_TRAIL
      ? "Trail"
      : `Unknown Protocol (${hex16(protocol)})`;
    return `${hardwareName} (len ${hardwareLength}), ${protocolName} (len ${protocolLength})`;
  }
  const name = ARP_OPERATIONS[operation] ?? `Unknown (${operation})`;
  const mac = (start: number) => linkAddress(bytes, start, hardwareLength);
  switch (operation) {
    case 1: {
      const asked = bytes.subarray(targetMac, targetMac + hardwareLength).some((b) => b !== 0)
        ? ` (${mac(targetMac)})`
        : "";
      return `${name} who-has ${formatIPv4At(bytes, targetIp)}${asked} tell ${
        formatIPv4At(bytes, senderIp)
      }`;
    }
    case 2:
      return `${name} ${formatIPv4At(bytes, senderIp)} is-at ${mac(senderMac)}`;
    case 3:
    case 8:
      return `${name} who-is ${mac(targetMac)} tell ${mac(senderMac)}`;
    case 4:
      return `${name} ${mac(targetMac)} at ${formatIPv4At(bytes, targetIp)}`;
    case 9:
      return `${name} ${mac(senderMac)} at ${formatIPv4At(bytes, senderIp)}`;
    default:
      // tcpdump follows with a hex dump of the message on lines of its own.
      return `${name}`;
  }
}

/**
 * Describes a packet in one line, in the spirit of tcpdump's output: the
 * network layer's addresses (with ports for TCP and UDP) and the transport's
 * main fields. It never throws on bad packet bytes: a packet that
 * {@linkcode parsePacket} rejects is described as `malformed: ` followed by
 * the parser's message.
 *
 * The lines are what `tcpdump -n -S -t` (4.99, no `-v`) prints for TCP
 * (options included: `options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7]`,
 * MD5 signatures as tcpdump shows them without a `-M` secret, MPTCP by
 * subtype), UDP (the header's length, so a first fragment says how long the
 * whole datagram is), ICMP and ICMPv6 echo, errors (by what they quote:
 * `ICMP 192.0.2.1 udp port 53 unreachable, length 36`) and neighbour and
 * router discovery (`ICMP6, neighbor solicitation, who has 2001:db8::1,
 * length 32`), IPv4 fragments (a later one as `ip-proto-17`), IPv6
 * fragment, routing, hop-by-hop and destination options headers (`frag
 * (1232|76)`), and ARP messages, short of the application protocols tcpdump
 * decodes on well-known ports and of the hex dumps it adds on lines of
 * their own (ARP operations and ICMPv6 unreachable codes it has no words
 * for). Lengths are those tcpdump prints: UDP and TCP data bytes, the
 * whole ICMP message, the ARP message with any padding, the length field
 * of an 802.3 frame (`802.3, length 38`, as `tcpdump -e` says), or the
 * whole frame for other EtherTypes. Unlike tcpdump without `-e`, a tagged
 * frame's line starts with `vlan N, `.
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
