/**
 * Incremental Internet checksum updates (RFC 1624), shared by the in-place
 * rewriters. Internal: not exported from the package.
 *
 * A change is described by an unfolded "delta": the sum of `~old` and `new`
 * over every 16-bit word that changes. RFC 1624 eqn. 3 then gives the new
 * checksum as `~(~HC + delta)`, folded with end-around carry.
 *
 * @module
 */

import { read16, write16 } from "./bytes.ts";

/**
 * Adds the change of one 16-bit value from `before` to `after` to `delta`.
 * A value at an odd offset from the start of the checksummed data straddles
 * two words; by the byte-order independence of the one's-complement sum
 * (RFC 1071 section 2(B)) it then counts byte-swapped.
 */
export function wordDelta(delta: number, before: number, after: number, odd: boolean): number {
  if (odd) {
    before = ((before & 0xff) << 8) | (before >>> 8);
    after = ((after & 0xff) << 8) | (after >>> 8);
  }
  return delta + (~before & 0xffff) + after;
}

/**
 * Adds the change of `bytes[at, at + next.length)` into `next` (an even
 * length, word-aligned with the checksummed data) to `delta`.
 */
export function bytesDelta(delta: number, bytes: Uint8Array, at: number, next: Uint8Array): number {
  for (let i = 0; i < next.length; i += 2) {
    delta += (~read16(bytes, at + i) & 0xffff) + ((next[i] << 8) | next[i + 1]);
  }
  return delta;
}

/**
 * Applies `delta` to the checksum field at `at` and returns the value
 * written.
 *
 * RFC 1624 section 3: a one's-complement sum of data that is not all zero
 * is never +0 (0x0000), so a full computation never stores 0xffff. The
 * folded `~HC + delta` can come out as +0 only when the field held the
 * non-canonical 0xffff; taking it as -0 (0xffff) instead makes the result
 * equal the full recomputation bit for bit, so 0x0000 is stored, not 0xffff.
 * Callers whose data can be all zero (ICMPv4 has no pseudo-header) or whose
 * protocol forbids a stored 0 (UDP) adjust the result themselves.
 */
export function applyDelta(bytes: Uint8Array, at: number, delta: number): number {
  let sum = (~read16(bytes, at) & 0xffff) + delta;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  if (sum === 0) sum = 0xffff;
  const checksum = ~sum & 0xffff;
  write16(bytes, at, checksum);
  return checksum;
}

/**
 * Adds `delta` to the partial checksum at `at`: a folded one's-complement
 * sum that is not complemented, as a device with checksum offload leaves
 * the pseudo-header sum in a TCP or UDP checksum field for the hardware to
 * complete. A positive sum folds to 1..0xffff, as the kernel's does, never
 * to 0, so unlike {@linkcode applyDelta} there is no special case.
 */
export function addToPartialSum(bytes: Uint8Array, at: number, delta: number): void {
  let sum = read16(bytes, at) + delta;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  write16(bytes, at, sum);
}
