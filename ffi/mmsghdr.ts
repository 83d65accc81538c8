/**
 * `struct mmsghdr`, `struct msghdr` and `struct iovec` from `<sys/socket.h>`
 * and `<sys/uio.h>`, as laid out on 64-bit Linux (x86_64 and arm64 agree):
 *
 * ```c
 * struct iovec   { void *iov_base; size_t iov_len; };                  // 16 bytes
 * struct msghdr  { void *msg_name; socklen_t msg_namelen;              //  0,  8
 *                  struct iovec *msg_iov; size_t msg_iovlen;           // 16, 24
 *                  void *msg_control; size_t msg_controllen;           // 32, 40
 *                  int msg_flags; };                                   // 48 (56 bytes)
 * struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };     // 56 (64 bytes)
 * ```
 *
 * Offsets are given in 32-bit words, for a `Uint32Array` view: a length or
 * flag is one word, a pointer the low and high words of a little-endian u64,
 * so that a batch is filled without a `DataView` or a BigInt per field.
 *
 * @module
 */

/** `sizeof(struct mmsghdr)`. */
export const sizeof_mmsghdr = 64;
/** `sizeof(struct iovec)`. */
export const sizeof_iovec = 16;

/** Word (u32) offsets of the fields of a `struct mmsghdr`. */
export const mmsghdr_u32 = {
  msg_name: 0,
  msg_namelen: 2,
  msg_iov: 4,
  msg_iovlen: 6,
  msg_control: 8,
  msg_controllen: 10,
  msg_flags: 12,
  msg_len: 14,
  /** Words per entry. */
  size: sizeof_mmsghdr / 4,
} as const;

/** Word (u32) offsets of the fields of a `struct iovec`. */
export const iovec_u32 = {
  iov_base: 0,
  iov_len: 2,
  /** Words per entry. */
  size: sizeof_iovec / 4,
} as const;

/** `UIO_MAXIOV`: the most messages one `recvmmsg`/`sendmmsg` takes. */
export const UIO_MAXIOV = 1024;
