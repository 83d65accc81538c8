/**
 * ICMP and ICMPv6 messages as tcpdump prints them for `summarize`:
 * the type and code tables, the headers an error quotes, and neighbour and
 * router discovery. Internal to the packet module; not exported from `mod.ts`.
 *
 * @module
 */

import { formatIPv4At, formatIPv6At } from "./address.ts";
import { read16, read32 } from "./bytes.ts";
import { IpProtocol } from "./constants.ts";
import type { IcmpLayer } from "./parse.ts";

// tcpdump's names of the ICMP types it has nothing more to say about.
const ICMP_TYPES: Record<number, string> = {
  0: "echo reply",
  4: "source quench",
  8: "echo request",
  10: "router solicitation",
  13: "time stamp request",
  14: "time stamp reply",
  15: "information request",
  16: "information reply",
  17: "address mask request",
};

// Destination unreachable codes 0..15, `%s` standing for the quoted destination.
const ICMP_UNREACHABLE: readonly string[] = [
  "net %s unreachable",
  "host %s unreachable",
  "", // protocol: its number follows
  "", // port: read from the quoted transport header
  "", // fragmentation needed: the MTU follows
  "%s unreachable - source route failed",
  "net %s unreachable - unknown",
  "host %s unreachable - unknown",
  "%s unreachable - source host isolated",
  "net %s unreachable - admin prohibited",
  "host %s unreachable - admin prohibited",
  "net %s unreachable - tos prohibited",
  "host %s unreachable - tos prohibited",
  "host %s unreachable - admin prohibited filter",
  "host %s unreachable - host precedence violation",
  "host %s unreachable - precedence cutoff",
];

const ICMP_REDIRECT: readonly string[] = [
  "redirect %s to net %s",
  "redirect %s to host %s",
  "redirect-tos %s to net %s",
  "redirect-tos %s to host %s",
];

const ICMPV6_TYPES: Record<number, string> = {
  1: "destination unreachable",
  2: "packet too big",
  3: "time exceeded in-transit",
  4: "parameter problem",
  128: "echo request",
  129: "echo reply",
  130: "multicast listener query",
  131: "multicast listener report",
  132: "multicast listener done",
  133: "router solicitation",
  134: "router advertisement",
  135: "neighbor solicitation",
  136: "neighbor advertisement",
  137: "redirect",
  138: "router renumbering",
  141: "inverse neighbor solicitation",
  142: "inverse neighbor advertisement",
  143: "multicast listener report v2",
  144: "ha discovery request",
  145: "ha discovery reply",
  146: "mobile router solicitation",
  147: "mobile router advertisement",
  139: "who-are-you request", // tcpdump's table names 139 and 140 twice; this comes first
  140: "who-are-you reply",
  200: "mtrace response",
  201: "mtrace message",
  155: "RPL",
};

// The leading space of code 1 is tcpdump's.
const ICMPV6_UNREACHABLE: readonly string[] = [
  "unreachable route",
  " unreachable prohibited",
  "beyond scope",
  "unreachable address",
  "unreachable port",
];

const ICMPV6_PARAMETER_PROBLEM: readonly string[] = [
  "erroneous",
  "next header",
  "option",
  "incomplete header chain",
];

/** What tcpdump prints where the bytes it needs end before the message does. */
export class Truncated extends Error {}

/** Fails with {@linkcode Truncated} unless `bytes[start, start + count)` is within `end`. */
function need(start: number, count: number, end: number): void {
  if (start + count > end) throw new Truncated();
}

/** An address of the packet an ICMP error quotes, checked to be there. */
function quotedIPv4(bytes: Uint8Array, at: number, end: number): string {
  need(at, 4, end);
  return formatIPv4At(bytes, at);
}

function quotedIPv6(bytes: Uint8Array, at: number, end: number): string {
  need(at, 16, end);
  return formatIPv6At(bytes, at);
}

/** ICMPv4 as tcpdump's icmp_print describes it, without -v. */
export function describeIcmp(bytes: Uint8Array, icmp: IcmpLayer, end: number): string {
  const at = icmp.offset;
  const { type, code } = icmp;
  // The quoted IP header follows the 8-byte ICMP header.
  const quotedDestination = () => quotedIPv4(bytes, at + 24, end);
  let text: string;
  if (type === 0 || type === 8) {
    text = `echo ${type === 8 ? "request" : "reply"}, id ${icmp.identifier}, seq ${icmp.sequence}`;
  } else if (type === 3) {
    if (code === 2) {
      need(at + 17, 1, end);
      text = `${quotedDestination()} protocol ${bytes[at + 17]} unreachable`;
    } else if (code === 3) {
      need(at + 17, 1, end);
      const quotedTransport = at + 8 + (bytes[at + 8] & 0x0f) * 4;
      need(quotedTransport + 2, 2, end);
      const port = read16(bytes, quotedTransport + 2);
      const protocol = bytes[at + 17];
      const destination = quotedDestination();
      text = protocol === IpProtocol.TCP || protocol === IpProtocol.UDP
        ? `${destination} ${protocol === IpProtocol.TCP ? "tcp" : "udp"} port ${port} unreachable`
        : `${destination} protocol ${protocol} port ${port} unreachable`;
    } else if (code === 4) {
      const mtu = read16(bytes, at + 6);
      text = `${quotedDestination()} unreachable - need to frag${mtu ? ` (mtu ${mtu})` : ""}`;
    } else {
      const form = ICMP_UNREACHABLE[code] ?? `%s unreachable - #${code}`;
      text = form.replace("%s", quotedDestination());
    }
  } else if (type === 5) {
    const form = ICMP_REDIRECT[code] ?? `redirect-#${code} %s to %s`;
    text = form.replace("%s", quotedDestination()).replace("%s", formatIPv4At(bytes, at + 4));
  } else if (type === 11) {
    quotedDestination();
    text = code === 0
      ? "time exceeded in-transit"
      : code === 1
      ? "ip reassembly time exceeded"
      : `time exceeded-#${code}`;
  } else if (type === 12) {
    text = code !== 0
      ? `parameter problem - code ${code}`
      : `parameter problem - octet ${bytes[at + 4]}`;
  } else if (type === 13) {
    text = `time stamp query id ${read16(bytes, at + 4)} seq ${read16(bytes, at + 6)}`;
  } else if (type === 18) {
    need(at + 8, 4, end);
    text = `address mask is 0x${read32(bytes, at + 8).toString(16).padStart(8, "0")}`;
  } else {
    text = ICMP_TYPES[type] ?? `type-#${type}`;
  }
  return `ICMP ${text}, length ${end - at}`;
}

/** The transport header an ICMPv6 error quotes, found as tcpdump's get_upperlayer does. */
function quotedUpperLayer(
  bytes: Uint8Array,
  start: number,
  end: number,
): { protocol: number; port: number } {
  need(start + 6, 1, end);
  let nextHeader = bytes[start + 6];
  let cursor = start + 40;
  for (;;) {
    if (nextHeader === IpProtocol.TCP || nextHeader === IpProtocol.UDP) {
      need(cursor + 2, 2, end);
      return { protocol: nextHeader, port: read16(bytes, cursor + 2) };
    }
    if (
      nextHeader === IpProtocol.HOP_BY_HOP || nextHeader === IpProtocol.ROUTING ||
      nextHeader === IpProtocol.DESTINATION_OPTIONS
    ) {
      need(cursor, 2, end);
      nextHeader = bytes[cursor];
      cursor += (bytes[cursor + 1] + 1) * 8;
    } else if (nextHeader === IpProtocol.FRAGMENT) {
      need(cursor + 2, 2, end);
      if ((read16(bytes, cursor + 2) & 0xfff8) !== 0) throw new Truncated();
      nextHeader = bytes[cursor];
      cursor += 8;
    } else if (nextHeader === 51) {
      // Authentication header: its length counts 4-byte words, less 2.
      need(cursor, 2, end);
      nextHeader = bytes[cursor];
      cursor += (bytes[cursor + 1] + 2) * 4;
    } else {
      throw new Truncated();
    }
  }
}

/** ICMPv6 as tcpdump's icmp6_print describes it, without -v. */
export function describeIcmp6(bytes: Uint8Array, icmp: IcmpLayer, end: number): string {
  const at = icmp.offset;
  const { type, code } = icmp;
  const length = end - at;
  let text = `ICMP6, ${ICMPV6_TYPES[type] ?? `unknown icmp6 type (${type})`}`;
  const quoted = at + 8;
  try {
    if (type === 1) {
      text += `, ${ICMPV6_UNREACHABLE[code] ?? `unknown unreach code (${code})`}`;
      if (code === 0 || code === 1 || code === 3) {
        text += ` ${quotedIPv6(bytes, quoted + 24, end)}`;
      } else if (code === 2) {
        text += ` ${quotedIPv6(bytes, quoted + 24, end)}, source address ${
          quotedIPv6(bytes, quoted + 8, end)
        }`;
      } else if (code === 4) {
        const { protocol, port } = quotedUpperLayer(bytes, quoted, end);
        text += `, ${formatIPv6At(bytes, quoted + 24)} ${
          protocol === IpProtocol.TCP ? "tcp" : "udp"
        } port ${port}`;
      } else {
        // tcpdump follows with a hex dump of the message on lines of its own.
        return text;
      }
    } else if (type === 2) {
      text += `, mtu ${read32(bytes, at + 4)}`;
    } else if (type === 3) {
      text += code === 0
        ? ` for ${quotedIPv6(bytes, quoted + 24, end)}`
        : code === 1
        ? " (reassembly)"
        : `, unknown code (${code})`;
    } else if (type === 4) {
      quotedIPv6(bytes, quoted + 24, end);
      const name = ICMPV6_PARAMETER_PROBLEM[code];
      text += name !== undefined ? `, ${name} - octet ${read32(bytes, at + 4)}` : `, code-#${code}`;
    } else if (type === 128 || type === 129) {
      text += `, id ${icmp.identifier}, seq ${icmp.sequence}`;
    } else if (type === 135) {
      text += `, who has ${quotedIPv6(bytes, at + 8, end)}`;
    } else if (type === 136) {
      text += `, tgt is ${quotedIPv6(bytes, at + 8, end)}`;
    } else if (type === 137) {
      text += `, ${quotedIPv6(bytes, at + 8, end)} to ${quotedIPv6(bytes, at + 24, end)}`;
    }
  } catch (error) {
    if (error instanceof Truncated) return `${text} [|icmp6]`;
    throw error;
  }
  return `${text}, length ${length}`;
}
