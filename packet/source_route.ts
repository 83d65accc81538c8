/**
 * Where a packet's final destination is while a source route is pending:
 * an IPv4 loose or strict source route (RFC 791) or an IPv6 routing header
 * with segments left (RFC 8200 section 8.1). The sender's TCP, UDP and
 * ICMPv6 checksums cover that final destination, not the header's. One
 * rule for the parser (which checks checksums) and the rewriters (which
 * update them), so that the two always agree. Internal: not exported from
 * the package.
 *
 * @module
 */

import { findOption } from "./option_list.ts";

const IPV4_OPTION_LSRR = 0x83;
const IPV4_OPTION_SSRR = 0x89;

// Module-level, not an arrow at the call: the rewriters run this per packet.
function isSourceRoute(type: number, length: number): boolean {
  return (type === IPV4_OPTION_LSRR || type === IPV4_OPTION_SSRR) && length >= 7;
}

/**
 * Where the final destination of an unfinished loose or strict source
 * route (RFC 791) is, in the IPv4 options `bytes[offset + 20, end)`: the
 * last address of the route data, which the sender's transport checksum
 * covered. -1 when there is no such route or it is used up (the pointer is
 * past the last address, so the header's destination is the final one).
 * Malformed options end the search rather than throw: they do not make the
 * packet unreadable.
 */
export function sourceRouteDestination(bytes: Uint8Array, offset: number, end: number): number {
  const at = findOption(bytes, offset + 20, end, isSourceRoute);
  if (at === -1) return -1;
  const length = bytes[at + 1];
  const pointer = bytes[at + 2];
  // The pointer is 1-based within the option and names the next address.
  if (pointer < 4 || pointer + 3 > length) return -1;
  return at + 3 + 4 * (Math.floor((length - 3) / 4) - 1);
}

/**
 * Where the final destination is after the routing header of `length`
 * bytes at `cursor` (RFC 8200 section 8.1): while segments are left, the
 * last address of a type 0 or type 2 header, or the first (Segment List[0])
 * of a segment routing header (type 4, RFC 8754). Other types (RPL's
 * compressed addresses) keep `current`.
 */
export function routingDestination(
  bytes: Uint8Array,
  cursor: number,
  length: number,
  current: number,
): number {
  const type = bytes[cursor + 2];
  if (bytes[cursor + 3] === 0 || length < 24) return current;
  if (type === 0 || type === 2) return cursor + 8 + 16 * (Math.floor((length - 8) / 16) - 1);
  if (type === 4) return cursor + 8;
  return current;
}
