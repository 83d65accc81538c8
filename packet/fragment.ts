/**
 * Fragmenting IP packets for a smaller MTU: IPv4 as RFC 791 section 3.2
 * describes it, IPv6 with a Fragment header as RFC 8200 section 4.5 does.
 * {@linkcode Reassembler} puts the pieces back together.
 *
 * @module
 */

import { read16, write16, write32 } from "./bytes.ts";
import { ipv4HeaderChecksum } from "./checksum.ts";
import { IpProtocol, optionsHeaderName } from "./constants.ts";
import { bytesArgument, optionsObject } from "./options.ts";

/** The smallest MTU an IPv4 link may have (RFC 791: a 60-byte header and 8 data bytes). */
const IPV4_MIN_MTU = 68;

/** The smallest MTU an IPv6 link may have (RFC 8200 section 5). */
const IPV6_MIN_MTU = 1280;

/** Options of {@linkcode fragment}. */
export interface FragmentOptions {
  /**
   * The identification written into the IPv6 Fragment headers, 0..2^32-1,
   * for reproducible output. Defaults to a fresh random value from
   * `crypto.getRandomValues`, as RFC 7739 recommends (a predictable one
   * lets others forge fragments of the datagram). IPv4 fragments always
   * keep the packet's own identification.
   */
  identification?: number;
}

function mtuError(version: 4 | 6, mtu: number, min: number): RangeError {
  return new RangeError(
    `Cannot fragment IPv${version} packet: MTU ${mtu} is below the IPv${version} minimum of ${min}`,
  );
}

/**
 * Splits an IP packet into fragments of at most `mtu` bytes each.
 *
 * IPv4 fragments carry data in multiples of 8 bytes, the packet's
 * identification and protocol, "more fragments" on all but the last, and
 * their own total length and header checksum. The first fragment keeps the
 * whole header; the others keep only the options whose "copied" flag is set
 * (such as source routes), padded to a 4-byte boundary. A packet that is
 * itself a fragment is split further, its offset and "more fragments" flag
 * carried over (RFC 791 allows routers to do so). A packet with "don't
 * fragment" set is refused: a router drops it and answers with
 * `buildIcmpError(packet, { type: "fragmentation-needed", mtu, source })`.
 *
 * IPv6 fragments repeat the per-fragment headers (the IPv6 header and the
 * extension headers up to and including the last hop-by-hop options or
 * routing header, so destination options before a routing header too), then
 * a Fragment header (next header 44) holding one identification for all
 * fragments, then the next multiple-of-8 slice of the rest. Only the source
 * of a packet fragments in IPv6; a router answers a too-big packet with
 * `buildIcmpError(packet, { type: "packet-too-big", mtu, source })` instead.
 *
 * A packet that already fits (IPv4 total length or IPv6 40 + payload length
 * at most `mtu`) is returned as the only element: the same Uint8Array, not
 * a copy. Fragments are always new arrays. Bytes after the lengths the IP
 * header gives (link padding) are left out of fragments.
 *
 * @example Fragment a 3000-byte datagram for a 1500-byte link
 * ```ts
 * import { buildIPv4, fragment } from "@tuntap/tuntap/packet";
 *
 * const packet = buildIPv4({
 *   source: "192.0.2.1",
 *   destination: "192.0.2.2",
 *   protocol: 17,
 *   payload: new Uint8Array(2980),
 *   dontFragment: false,
 *   identification: 7,
 * });
 * const fragments = fragment(packet, 1500);
 * // fragments.map((f) => f.length): [1500, 1500, 40]
 * ```
 *
 * @param packet An IPv4 or IPv6 packet, starting at the IP header.
 * @param mtu The largest packet the link carries, in bytes: at least 68 for
 *   IPv4 and 1280 for IPv6.
 * @param options The IPv6 identification to use.
 * @returns The fragments in order, or `[packet]` when it fits.
 * @throws {TypeError} If `packet` is not a Uint8Array or `mtu` not a number.
 * @throws {RangeError} If the packet is malformed, the MTU below the
 *   family's minimum, an IPv4 packet has "don't fragment" set, an IPv6
 *   packet already has a Fragment header, or its per-fragment headers leave
 *   no room for data.
 */
export function fragment(
  packet: Uint8Array,
  mtu: number,
  options: FragmentOptions = {},
): Uint8Array[] {
  bytesArgument(packet, "Packet");
  if (typeof mtu !== "number") {
    throw new TypeError(`MTU must be a number, got ${typeof mtu}`);
  }
  if (!Number.isInteger(mtu)) {
    throw new RangeError(`MTU must be an integer, got ${mtu}`);
  }
  optionsObject(options, "Fragment options");
  const version = packet.length === 0 ? 0 : packet[0] >> 4;
  if (version === 4) return fragmentIPv4(packet, mtu);
  if (version === 6) return fragmentIPv6(packet, mtu, options.identification);
  throw new RangeError(
    packet.length === 0
      ? "Cannot fragment an empty packet"
      : `Cannot fragment packet: IP version is ${version}, expected 4 or 6`,
  );
}

function fragmentIPv4(packet: Uint8Array, mtu: number): Uint8Array[] {
  if (mtu < IPV4_MIN_MTU) throw mtuError(4, mtu, IPV4_MIN_MTU);
  if (packet.length < 20) {
    throw new RangeError(`Cannot fragment IPv4 packet: ${packet.length} bytes is shorter than 20`);
  }
  const headerLength = (packet[0] & 0x0f) * 4;
  const totalLength = read16(packet, 2);
  if (headerLength < 20 || totalLength < headerLength || totalLength > packet.length) {
    throw new RangeError(
      `Cannot fragment IPv4 packet: header length ${headerLength} and total length ${totalLength} do not fit its ${packet.length} bytes`,
    );
  }
  if (totalLength <= mtu) return [packet];
  const flags = read16(packet, 6);
  if ((flags & 0x4000) !== 0) {
    throw new RangeError(
      `Cannot fragment IPv4 packet of ${totalLength} bytes for MTU ${mtu}: "don't fragment" is set; ` +
        `a router answers with buildIcmpError(packet, { type: "fragmentation-needed", mtu: ${mtu}, source })`,
    );
  }
  const laterHeader = copiedOptionsHeader(packet, headerLength);
  const baseOffset = (flags & 0x1fff) * 8;
  const lastMoreFragments = (flags & 0x2000) !== 0;
  const reserved = flags & 0x8000;
  const dataLength = totalLength - headerLength;
  const fragments: Uint8Array[] = [];
  let at = 0;
  while (at < dataLength) {
    const header = at === 0 ? packet.subarray(0, headerLength) : laterHeader;
    // Every fragment but the last carries a multiple of 8 bytes, since
    // offsets count 8-byte units; the minimum MTU leaves room for 8 after
    // a 60-byte header.
    const room = ((mtu - header.length) >> 3) << 3;
    const size = Math.min(room, dataLength - at);
    const last = at + size === dataLength;
    const piece = new Uint8Array(header.length + size);
    piece.set(header);
    piece.set(packet.subarray(headerLength + at, headerLength + at + size), header.length);
    write16(piece, 2, piece.length);
    const more = !last || lastMoreFragments ? 0x2000 : 0;
    write16(piece, 6, reserved | more | ((baseOffset + at) >> 3));
    write16(piece, 10, ipv4HeaderChecksum(piece, 0, header.length));
    fragments.push(piece);
    at += size;
  }
  return fragments;
}

/**
 * The header of non-first IPv4 fragments: the fixed 20 bytes and the
 * options with the "copied" flag, padded with end-of-options bytes.
 */
function copiedOptionsHeader(packet: Uint8Array, headerLength: number): Uint8Array {
  const copied: number[] = [];
  for (let at = 20; at < headerLength;) {
    const type = packet[at];
    if (type === 0) break; // end of options
    if (type === 1) { // no operation
      at += 1;
      continue;
    }
    const length = at + 1 < headerLength ? packet[at + 1] : 0;
    if (length < 2 || at + length > headerLength) {
      throw new RangeError(
        `Cannot fragment IPv4 packet: option ${type} at offset ${at} has invalid length ${length}`,
      );
    }
    if ((type & 0x80) !== 0) copied.push(...packet.subarray(at, at + length));
    at += length;
  }
  const length = 20 + Math.ceil(copied.length / 4) * 4;
  const header = new Uint8Array(length);
  header.set(packet.subarray(0, 20));
  header.set(copied, 20);
  header[0] = 0x40 | (length >> 2);
  return header;
}

function fragmentIPv6(
  packet: Uint8Array,
  mtu: number,
  identification: number | undefined,
): Uint8Array[] {
  if (mtu < IPV6_MIN_MTU) throw mtuError(6, mtu, IPV6_MIN_MTU);
  if (
    identification !== undefined &&
    (!Number.isInteger(identification) || identification < 0 || identification > 0xffffffff)
  ) {
    throw new RangeError(`identification must be an integer 0..4294967295, got ${identification}`);
  }
  if (packet.length < 40) {
    throw new RangeError(`Cannot fragment IPv6 packet: ${packet.length} bytes is shorter than 40`);
  }
  const end = 40 + read16(packet, 4);
  if (end > packet.length) {
    throw new RangeError(
      `Cannot fragment IPv6 packet: payload length ${end - 40} exceeds its ${
        packet.length - 40
      } bytes after the header`,
    );
  }
  // Walk the extension headers that may precede the fragmentable part; the
  // per-fragment part ends after the last hop-by-hop or routing header.
  let nextHeaderAt = 6;
  let perFragmentEnd = 40;
  let perFragmentNextAt = 6;
  let cursor = 40;
  for (;;) {
    const nextHeader = packet[nextHeaderAt];
    if (nextHeader === IpProtocol.FRAGMENT) {
      throw new RangeError(
        `Cannot fragment IPv6 packet: it already has a Fragment header at offset ${cursor}`,
      );
    }
    if (optionsHeaderName(nextHeader) === undefined) break;
    if (end - cursor < 8 || end - cursor < (packet[cursor + 1] + 1) * 8) {
      throw new RangeError(
        `Cannot fragment IPv6 packet: truncated extension header ${nextHeader} at offset ${cursor}`,
      );
    }
    nextHeaderAt = cursor;
    cursor += (packet[cursor + 1] + 1) * 8;
    if (nextHeader !== IpProtocol.DESTINATION_OPTIONS) {
      perFragmentEnd = cursor;
      perFragmentNextAt = nextHeaderAt;
    }
  }
  if (end <= mtu) return [packet];
  const room = ((mtu - perFragmentEnd - 8) >> 3) << 3;
  if (room < 8) {
    throw new RangeError(
      `Cannot fragment IPv6 packet: its ${perFragmentEnd} bytes of per-fragment headers leave no room for data in MTU ${mtu}`,
    );
  }
  const id = identification ?? crypto.getRandomValues(new Uint32Array(1))[0];
  const originalNext = packet[perFragmentNextAt];
  const dataLength = end - perFragmentEnd;
  const fragments: Uint8Array[] = [];
  for (let at = 0; at < dataLength;) {
    const size = Math.min(room, dataLength - at);
    const piece = new Uint8Array(perFragmentEnd + 8 + size);
    piece.set(packet.subarray(0, perFragmentEnd));
    piece[perFragmentNextAt] = IpProtocol.FRAGMENT;
    write16(piece, 4, piece.length - 40);
    piece[perFragmentEnd] = originalNext;
    const more = at + size < dataLength ? 1 : 0;
    write16(piece, perFragmentEnd + 2, at | more);
    write32(piece, perFragmentEnd + 4, id);
    piece.set(
      packet.subarray(perFragmentEnd + at, perFragmentEnd + at + size),
      perFragmentEnd + 8,
    );
    fragments.push(piece);
    at += size;
  }
  return fragments;
}
