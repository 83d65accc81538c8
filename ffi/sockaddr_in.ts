/**
 * `struct sockaddr_in` and `struct sockaddr_in6` from `<netinet/in.h>`, read
 * and written in place inside a larger buffer (the address slots of a
 * message batch), so that no address costs an allocation.
 *
 * ```c
 * struct sockaddr_in  { sa_family_t family; in_port_t port; struct in_addr addr; char zero[8]; };
 * struct sockaddr_in6 { sa_family_t family; in_port_t port; uint32_t flowinfo;
 *                       struct in6_addr addr; uint32_t scope_id; };
 * ```
 *
 * The family is in host order (little-endian on every platform tuntap runs
 * on), the port in network order.
 *
 * @module
 */
import { AF_INET, AF_INET6 } from "./constants.ts";

/** `sizeof(struct sockaddr_in)`. */
export const sizeof_sockaddr_in = 16;
/** `sizeof(struct sockaddr_in6)`: the room an address slot needs for either family. */
export const sizeof_sockaddr_in6 = 28;

const PORT = 2;
const IN_ADDR = 4;
const IN6_ADDR = 8;

/** Writes a `sockaddr_in` at `offset`; its length. */
export function write_sockaddr_in(
  target: Uint8Array,
  offset: number,
  address: Uint8Array,
  port: number,
): number {
  target.fill(0, offset, offset + sizeof_sockaddr_in);
  target[offset] = AF_INET;
  target[offset + 1] = 0;
  target[offset + PORT] = port >> 8;
  target[offset + PORT + 1] = port & 0xff;
  target.set(address, offset + IN_ADDR);
  return sizeof_sockaddr_in;
}

/**
 * Writes a `sockaddr_in6` at `offset`; its length. A 4-byte `address` is
 * written IPv4-mapped (`::ffff:a.b.c.d`), as a dual-stack socket takes it.
 * Flow info and scope id stay 0: no flow labels, no link-local scopes.
 */
export function write_sockaddr_in6(
  target: Uint8Array,
  offset: number,
  address: Uint8Array,
  port: number,
): number {
  target.fill(0, offset, offset + sizeof_sockaddr_in6);
  target[offset] = AF_INET6 & 0xff;
  target[offset + 1] = AF_INET6 >> 8;
  target[offset + PORT] = port >> 8;
  target[offset + PORT + 1] = port & 0xff;
  if (address.length === 4) {
    target[offset + IN6_ADDR + 10] = 0xff;
    target[offset + IN6_ADDR + 11] = 0xff;
    target.set(address, offset + IN6_ADDR + 12);
  } else {
    target.set(address, offset + IN6_ADDR);
  }
  return sizeof_sockaddr_in6;
}

/** `sa_family` of the address at `offset`. */
export function sockaddr_family(source: Uint8Array, offset: number): number {
  return source[offset] | (source[offset + 1] << 8);
}

/** The port (host order) of a `sockaddr_in` or `sockaddr_in6` at `offset`. */
export function sockaddr_port(source: Uint8Array, offset: number): number {
  return (source[offset + PORT] << 8) | source[offset + PORT + 1];
}

/** Where the address bytes of the `sockaddr_in` (4) or `sockaddr_in6` (16) at `offset` start. */
export function sockaddr_address_offset(source: Uint8Array, offset: number): number {
  return offset + (sockaddr_family(source, offset) === AF_INET ? IN_ADDR : IN6_ADDR);
}

/** Whether the `sockaddr_in6` at `offset` holds an IPv4-mapped address (`::ffff:a.b.c.d`). */
export function sockaddr_in6_is_v4_mapped(source: Uint8Array, offset: number): boolean {
  const start = offset + IN6_ADDR;
  for (let i = 0; i < 10; i++) if (source[start + i] !== 0) return false;
  return source[start + 10] === 0xff && source[start + 11] === 0xff;
}
