/**
 * One-line descriptions of packets in the style of tcpdump, for logs and
 * debugging.
 *
 * @module
 */

import { read16, read32 } from "./bytes.ts";
import { EtherType } from "./constants.ts";
import { type LinkType, type ParsedPacket, parsePacket, type TcpLayer } from "./parse.ts";

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

// Options of a fixed size (after kind and length) that tcpdump decodes.
const TCP_FIXED_OPTIONS: Record<number, readonly [name: string, size: number]> = {
  2: ["mss", 2],
  3: ["wscale", 1],
  4: ["sackOK", 0],
  6: ["echo", 4], // RFC 1072
  7: ["echoreply", 4],
  8: ["TS", 8],
  11: ["cc", 4], // RFC 1644
  12: ["ccnew", 4],
  13: ["", 4], // CC.ECHO: tcpdump's table has an empty name for it
};

/** A TCP fast open cookie or cookie request, as tcpdump prints it. */
function describeFastOpen(bytes: Uint8Array, start: number, length: number): string {
  if (length === 0) return " cookiereq";
  if (length % 2 !== 0 || length < 4 || length > 16) return " (invalid)";
  return ` cookie ${hex(bytes, start, length)}`;
}

function hex(bytes: Uint8Array, start: number, length: number): string {
  let text = "";
  for (let i = start; i < start + length; i++) text += bytes[i].toString(16).padStart(2, "0");
  return text;
}

/**
 * The TCP options as tcpdump prints them, `mss 1460,sackOK,...]`, or up
 * to `[bad opt]` where an option's length cannot be followed (and then
 * tcpdump ends the line there). The kinds
 * tcpdump decodes into fields of their own besides these (MD5 signature,
 * SCPS, user timeout, TCP-AO, MPTCP) are shown in its generic form
 * instead, `unknown-N 0x…`.
 */
function describeTcpOptions(
  bytes: Uint8Array,
  tcp: TcpLayer,
): { text: string; endsLine: boolean } {
  let text = "";
  let cursor = tcp.offset + 20;
  const end = tcp.offset + tcp.headerLength;
  // tcpdump ends the whole line where it cannot follow the options, with a
  // closing bracket only after a first option.
  const bad = (first: boolean) => ({ text: `${text}[bad opt]${first ? "" : "]"}`, endsLine: true });
  while (cursor < end) {
    const first = text === "";
    if (!first) text += ",";
    const kind = bytes[cursor];
    if (kind === 0) return { text: `${text}eol]`, endsLine: false }; // tcpdump stops at end-of-list
    if (kind === 1) {
      text += "nop";
      cursor++;
      continue;
    }
    // tcpdump reads a length byte past the header if the capture has one.
    if (cursor + 1 >= bytes.length) return { text: `${text} [|tcp]`, endsLine: true };
    const length = bytes[cursor + 1];
    if (length < 2 || cursor + length > end) return bad(first);
    const data = cursor + 2;
    const fixed = TCP_FIXED_OPTIONS[kind];
    if (fixed !== undefined) {
      const [name, size] = fixed;
      text += name;
      // Like tcpdump, read what the kind defines (even past a short length,
      // within the header) and step over that, not over what the length
      // says: the surplus bytes of an overlong option are read as options.
      if (end - data < size) return bad(first);
      if (size === 1) text += ` ${bytes[data]}`;
      else if (size === 2) text += ` ${read16(bytes, data)}`;
      else if (size === 4) text += ` ${read32(bytes, data)}`;
      else if (size === 8) text += ` val ${read32(bytes, data)} ecr ${read32(bytes, data + 4)}`;
      if (length !== 2 + size) text += `[len ${length}]`;
      cursor = data + size;
      continue;
    }
    const dataLength = length - 2;
    if (kind === 5) {
      if (dataLength % 8 !== 0 || dataLength === 0) {
        text += "sack invalid sack";
      } else {
        text += `sack ${dataLength / 8} `;
        for (let block = data; block < data + dataLength; block += 8) {
          text += `{${read32(bytes, block)}:${read32(bytes, block + 4)}}`;
        }
      }
    } else if (kind === 34) {
      text += `tfo ${describeFastOpen(bytes, data, dataLength)}`;
    } else if (kind === 254 && dataLength >= 2) {
      // RFC 6994 experiments: a 16-bit magic number, 0xf989 for fast open.
      const magic = read16(bytes, data);
      text += magic === 0xf989
        ? `exp-tfo${describeFastOpen(bytes, data + 2, dataLength - 2)}`
        : `exp-${magic.toString(16).padStart(4, "0")}`;
    } else {
      text += `unknown-${kind}`;
      if (dataLength > 0) text += ` 0x${hex(bytes, data, dataLength)}`;
    }
    cursor += length;
  }
  return { text: `${text}]`, endsLine: false };
}

function hex16(value: number): string {
  return `0x${value.toString(16).padStart(4, "0")}`;
}

/** The part after "IP a > b: ", for the transport the packet carries. */
function describeTransport(packet: ParsedPacket, protocol: number, bytes: Uint8Array): string {
  const { udp, tcp, icmp, payload } = packet;
  if (udp) return `UDP, length ${payload.length}`;
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
    const echo = icmp.identifier !== undefined
      ? `, id ${icmp.identifier}, seq ${icmp.sequence}`
      : "";
    if (icmp.version === 4) {
      const name = ICMP_TYPES[icmp.type] ?? `type ${icmp.type}`;
      const code = echo === "" && icmp.code !== 0 ? `, code ${icmp.code}` : "";
      return `ICMP ${name}${code}${echo}, length ${payload.length + 8}`;
    }
    const name = ICMPV6_TYPES[icmp.type] ?? `type ${icmp.type}`;
    if (echo !== "") return `ICMP6, ${name}${echo}, length ${payload.length + 8}`;
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
    const fragmentOffset = ipv4 ? ipv4.fragmentOffset : ipv6?.fragment?.offset ?? 0;
    const fragment = fragmentOffset !== 0 ? `fragment at offset ${fragmentOffset}, ` : "";
    return `${vlan}${name} ${from} > ${to}: ${fragment}${
      describeTransport(packet, protocol, bytes)
    }`;
  }
  if (ethernet?.length !== undefined) return `${vlan}802.3, length ${ethernet.length}`;
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
 * TCP, UDP and ICMP echo lines are what `tcpdump -n -S -t` (4.99) prints,
 * TCP options included (`options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7]`;
 * the MD5, SCPS, user timeout, TCP-AO and MPTCP options are shown in the
 * generic `unknown-N 0x…` form), short of the application protocols tcpdump
 * decodes on well-known ports. Lengths are those tcpdump prints: UDP and
 * TCP data bytes, the whole ICMP message, the ARP message with any
 * padding, the length field of an 802.3 frame (`802.3, length 38`, as
 * `tcpdump -e` says), or the whole frame for other EtherTypes.
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
