/**
 * Ancillary data (`struct cmsghdr` from `<sys/socket.h>`) on 64-bit Linux:
 *
 * ```c
 * struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; unsigned char data[]; };
 * ```
 *
 * `CMSG_LEN(n)` is the header (16 bytes) plus `n`; `CMSG_SPACE(n)` rounds
 * `n` up to 8 first, which is the room one message's control buffer needs.
 *
 * @module
 */

/** `sizeof(struct cmsghdr)`, where the data starts (`CMSG_DATA`). */
export const sizeof_cmsghdr = 16;

/** `CMSG_LEN(length)`: the `cmsg_len` of a control message carrying `length` bytes. */
export function cmsg_len(length: number): number {
  return sizeof_cmsghdr + length;
}

/** `CMSG_SPACE(length)`: the room a control message of `length` data bytes takes. */
export function cmsg_space(length: number): number {
  return sizeof_cmsghdr + ((length + 7) & ~7);
}

/** Writes a `struct cmsghdr` at `offset` for `length` data bytes; where its data starts. */
export function write_cmsghdr(
  target: Uint8Array,
  offset: number,
  level: number,
  type: number,
  length: number,
): number {
  const view = new DataView(target.buffer, target.byteOffset);
  view.setBigUint64(offset, BigInt(cmsg_len(length)), true);
  view.setInt32(offset + 8, level, true);
  view.setInt32(offset + 12, type, true);
  return offset + sizeof_cmsghdr;
}

/** `cmsg_level` of the header at `offset`. */
export function cmsg_level(view: DataView, offset: number): number {
  return view.getInt32(offset + 8, true);
}

/** `cmsg_type` of the header at `offset`. */
export function cmsg_type(view: DataView, offset: number): number {
  return view.getInt32(offset + 12, true);
}
