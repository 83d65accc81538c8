/**
 * The Internet checksum (RFC 1071) and the pseudo-header sums that TCP, UDP
 * and ICMPv6 add to it.
 *
 * Sums are kept as plain non-negative numbers and folded only at the end:
 * a double holds 2^53 exactly, so no carry is lost for any packet size an
 * IP header can describe.
 *
 * @module
 */

/** What {@linkcode pseudoHeaderSum} needs to know about a transport segment. */
export interface PseudoHeaderOptions {
  /** Source address: 4 bytes (IPv4) or 16 bytes (IPv6). */
  source: Uint8Array;
  /** Destination address, of the same family as `source`. */
  destination: Uint8Array;
  /** IP protocol number of the segment (6 TCP, 17 UDP, 58 ICMPv6). */
  protocol: number;
  /** Length in bytes of the transport header and its data. */
  length: number;
}

/** The segment and addresses {@linkcode transportChecksum} covers. */
export interface TransportChecksumOptions {
  /** Source address: 4 bytes (IPv4) or 16 bytes (IPv6). */
  source: Uint8Array;
  /** Destination address, of the same family as `source`. */
  destination: Uint8Array;
  /** IP protocol number of the segment (6 TCP, 17 UDP, 58 ICMPv6). */
  protocol: number;
  /**
   * The transport header and its data, with the checksum field zeroed
   * (to compute a checksum) or filled in (to verify one, expecting 0).
   */
  segment: Uint8Array;
}

/**
 * Adds the big-endian 16-bit words of `bytes[start, end)` to `sum`, without
 * folding. An odd trailing byte counts as the high half of a word, as RFC
 * 1071 pads it. The parser calls this on packet buffers directly so that
 * checking a checksum needs no subarray.
 *
 * @param bytes Buffer to read.
 * @param start First index summed.
 * @param end One past the last index summed.
 * @param sum Running sum to add to.
 * @returns The new unfolded sum.
 */
export function sumWords(
  bytes: Uint8Array,
  start: number,
  end: number,
  sum: number,
): number {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (i < end) sum += bytes[i] << 8;
  return sum;
}

/**
 * The checksum of the IPv4 header of `headerLength` bytes at `offset`, as
 * it must be written into its checksum field: computed as if that field
 * were zero, whatever it holds now. The one IPv4 header checksum every
 * builder, splitter and reassembler writes.
 *
 * @param bytes Buffer holding the header.
 * @param offset Where the header starts.
 * @param headerLength Header length in bytes, options included.
 * @returns The 16-bit checksum.
 */
export function ipv4HeaderChecksum(
  bytes: Uint8Array,
  offset: number,
  headerLength: number,
): number {
  const sum = sumWords(bytes, offset, offset + 10, 0);
  return finishChecksum(sumWords(bytes, offset + 12, offset + headerLength, sum));
}

/**
 * Folds an unfolded sum into 16 bits with end-around carry and returns its
 * one's complement: the value a checksum field holds, or 0 when the summed
 * data already contained a correct checksum.
 *
 * @param sum Unfolded sum from {@linkcode sumWords}.
 * @returns The 16-bit checksum.
 */
export function finishChecksum(sum: number): number {
  return ~foldSum(sum) & 0xffff;
}

/**
 * Folds an unfolded sum into 16 bits with end-around carry, keeping its
 * one's-complement value. Exact for any safe integer: each step divides
 * by a power of two, which a double does without rounding.
 *
 * @param sum Non-negative unfolded sum.
 * @returns The same sum in 0..0xffff.
 */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * Sums the part of the IPv4 (RFC 768/793) or IPv6 (RFC 8200 section 8.1)
 * pseudo-header that is not addresses. Both pseudo-headers add up to the
 * same words: the addresses, the protocol, and the length (split in two
 * halves so that a 32-bit IPv6 length works too). The parser adds the
 * addresses itself with {@linkcode sumWords}: in both IP headers the source
 * is directly followed by the destination, so one in-place run covers them.
 *
 * @param protocol IP protocol number.
 * @param length Transport length in bytes.
 * @returns The unfolded sum.
 */
export function sumProtocolAndLength(protocol: number, length: number): number {
  return protocol + Math.floor(length / 0x10000) + (length % 0x10000);
}

/**
 * Computes the RFC 1071 Internet checksum of `bytes`: the one's complement
 * of the one's-complement sum of its 16-bit big-endian words. Over data
 * whose checksum field is zero it gives the value to store there; over data
 * that holds a correct checksum it gives 0.
 *
 * @example Fill in and verify an IPv4 header checksum
 * ```ts
 * import { internetChecksum } from "@tuntap/tuntap/packet";
 *
 * const header = new Uint8Array([
 *   0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
 *   0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
 * ]);
 * const checksum = internetChecksum(header); // 0xb861
 * header[10] = checksum >> 8;
 * header[11] = checksum & 0xff;
 * internetChecksum(header); // 0
 * ```
 *
 * @param bytes Data to sum; an odd length is padded with a zero byte.
 * @param initial A partial sum to start from, such as
 *   {@linkcode pseudoHeaderSum}'s result: any non-negative safe
 *   integer, folded before the data is added, so the result is exact.
 *   Defaults to 0.
 * @returns The 16-bit checksum.
 * @throws {TypeError} If `bytes` is not a Uint8Array.
 * @throws {RangeError} If `initial` is not a non-negative safe integer.
 */
export function internetChecksum(bytes: Uint8Array, initial = 0): number {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError("Checksummed data must be a Uint8Array");
  }
  if (!Number.isSafeInteger(initial) || initial < 0) {
    throw new RangeError(
      `Initial checksum sum must be a non-negative safe integer, got ${initial}`,
    );
  }
  // Folded first: the words added to an initial sum near 2^53 would
  // otherwise round away (2^53 - 1 is 31 modulo 0xffff, the same checksum).
  return finishChecksum(sumWords(bytes, 0, bytes.length, foldSum(initial)));
}

/**
 * Sums the pseudo-header that the TCP, UDP and ICMPv6 checksums cover,
 * for IPv4 or IPv6 by the length of the addresses. The result is a partial
 * sum, meant as the `initial` argument of {@linkcode internetChecksum}.
 *
 * @example Checksum a UDP datagram by hand
 * ```ts
 * import { internetChecksum, parseIp, pseudoHeaderSum } from "@tuntap/tuntap/packet";
 *
 * const udp = new Uint8Array([0x9c, 0x40, 0x13, 0x88, 0x00, 0x0a, 0, 0, 0x68, 0x69]);
 * const initial = pseudoHeaderSum({
 *   source: parseIp("192.0.2.1"),
 *   destination: parseIp("192.0.2.77"),
 *   protocol: 17,
 *   length: udp.length,
 * });
 * const checksum = internetChecksum(udp, initial);
 * ```
 *
 * @param options The addresses, protocol and transport length.
 * @returns The unfolded partial sum.
 * @throws {TypeError} If an address is not a Uint8Array.
 * @throws {RangeError} If the addresses are not both 4 or both 16 bytes,
 *   or `protocol` or `length` is out of range.
 */
export function pseudoHeaderSum(options: PseudoHeaderOptions): number {
  const { source, destination, protocol, length } = options;
  if (!(source instanceof Uint8Array) || !(destination instanceof Uint8Array)) {
    throw new TypeError("Pseudo-header addresses must be Uint8Arrays");
  }
  if (
    source.length !== destination.length ||
    (source.length !== 4 && source.length !== 16)
  ) {
    throw new RangeError(
      `Pseudo-header addresses must both be 4 or 16 bytes, got ${source.length} and ${destination.length}`,
    );
  }
  if (!Number.isInteger(protocol) || protocol < 0 || protocol > 255) {
    throw new RangeError(`Protocol must be an integer 0..255, got ${protocol}`);
  }
  if (!Number.isInteger(length) || length < 0 || length > 0xffffffff) {
    throw new RangeError(
      `Transport length must be an integer 0..4294967295, got ${length}`,
    );
  }
  const sum = sumWords(source, 0, source.length, 0);
  return sumWords(
    destination,
    0,
    destination.length,
    sum + sumProtocolAndLength(protocol, length),
  );
}

/**
 * Computes the checksum of a TCP, UDP or ICMPv6 segment including its
 * pseudo-header. Note that UDP transmits a computed 0 as 0xffff, since 0
 * there means "no checksum"; this function returns the raw value.
 *
 * @example Verify a received segment
 * ```ts
 * import { buildUdp, parseIp, transportChecksum } from "@tuntap/tuntap/packet";
 *
 * const packet = buildUdp({
 *   source: "192.0.2.1",
 *   destination: "192.0.2.77",
 *   sourcePort: 40000,
 *   destinationPort: 5000,
 *   payload: new TextEncoder().encode("hi"),
 * });
 * const ok = transportChecksum({
 *   source: parseIp("192.0.2.1"),
 *   destination: parseIp("192.0.2.77"),
 *   protocol: 17,
 *   segment: packet.subarray(20),
 * }) === 0; // true
 * ```
 *
 * @param options The addresses, protocol and the segment itself.
 * @returns The 16-bit checksum.
 * @throws {TypeError} If an address or the segment is not a Uint8Array.
 * @throws {RangeError} If the addresses or protocol are invalid.
 */
export function transportChecksum(options: TransportChecksumOptions): number {
  const { segment } = options;
  if (!(segment instanceof Uint8Array)) {
    throw new TypeError("Segment must be a Uint8Array");
  }
  const initial = pseudoHeaderSum({ ...options, length: segment.length });
  return finishChecksum(sumWords(segment, 0, segment.length, initial));
}
