/**
 * Big-endian (network order) integers in byte arrays: the one copy the
 * packet codecs share. Internal: not exported from the package.
 *
 * @module
 */

/** The 16-bit big-endian integer at `offset`. */
export function read16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] << 8) | bytes[offset + 1];
}

/** The 32-bit big-endian unsigned integer at `offset`. */
export function read32(bytes: Uint8Array, offset: number): number {
  return bytes[offset] * 0x1000000 + (bytes[offset + 1] << 16) +
    (bytes[offset + 2] << 8) + bytes[offset + 3];
}

/** Writes the low 16 bits of `value` big-endian at `offset`. */
export function write16(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 8;
  bytes[offset + 1] = value;
}

/** Writes the low 32 bits of `value` big-endian at `offset`. */
export function write32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = value >>> 16;
  bytes[offset + 2] = value >>> 8;
  bytes[offset + 3] = value;
}
