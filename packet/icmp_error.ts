/**
 * ICMP and ICMPv6 error messages, as a router or host sends them about a
 * packet it could not deliver, with the refusals RFC 1812 §4.3.2.7 and
 * RFC 4443 §2.4(e) require so that errors never answer errors or storms.
 *
 * @module
 */

import { formatIp } from "./address.ts";
import { write32 } from "./bytes.ts";
import { icmpPacket, type IpAddress } from "./build.ts";
import { addressOption, bytesArgument, integerOption, optionsObject } from "./options.ts";
import { parsePacket } from "./parse.ts";

/**
 * What went wrong, which picks the ICMP type:
 * - `"destination-unreachable"`: ICMPv4 type 3 or ICMPv6 type 1.
 * - `"fragmentation-needed"`: ICMPv4 type 3 code 4 with the next-hop MTU
 *   (RFC 1191); IPv4 only.
 * - `"packet-too-big"`: ICMPv6 type 2 with the MTU (RFC 8201); IPv6 only.
 * - `"time-exceeded"`: ICMPv4 type 11 or ICMPv6 type 3.
 */
export type IcmpErrorType =
  | "destination-unreachable"
  | "fragmentation-needed"
  | "time-exceeded"
  | "packet-too-big";

/** Options of {@linkcode buildIcmpError}. */
export interface IcmpErrorOptions {
  /** What went wrong. */
  type: IcmpErrorType;
  /**
   * The ICMP code. For `"destination-unreachable"` it defaults to host
   * unreachable (ICMPv4 code 1) or address unreachable (ICMPv6 code 3),
   * what a router says when the next hop does not answer; a host refusing
   * a closed UDP port says port unreachable: code 3 (ICMPv4) or 4 (ICMPv6).
   * ICMPv4 allows 0..15 except 4 (that is `"fragmentation-needed"`),
   * ICMPv6 0..8. For `"time-exceeded"` it defaults to 0 (TTL or hop limit
   * reached 0 in transit); 1 is "fragment reassembly time exceeded".
   * `"fragmentation-needed"` (code 4) and `"packet-too-big"` (code 0) have
   * a fixed code.
   */
  code?: number;
  /**
   * The MTU of the next hop, required for `"fragmentation-needed"`
   * (68..65535) and `"packet-too-big"` (1280..2^32-1), refused otherwise.
   */
  mtu?: number;
  /**
   * The sender of the error: the router's or host's own address, of the
   * offending packet's family.
   */
  source: IpAddress;
}

/** Size limits of a whole error message (RFC 1812 §4.3.2.3, RFC 4443 §2.4(c)). */
const MAX_ICMPV4_ERROR = 576;
const MAX_ICMPV6_ERROR = 1280;
/** ICMPv4 types that are errors (RFC 1812 §4.3.2.7). */
const ICMPV4_ERRORS = new Set([3, 4, 5, 11, 12]);
/** IP precedence "internetwork control", which RFC 1812 §4.3.2.5 asks errors to carry. */
const INTERNETWORK_CONTROL = 0xc0;

function isIPv4Multicast(address: Uint8Array): boolean {
  return address[0] >> 4 === 14;
}

/** Sources that do not name one host (RFC 1812 §4.3.2.7): 0/8, 127/8, 224/4, 240/4. */
function refusedIPv4Source(address: Uint8Array): string | undefined {
  if (address[0] === 0) return "an unspecified (0.0.0.0/8)";
  if (address[0] === 127) return "a loopback";
  if (isIPv4Multicast(address)) return "a multicast";
  if (address[0] >= 240) return "a broadcast or reserved (240.0.0.0/4)";
  return undefined;
}

function refusedIPv6Source(address: Uint8Array): string | undefined {
  if (address[0] === 0xff) return "a multicast";
  if (address.every((byte) => byte === 0)) return "the unspecified";
  return undefined;
}

/**
 * Builds the ICMP (IPv4) or ICMPv6 error message that answers `offending`,
 * a packet that could not be delivered: the message goes from `source`
 * back to the offending packet's source with TTL/hop limit 64, and quotes
 * the offending packet from its IP header on, as much of it as fits in
 * 576 bytes in all for ICMPv4 (RFC 1812 §4.3.2.3) or 1280 for ICMPv6
 * (RFC 4443 §2.4(c)). ICMPv4 errors carry precedence 6 (TOS 0xc0, RFC
 * 1812 §4.3.2.5).
 *
 * No error is made where one must not be sent (RFC 1812 §4.3.2.7, RFC
 * 4443 §2.4(e)); each refusal is a `RangeError`:
 * - the offending packet is itself an ICMP error (ICMPv4 types 3, 4, 5,
 *   11, 12; ICMPv6 types below 128), or a fragment other than the first,
 *   whose quote would not show the transport header;
 * - its source names no single host: IPv4 0.0.0.0/8, 127.0.0.0/8,
 *   multicast or 240.0.0.0/4 (broadcast included), IPv6 `::` or multicast;
 * - its destination is multicast (or IPv4 255.255.255.255), except for a
 *   `"packet-too-big"`, which RFC 4443 allows so that multicast senders
 *   learn the path MTU.
 * A frame's link-layer broadcast or multicast cannot be seen from the IP
 * packet: a caller that read the packet from a TAP device should check
 * that itself.
 *
 * @example Tell a sender its datagram is too big for the next hop
 * ```ts
 * import { buildIcmpError, buildUdp, parsePacket } from "@tuntap/tuntap/packet";
 *
 * const datagram = buildUdp({
 *   source: "192.0.2.1",
 *   destination: "198.51.100.7",
 *   sourcePort: 40000,
 *   destinationPort: 9,
 *   payload: new Uint8Array(1400),
 * });
 * const error = buildIcmpError(datagram, {
 *   type: "fragmentation-needed",
 *   mtu: 1280,
 *   source: "192.0.2.254",
 * });
 * const { ipv4, icmp } = parsePacket(error, "ip");
 * // ipv4?.destination === "192.0.2.1", icmp?.type === 3, icmp?.code === 4,
 * // error.length === 576
 * ```
 *
 * @example Refuse a closed UDP port over IPv6
 * ```ts
 * import { buildIcmpError, buildUdp } from "@tuntap/tuntap/packet";
 *
 * const datagram = buildUdp({
 *   source: "2001:db8::1",
 *   destination: "2001:db8::7",
 *   sourcePort: 40000,
 *   destinationPort: 9,
 * });
 * const error = buildIcmpError(datagram, {
 *   type: "destination-unreachable",
 *   code: 4, // port unreachable
 *   source: "2001:db8::7",
 * });
 * // error.length === 40 + 8 + datagram.length
 * ```
 *
 * @param offending The packet that could not be delivered, from its IP
 *   header on (as read from a TUN device; from a TAP frame pass the bytes
 *   after the Ethernet header). Bytes after the IP total length, such as
 *   Ethernet padding, are not quoted.
 * @param options The kind of error, its code and MTU, and its sender.
 * @returns The complete IP packet of the error message.
 * @throws {TypeError} If an argument has the wrong type, `source` is not
 *   of the offending packet's family, `type` does not exist in that family
 *   (`"fragmentation-needed"` is IPv4 only, `"packet-too-big"` IPv6 only),
 *   `mtu` is missing where required or given where it means nothing.
 * @throws {RangeError} If the offending packet is malformed or must not be
 *   answered (see above), or `code` or `mtu` is out of range.
 */
export function buildIcmpError(
  offending: Uint8Array,
  options: IcmpErrorOptions,
): Uint8Array<ArrayBuffer> {
  bytesArgument(offending, "Offending packet");
  optionsObject(options, "ICMP error options");
  const parsed = parsePacket(offending, "ip");
  const v4 = parsed.ipv4 !== undefined;
  const family = v4 ? 4 : 6;
  const { type } = options;
  const message = describeType(type, family, options.code, options.mtu);
  const source = addressOption(options.source, "source", family);

  const what = `Cannot answer an IPv${family} packet with an ICMP error`;
  const addresses = v4 ? 12 : 8;
  const length = v4 ? 4 : 16;
  const sender = offending.subarray(addresses, addresses + length);
  const receiver = offending.subarray(addresses + length, addresses + 2 * length);
  const icmp = parsed.icmp;
  if (icmp !== undefined && (v4 ? ICMPV4_ERRORS.has(icmp.type) : icmp.type < 128)) {
    throw new RangeError(`${what}: it is itself an ICMP error (type ${icmp.type})`);
  }
  const fragmentOffset = v4 ? parsed.ipv4!.fragmentOffset : parsed.ipv6!.fragment?.offset ?? 0;
  if (fragmentOffset !== 0) {
    throw new RangeError(`${what}: it is a fragment at offset ${fragmentOffset}, not the first`);
  }
  const badSource = v4 ? refusedIPv4Source(sender) : refusedIPv6Source(sender);
  if (badSource !== undefined) {
    throw new RangeError(`${what}: its source ${formatIp(sender)} is ${badSource} address`);
  }
  const multicast = v4
    ? isIPv4Multicast(receiver) || receiver.every((byte) => byte === 255)
    : receiver[0] === 0xff;
  if (multicast && type !== "packet-too-big") {
    throw new RangeError(
      `${what}: its destination ${formatIp(receiver)} is a multicast or broadcast address`,
    );
  }

  // The quote ends where the IP header says the packet ends, which leaves
  // out link padding; the cap keeps the whole message within the limit.
  const ipLength = v4 ? parsed.ipv4!.totalLength : 40 + parsed.ipv6!.payloadLength;
  const room = (v4 ? MAX_ICMPV4_ERROR - 20 : MAX_ICMPV6_ERROR - 40) - 8;
  const quote = offending.subarray(0, Math.min(ipLength, room));
  const body = new Uint8Array(8 + quote.length);
  body[0] = message.type;
  body[1] = message.code;
  // ICMPv4 keeps the MTU in the low half of the second word (RFC 1191);
  // ICMPv6 uses the whole word (RFC 4443 §3.2).
  if (message.mtu !== undefined) write32(body, 4, message.mtu);
  body.set(quote, 8);
  return icmpPacket(source, sender, body, 64, v4 ? INTERNETWORK_CONTROL : 0);
}

interface IcmpMessage {
  type: number;
  code: number;
  mtu?: number;
}

/** Maps the type name to numbers for the family, validating code and MTU. */
function describeType(
  type: unknown,
  family: 4 | 6,
  code: unknown,
  mtu: unknown,
): IcmpMessage {
  const v4 = family === 4;
  const needsMtu = type === "fragmentation-needed" || type === "packet-too-big";
  if (
    type !== "destination-unreachable" && type !== "time-exceeded" && !needsMtu
  ) {
    throw new TypeError(
      `ICMP error type must be "destination-unreachable", "fragmentation-needed", "time-exceeded" or "packet-too-big", got ${
        String(type)
      }`,
    );
  }
  if ((type === "fragmentation-needed" && !v4) || (type === "packet-too-big" && v4)) {
    throw new TypeError(
      `ICMP error type "${type}" does not exist for IPv${family}: use "${
        v4 ? "fragmentation-needed" : "packet-too-big"
      }"`,
    );
  }
  if (needsMtu && mtu === undefined) {
    throw new TypeError(`ICMP error type "${type}" needs the next hop's mtu`);
  }
  if (!needsMtu && mtu !== undefined) {
    throw new TypeError(`mtu applies only to "fragmentation-needed" and "packet-too-big"`);
  }
  if (type === "fragmentation-needed" || type === "packet-too-big") {
    const fixed = v4 ? 4 : 0;
    if (code !== undefined && integerOption(code, "code", 0, 255) !== fixed) {
      throw new RangeError(`ICMP error type "${type}" has code ${fixed}, got ${code}`);
    }
    return {
      type: v4 ? 3 : 2,
      code: fixed,
      mtu: v4 ? integerOption(mtu, "mtu", 68, 0xffff) : integerOption(mtu, "mtu", 1280, 0xffffffff),
    };
  }
  if (type === "time-exceeded") {
    return { type: v4 ? 11 : 3, code: code === undefined ? 0 : integerOption(code, "code", 0, 1) };
  }
  if (code === undefined) return { type: v4 ? 3 : 1, code: v4 ? 1 : 3 };
  const value = integerOption(code, "code", 0, v4 ? 15 : 8);
  if (v4 && value === 4) {
    throw new RangeError(
      `ICMP destination unreachable code 4 is "fragmentation-needed", which needs the mtu`,
    );
  }
  return { type: v4 ? 3 : 1, code: value };
}
